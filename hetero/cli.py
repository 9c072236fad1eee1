"""The `hetero` command line."""

from __future__ import annotations

import argparse
import json
import sys

from ._version import __version__
from .errors import HeteroError


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def cmd_devices(args: argparse.Namespace) -> int:
    from .device import devices

    infos = devices()
    if args.json:
        print(json.dumps([d.to_dict() for d in infos], indent=2))
        return 0
    rows = [("#", "id", "type", "name", "platform", "CUs", "MHz", "memory", "fp16", "fp64", "usable")]
    for k, d in enumerate(infos):
        rows.append((str(k), d.id, d.type, d.name, d.platform, str(d.compute_units), str(d.clock_mhz),
                     _gib(d.global_mem_bytes), "yes" if d.fp16 else "no", "yes" if d.fp64 else "no",
                     "yes" if d.usable else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for d in infos:
        extra = f", splits into up to {d.max_sub_devices} sub-devices (spec '{d.id}/N')" \
            if d.max_sub_devices > 1 else ""
        print(f"\n{d.id}: {d.vendor}; driver {d.driver_version}; {d.opencl_c_version}; "
              f"local memory {d.local_mem_bytes // 1024} KiB; max work-group {d.max_work_group_size}{extra}")
        if not d.usable:
            print(f"  unusable: {d.reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hetero", description="Vendor-neutral OpenCL deep learning: "
                                "list devices, train CNNs, compare devices.")
    p.add_argument("--version", action="version", version=f"hetero {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("devices", help="list every OpenCL device and whether hetero can use it")
    d.add_argument("--json", action="store_true", help="print the list as JSON")
    d.set_defaults(func=cmd_devices)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except HeteroError as e:
        print(f"hetero: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hetero: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
