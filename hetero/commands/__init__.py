"""Subcommands of the `hetero` CLI: one module each, exposing `add_parser(subparsers)`; shared argument checks."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path


def output_problem(path: str | os.PathLike) -> str | None:
    """Why a file cannot be written at `path` (a missing or read-only folder, a folder in its place), or None.

    Commands check their output paths before they start, so a long run is not lost at its first write."""
    p = Path(path).expanduser()
    if str(path) == "":
        return "the path is empty"
    if p.is_dir():
        return f"{p} is a folder; name a file in it (e.g. {p / 'run.safetensors'})"
    parent = p.parent
    if not parent.exists():
        return f"the folder {parent} does not exist; create it (mkdir -p {parent}) or choose another path"
    if not parent.is_dir():
        return f"{parent} is not a folder"
    try:  # the only reliable test of a folder's writability (permissions, read-only mounts, ACLs)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        return f"cannot write in {parent} ({e.strerror or e}); choose a folder you can write to"
    if p.exists() and not os.access(p, os.W_OK):
        return f"{p} exists and is read-only; choose another path or make it writable"
    return None


def int_arg(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high], with a message naming the bounds."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_arg(low: float = 0.0, high: float | None = None):
    """An argparse type: a finite number in [low, high]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            bound = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text}")
        return value

    parse.__name__ = "number"
    return parse
