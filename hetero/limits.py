"""Launch limits: what a device and a kernel allow, the strict limits every common GPU allows, and the check
every launch goes through (Device.launch, and Plan._bind once per recorded launch).

What is checked, for a launch of `kernel` with `global_size` and `local_size` (None: the driver chooses):
- dimensions: 1 to 3, a local size with as many as the global one;
- the local size: its product within the kernel's CL_KERNEL_WORK_GROUP_SIZE on this device (register-hungry
  kernels allow less than the device's maximum), each dim within CL_DEVICE_MAX_WORK_ITEM_SIZES, and equal to
  the kernel's reqd_work_group_size where it has one (which also forbids a None local size);
- the global size a multiple of the local size: hetero builds without -cl-std, i.e. as OpenCL C 1.2, where
  work-groups are uniform (partial ones need OpenCL C 2.0 or later);
- the kernel's __local memory (CL_KERNEL_LOCAL_MEM_SIZE) within CL_DEVICE_LOCAL_MEM_SIZE;
- each global dim within 2^31 - 1 for a kernel with int ids: kernels_cl reads its ids into `int`
  (`const int i = get_global_id(0)`; a few `size_t` ones, dims a plane count runs in), except the kernels
  built with -DLONG_INDEX=1, whose ids are `long` (an `index_t` typedef'd on LONG_INDEX); those may use the
  whole size_t of the device. tests/unit/test_limits.py scans the sources to hold this, and the check reads
  LONG_INDEX from the kernel's build options.
With HETERO_STRICT_LIMITS=1 every launch is also checked against STRICT, on any device, and then the number
of work-groups in dims 1 and 2 too (65535 on CUDA-style grids; OpenCL has no query for it). A None local size
counts as one group per work-item there: the driver may choose 1 (it must, for a prime size).

CL_KERNEL_WORK_GROUP_SIZE is taken as the spec says, as the kernel's limit, also where a driver does not
enforce it: rusticl (Mesa 22.3 over llvmpipe) reports 32 for every kernel and runs groups of up to its
device's 1024 correctly, reqd_work_group_size(16, 16, 1) included.

Cost: a kernel's limits are queried once (kept on the kernel object), and a launch shape that passed once
for a kernel is remembered, so a repeated launch pays a set lookup (~0.2 us).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pyopencl as cl

from .errors import HeteroError

STRICT_ENV = "HETERO_STRICT_LIMITS"
INT_IDS_MAX = 2**31 - 1  # the most work-items in one dim that an `int` id can count
_PASSED_MAX = 4096  # launch shapes remembered per kernel as already checked (a bound, not a tuning knob)


class LaunchLimitError(HeteroError):
    """A kernel launch outside what the device, the kernel or (in strict mode) every common GPU allows."""


@dataclass(frozen=True)
class Limits:
    """What one work-group and one launch may use; max_groups is None in a dim where the limit is unknown."""

    name: str
    max_work_group_size: int
    max_work_item_sizes: tuple[int, ...]
    max_groups: tuple[int | None, ...]
    local_mem_bytes: int
    max_global_size: int = 2**64 - 1  # per dim: the device's size_t (CL_DEVICE_ADDRESS_BITS)


# The strictest of the common GPU limits: 256 work-items per group (AMD), 64 in z (NVIDIA), 65535 groups in
# dims 1 and 2 (CUDA grids), 32 KiB of __local (AMD, Intel; NVIDIA has 48).
STRICT = Limits(f"the strict limits ({STRICT_ENV}=1)", 256, (256, 256, 64), (None, 65535, 65535), 32 * 1024)


class KernelLimits(NamedTuple):
    """What one kernel allows on one device (queried once per kernel object)."""

    work_group_size: int  # CL_KERNEL_WORK_GROUP_SIZE
    local_mem_bytes: int  # CL_KERNEL_LOCAL_MEM_SIZE, corrected for drivers that over-report it
    required: tuple[int, ...] | None  # reqd_work_group_size (CL_KERNEL_COMPILE_WORK_GROUP_SIZE), if any
    int_ids: bool = True  # ids read as int (every kernel but those built with -DLONG_INDEX=1)


class Violation(NamedTuple):
    """One limit a launch breaks: what is wrong (with the limit) and what to do."""

    problem: str
    fix: str


def strict_mode(env: str | None = None) -> bool:
    """Whether $HETERO_STRICT_LIMITS asks for the strict limits ("1"; "0" or unset: the device's own only)."""
    value = (os.environ.get(STRICT_ENV, "") if env is None else env).strip()
    if value not in ("", "0", "1"):
        raise HeteroError(f"{STRICT_ENV}={value!r}: use 1 (check every launch against the strict limits of common "
                          "GPUs) or 0 / unset (the device's own limits only)")
    return value == "1"


def device_limits(dev) -> Limits:
    """The limits a device (a hetero Device or a cl.Device) reports; OpenCL cannot say how many groups fit."""
    cd = getattr(dev, "cl_device", dev)
    sizes = tuple(int(s) for s in cd.max_work_item_sizes)
    return Limits(f"the device's limits ({cd.name.strip()})", int(cd.max_work_group_size), sizes,
                  (None,) * len(sizes), int(cd.local_mem_size), 2 ** int(cd.address_bits) - 1)


# ---------------------------------------------------------------- the pure checks

_LOCAL_FIX = ("take the local size from the kernel's limit on the device (Device.work_group_size or "
              "Device.local_size_limit) instead of a constant, or pass None to let the driver choose")


def violations(limits: Limits, kern: KernelLimits, global_size: Sequence[int],
               local_size: Sequence[int] | None) -> list[Violation]:
    """Every limit of `limits` (and the kernel's own) that this launch breaks; [] when it fits. Pure."""
    out: list[Violation] = []
    dims = len(global_size)
    if not 1 <= dims <= len(limits.max_work_item_sizes):
        out.append(Violation(f"{dims} dimensions, outside 1..{len(limits.max_work_item_sizes)}",
                             "launch with 1 to 3 dimensions"))
        return out
    if local_size is not None and len(local_size) != dims:
        out.append(Violation(f"a {len(local_size)}-D local size for a {dims}-D global size",
                             "give the local size as many dimensions as the global size"))
        return out
    for d, g in enumerate(global_size):
        if kern.int_ids and g > INT_IDS_MAX:
            out.append(Violation(f"global size {g} in dim {d} > 2^31 - 1 = {INT_IDS_MAX}, the most an int id counts",
                                 "split the launch, let each work-item loop over several elements, or build "
                                 "the kernel with long ids (-DLONG_INDEX=1, as elementwise.cl)"))
        elif g > limits.max_global_size:
            out.append(Violation(f"global size {g} in dim {d} > {limits.max_global_size}, the device's size_t",
                                 "split the launch"))
    if kern.local_mem_bytes > limits.local_mem_bytes:
        out.append(Violation(f"{kern.local_mem_bytes} bytes of __local memory > {limits.local_mem_bytes}",
                             "use smaller local tiles (their defines), chosen from Device.info.local_mem_bytes"))
    if local_size is None:
        if kern.required is not None:
            out.append(Violation(f"no local size, but the kernel requires {kern.required} "
                                 "(reqd_work_group_size)", "launch with the local size the kernel requires"))
        # The driver picks the local size, and may pick 1 in dims 1 and 2 (it must, for a prime size).
        groups = tuple(global_size)
    else:
        items = math.prod(local_size)
        wg = min(kern.work_group_size, limits.max_work_group_size)
        if items > wg:
            which = ("the kernel's CL_KERNEL_WORK_GROUP_SIZE" if kern.work_group_size <= limits.max_work_group_size
                     else "the most work-items per group")
            out.append(Violation(f"local size {tuple(local_size)} = {items} work-items > {wg}, {which}", _LOCAL_FIX))
        for d, (n, cap) in enumerate(zip(local_size, limits.max_work_item_sizes)):
            if n > cap:
                out.append(Violation(f"local size {n} in dim {d} > {cap}, the most work-items in that dim",
                                     _LOCAL_FIX))
        if kern.required is not None and tuple(local_size) + (1,) * (len(kern.required) - dims) != kern.required:
            out.append(Violation(f"local size {tuple(local_size)}, but the kernel requires {kern.required} "
                                 "(reqd_work_group_size)", "launch with the local size the kernel requires"))
        uneven = [d for d, (g, n) in enumerate(zip(global_size, local_size)) if n <= 0 or g % n]
        if uneven:
            out.append(Violation(f"global size {tuple(global_size)} is not a multiple of local size "
                                 f"{tuple(local_size)} in dim {', '.join(map(str, uneven))} (OpenCL C 1.2 has "
                                 "uniform work-groups only)", "round the global size up to a multiple of the local "
                                 "size and let the kernel skip the work-items past the end"))
            return out
        groups = tuple(g // n for g, n in zip(global_size, local_size))
    for d, (n, cap) in enumerate(zip(groups, limits.max_groups)):
        if cap is not None and n > cap:
            what = "work-items (no local size: as many groups at worst)" if local_size is None else "work-groups"
            out.append(Violation(f"{n} {what} in dim {d} > {cap}",
                                 "put the long extent in dim 0, which has no such limit, or let each work-item "
                                 "loop over several"))
    return out


def format_error(where: str, device: str, kernel: str, global_size: Sequence[int], local_size: Sequence[int] | None,
                 found: list[tuple[Limits, list[Violation]]]) -> str:
    """The LaunchLimitError message: where, which kernel, the sizes, then each broken limit and what to do."""
    local = "None (the driver chooses)" if local_size is None else str(tuple(local_size))
    lines = [f"{where}: launch of {kernel} on {device} with global size {tuple(global_size)}, local size {local} "
             "is outside"]
    for limits, vs in found:
        lines.append(f"  {limits.name}:")
        lines.extend(f"  - {v.problem}; {v.fix}" for v in vs)
    return "\n".join(lines)


# ---------------------------------------------------------------- querying a device and a kernel

# rusticl (Mesa 22.3) reports CL_KERNEL_LOCAL_MEM_SIZE at exactly twice the bytes a kernel declares (4 -> 8,
# 16384 -> 32768, 65536 -> 131072; no fixed part). Taking the figure as it is would refuse kernels using 16 to
# 32 KiB there; halving it for rusticl by name would under-count the day Mesa fixes it. So a device's factor
# is measured from a probe kernel of known __local use, once, and only when a kernel's figure is over a limit:
# PoCL's exact figures never build the probe.
_PROBE_LOCAL_FLOATS = 1024
_PROBE_SRC = (f"__kernel void local_probe(__global float *a) {{ __local float t[{_PROBE_LOCAL_FLOATS}]; "
              "const int l = get_local_id(0); t[l] = a[get_global_id(0)]; barrier(CLK_LOCAL_MEM_FENCE); "
              f"a[get_global_id(0)] = t[{_PROBE_LOCAL_FLOATS - 1} - l]; }}")
_local_factors: dict[int, float] = {}  # cl_device.int_ptr -> reported bytes per declared byte


def local_mem_factor(dev) -> float:
    """How many bytes the driver reports per byte of __local a kernel declares (1 on PoCL, 2 on rusticl)."""
    cd = dev.cl_device
    factor = _local_factors.get(cd.int_ptr)
    if factor is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cl.CompilerWarning)
                prg = cl.Program(dev.context, _PROBE_SRC).build(devices=[cd])
            reported = cl.Kernel(prg, "local_probe").get_work_group_info(
                cl.kernel_work_group_info.LOCAL_MEM_SIZE, cd)
            factor = max(1.0, reported / (4 * _PROBE_LOCAL_FLOATS))
        except cl.Error:  # no probe, no correction: the figure is taken as reported
            factor = 1.0
        _local_factors[cd.int_ptr] = factor
    return factor


def kernel_limits(dev, kernel: cl.Kernel) -> KernelLimits:
    """What `kernel` allows on `dev` (a hetero Device), queried once and kept on the kernel object."""
    kl = getattr(kernel, "_hetero_limits", None)
    if kl is None:
        cd = dev.cl_device
        info = cl.kernel_work_group_info
        wg = int(kernel.get_work_group_info(info.WORK_GROUP_SIZE, cd))
        local = int(kernel.get_work_group_info(info.LOCAL_MEM_SIZE, cd))
        if local > min(STRICT.local_mem_bytes, int(cd.local_mem_size)):
            local = math.ceil(local / local_mem_factor(dev))
        required = tuple(int(n) for n in kernel.get_work_group_info(info.COMPILE_WORK_GROUP_SIZE, cd))
        origin = dev.kernel_origin(kernel) if hasattr(dev, "kernel_origin") else None
        long_ids = origin is not None and "-DLONG_INDEX=1" in origin[1].split()
        kl = KernelLimits(wg, local, required if any(required) else None, not long_ids)
        kernel._hetero_limits = kl
    return kl


def describe_kernel(dev, kernel: cl.Kernel) -> str:
    """'kernels_cl/<file>:<name> (-D...)' where the device built it, else the function name alone."""
    origin = dev.kernel_origin(kernel) if hasattr(dev, "kernel_origin") else None
    if origin is None:
        return f"kernel {kernel.function_name}"
    file, options = origin
    return f"kernels_cl/{file}:{kernel.function_name}" + (f" ({options})" if options else "")


def check_launch(dev, kernel: cl.Kernel, global_size: Sequence[int], local_size: Sequence[int] | None, where: str,
                 *, strict: bool | None = None) -> None:
    """Raise LaunchLimitError when this launch is outside the device's or the kernel's limits (and STRICT's in
    strict mode; None reads $HETERO_STRICT_LIMITS). A shape that passed once for a kernel is not checked again."""
    if strict is None:
        strict = strict_mode()
    key = (tuple(global_size), None if local_size is None else tuple(local_size), strict)
    passed = getattr(kernel, "_hetero_passed", None)
    if passed is not None and key in passed:
        return
    kern = kernel_limits(dev, kernel)
    limits = dev.limits if hasattr(dev, "limits") else device_limits(dev)
    found = [(limits, violations(limits, kern, key[0], key[1]))]
    if strict:  # what the device's limits already said (the kernel's own limit, say) is not said twice
        said = {v.problem for v in found[0][1]}
        found.append((STRICT, [v for v in violations(STRICT, kern, key[0], key[1]) if v.problem not in said]))
    found = [(lim, vs) for lim, vs in found if vs]
    if found:
        label = getattr(dev, "label", None) or dev.cl_device.name.strip()
        raise LaunchLimitError(format_error(where, label, describe_kernel(dev, kernel), key[0], key[1], found))
    if passed is None:
        passed = kernel._hetero_passed = set()
    elif len(passed) >= _PASSED_MAX:
        passed.clear()
    passed.add(key)
