"""Build OpenCL programs from kernels_cl/ with -D defines; memoise them and cache binaries on disk (on drivers
without a build cache of their own)."""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from importlib import resources
from pathlib import Path

import pyopencl as cl

from .atomic import write_cache
from .errors import BuildError

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.M)
Defines = dict[str, "int | float | str"]


def kernel_dir() -> Path:
    """The folder holding the .cl sources, inside the installed package."""
    return Path(str(resources.files("hetero.kernels_cl")))


def cache_dir() -> Path:
    """Where probe verdicts and program binaries are cached (HETERO_CACHE_DIR, else ~/.cache/hetero)."""
    env = os.environ.get("HETERO_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "hetero"


def load_source(file: str) -> str:
    """Source of kernels_cl/<file> with its local #include "x.h" lines inlined (so the hash covers them)."""
    path = kernel_dir() / file
    if not path.is_file():
        names = sorted(p.name for p in kernel_dir().glob("*.cl"))
        raise FileNotFoundError(f"no kernel file kernels_cl/{file}; available: {', '.join(names)}")
    text = path.read_text()
    seen: set[str] = set()

    def inline(m: re.Match) -> str:
        name = m.group(1)
        if name in seen:
            return ""
        seen.add(name)
        return _INCLUDE.sub(inline, (kernel_dir() / name).read_text())

    return _INCLUDE.sub(inline, text)


def format_options(defines: Defines | None, extra: tuple[str, ...] = ()) -> str:
    """Compiler options for the defines, sorted so the same set always gives the same key."""
    opts = [f"-D{k}={_fmt(v)}" for k, v in sorted((defines or {}).items())]
    return " ".join(opts + list(extra))


def _fmt(v: int | float | str | bool) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v) + "f"
    return str(v)


class Program:
    """A built program with its kernels fetched once (kernel objects are reused for every launch)."""

    def __init__(self, program: cl.Program, file: str, options: str):
        self.program = program
        self.file = file
        self.options = options
        self._kernels: dict[str, cl.Kernel] = {}

    def kernel(self, name: str) -> cl.Kernel:
        """The program's untyped kernel object for `name`, made once."""
        k = self._kernels.get(name)
        if k is None:
            k = self._kernels[name] = self.new_kernel(name)
        return k

    def new_kernel(self, name: str) -> cl.Kernel:
        """A kernel object of its own for `name` (KeyError naming the file if it has none)."""
        try:
            return cl.Kernel(self.program, name)
        except cl.Error as e:
            raise KeyError(f"kernels_cl/{self.file} has no kernel {name!r} ({e})") from None


def driver_caches_builds(device: cl.Device) -> bool:
    """Whether the driver keeps its own cache of source builds (PoCL, NVIDIA, unless switched off), so that
    hetero keeps no binaries for it: asking PoCL for a program's binary compiles every kernel in it for a
    generic work-group size, which its own cache of the kernels actually launched never pays."""
    platform = device.platform.name
    if platform == "Portable Computing Language":
        return os.environ.get("POCL_KERNEL_CACHE", "1") != "0"
    if "NVIDIA" in platform:
        return os.environ.get("CUDA_CACHE_DISABLE", "0") != "1"
    return False


def build(context: cl.Context, device: cl.Device, file: str, options: str, label: str) -> Program:
    """Build kernels_cl/<file> for one device: from hetero's disk cache when it holds a matching binary,
    except on drivers that cache builds themselves (driver_caches_builds)."""
    source = load_source(file)
    own_cache = not driver_caches_builds(device)
    key = _cache_key(device, source, options)
    path = cache_dir() / "programs" / f"{key}.bin"
    if own_cache and path.is_file():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cl.CompilerWarning)  # remarks replayed from the binary
                prg = cl.Program(context, [device], [path.read_bytes()]).build(options=options)
            return Program(prg, file, options)
        except cl.Error:
            pass  # stale or corrupt binary: rebuild from source below and overwrite it
    prg = cl.Program(context, source)
    try:
        with warnings.catch_warnings():
            # compiler remarks are not the user's business; a failed build raises with the full log
            warnings.simplefilter("ignore", cl.CompilerWarning)
            prg.build(options=options, devices=[device])
    except cl.RuntimeError as e:
        log = _build_log(prg, device) or str(e)
        raise BuildError(file, label, options, log) from None
    if own_cache:
        write_cache(path, prg.get_info(cl.program_info.BINARIES)[0])
    return Program(prg, file, options)


def _build_log(prg: cl.Program, device: cl.Device) -> str:
    try:
        return prg.get_build_info(device, cl.program_build_info.LOG).strip()
    except cl.Error:
        return ""


def _cache_key(device: cl.Device, source: str, options: str) -> str:
    h = hashlib.sha256()
    for part in (device.platform.name, device.name, device.driver_version, device.version, options, source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]

