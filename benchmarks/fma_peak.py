"""The float32 multiply-add peak of each device (hetero/bench/fma_peak.py), in GFLOP/s.

    python benchmarks/fma_peak.py [--devices SPEC] [--repeats N]

Independent chains of multiply-adds at the width of the device's registers on every compute unit, the chain
count that runs fastest of those that fit the registers; median of the repeats, with their spread.
"""

from __future__ import annotations

import argparse

import hetero
from hetero.bench.fma_peak import FmaPeak
from hetero.bench.timing import Settings, rate, sample


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="all", help="device specs for hetero.select_devices (default: all)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median reported)")
    args = parser.parse_args(argv)
    settings = Settings(repeats=args.repeats)
    print(f"{'device':<34} {'width':>5} {'chains':>6} {'GFLOP/s':>9} {'spread':>7}")
    for dev in hetero.select_devices(args.devices):
        kern = FmaPeak.fastest(dev)
        gflops, spread = rate(kern.gflop, sample(kern, dev.synchronize, settings))
        print(f"{dev.label[:34]:<34} {kern.width:>5} {kern.chains:>6} {gflops:>9.1f} {spread:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
