"""Device specs and ranking: pure functions over DeviceInfo lists, no OpenCL involved.

A spec is one of: "gpu" | "cpu" | "accelerator", an id "P:D", an integer index into the
device list, or a case-insensitive substring of the device or vendor name. Any of these may
be followed by "/N" (split the device into N equal sub-devices) or "/N.I" (sub-device I of N).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .errors import DeviceNotFoundError

TYPE_RANK = {"gpu": 0, "accelerator": 1, "cpu": 2}
TYPE_WORDS = tuple(TYPE_RANK)
_ID = re.compile(r"^\d+:\d+$")
_SPLIT = re.compile(r"^(?P<base>.+?)/(?P<n>\d+)(?:\.(?P<i>\d+))?$")


@dataclass(frozen=True)
class DeviceInfo:
    """What hetero knows about one OpenCL device (or sub-device)."""

    id: str
    platform: str
    name: str
    vendor: str
    type: str
    driver_version: str = ""
    opencl_c_version: str = ""
    compute_units: int = 1
    clock_mhz: int = 0
    global_mem_bytes: int = 0
    local_mem_bytes: int = 0
    max_work_group_size: int = 1
    fp16: bool = False
    fp64: bool = False
    max_sub_devices: int = 0
    usable: bool = True
    reason: str = ""
    parent: str | None = None
    extensions: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extensions"}
        return d

    def split(self, n: int, i: int) -> DeviceInfo:
        """Info of sub-device i of this device split into n equal parts."""
        return replace(
            self,
            id=f"{self.id}/{n}.{i}",
            name=f"{self.name} [{i + 1}/{n}]",
            compute_units=self.compute_units // n,
            max_sub_devices=0,
            parent=self.id,
        )


def rank_key(info: DeviceInfo) -> tuple:
    """Sort key: GPU before accelerator before CPU, then the most compute units x clock."""
    return (TYPE_RANK.get(info.type, 3), -(info.compute_units * max(info.clock_mhz, 1)), info.id)


def describe(infos: list[DeviceInfo]) -> str:
    """A few lines listing the usable devices with their ids, for error messages."""
    usable = [d for d in infos if d.usable]
    if not usable:
        lines = [f"  {d.id}  {d.name} ({d.platform}): unusable: {d.reason}" for d in infos]
        return "no usable OpenCL device:\n" + "\n".join(lines) if lines else "no OpenCL device at all"
    lines = [f"  [{infos.index(d)}] {d.id}  {d.type:<11} {d.name} ({d.vendor})" for d in usable]
    return "usable devices:\n" + "\n".join(lines)


def _match_base(infos: list[DeviceInfo], spec: str) -> list[DeviceInfo]:
    s = spec.strip()
    low = s.lower()
    if low in TYPE_WORDS:
        return [d for d in infos if d.type == low]
    if _ID.match(s):
        return [d for d in infos if d.id == s]
    if s.isdigit():
        k = int(s)
        return [infos[k]] if k < len(infos) else []
    return [d for d in infos if low in d.name.lower() or low in d.vendor.lower()]


def parse_split(spec: str) -> tuple[str, int | None, int | None]:
    """Split "base/N.I" into (base, N, I); N and I are None when absent."""
    m = _SPLIT.match(spec.strip())
    if not m:
        return spec, None, None
    i = m.group("i")
    return m.group("base"), int(m.group("n")), None if i is None else int(i)


def choose_base(infos: list[DeviceInfo], spec: str | int | None) -> DeviceInfo:
    """The best usable device matching a spec without a "/N" suffix; raise with the list otherwise."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "best", "auto")):
        matches = list(infos)
        label = "any device"
    else:
        matches = _match_base(infos, str(spec))
        label = f"device spec {spec!r}"
    if not matches:
        raise DeviceNotFoundError(f"{label} matches no OpenCL device; {describe(infos)}")
    usable = sorted((d for d in matches if d.usable), key=rank_key)
    if not usable:
        why = "; ".join(f"{d.id} {d.name}: {d.reason}" for d in matches)
        raise DeviceNotFoundError(f"{label} matches only unusable devices ({why}); {describe(infos)}")
    return usable[0]


def choose(infos: list[DeviceInfo], spec: str | int | None) -> list[DeviceInfo]:
    """Resolve a spec to the device infos it names: one, or N sub-devices for "base/N"."""
    if isinstance(spec, str):
        base, n, i = parse_split(spec)
    else:
        base, n, i = spec, None, None
    info = choose_base(infos, base)
    if n is None:
        return [info]
    if n < 1 or info.max_sub_devices < n:
        raise DeviceNotFoundError(
            f"device spec {spec!r}: {info.id} {info.name} can be split into at most "
            f"{info.max_sub_devices} sub-devices, not {n}; {describe(infos)}"
        )
    if i is None:
        return [info.split(n, k) for k in range(n)]
    if i >= n:
        raise DeviceNotFoundError(f"device spec {spec!r}: sub-device index {i} is out of range 0..{n - 1}")
    return [info.split(n, i)]
