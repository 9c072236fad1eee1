"""`hetero devices`: every OpenCL device, its key figures and whether hetero can use it."""

from __future__ import annotations

import argparse
import json


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list every OpenCL device and whether hetero can use it")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..device import devices

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
