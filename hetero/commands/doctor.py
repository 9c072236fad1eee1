"""`hetero doctor`: run every op family at small shapes on each device against the numpy references."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check every op on a device against the numpy reference (seconds)",
                       description="Run every op family (GEMM, conv2d and its gradients, pooling, batch norm, "
                       "softmax and losses, activations, elementwise, dropout, LRN, SGD/Adam) at small shapes on "
                       "each device and compare with hetero's float64 numpy references. Exit status 0 when "
                       "every check passes, 1 when any fails.")
    p.add_argument("--device", default=None, metavar="SPEC",
                   help="device spec(s), comma-separated, or 'all' for every usable device "
                   "(default: $HETERO_DEVICE, else the best device)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..device import device, select_devices
    from ..doctor import HEADER, doctor, failures, format_row, summary, tolerance_note

    devices = [device(None)] if args.device is None else select_devices(args.device)
    blocks = []
    for k, dev in enumerate(devices):
        if not args.json:
            if k:
                print()
            print(f"{dev.label} ({dev.flavour} kernels)")
            print(HEADER, flush=True)
        rows = doctor(dev, progress=None if args.json else lambda r: print(format_row(r), flush=True))
        if not args.json:
            print(f"  {dev.id}: {summary(rows)}", flush=True)
        blocks.append((dev, rows))
    bad = sum(len(failures(rows)) for _, rows in blocks)
    total = sum(len(rows) for _, rows in blocks)
    if args.json:
        print(json.dumps({"passed": total - bad, "failed": bad, "devices": [
            {"id": dev.id, "name": dev.info.name, "flavour": dev.flavour, "passed": len(rows) - len(failures(rows)),
             "failed": len(failures(rows)), "rows": [r.to_dict() for r in rows]} for dev, rows in blocks]},
            indent=1, allow_nan=False))
    else:
        print()
        print(tolerance_note())
        if len(blocks) > 1:
            print(f"all devices: {total - bad} passed / {bad} failed")
        if bad:
            print(f"hetero doctor: {bad} check(s) failed; the reasons are at the end of their lines", file=sys.stderr)
    return 1 if bad else 0
