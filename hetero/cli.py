"""The `hetero` command line: parses arguments and dispatches to the subcommand modules."""

from __future__ import annotations

import argparse
import sys

from ._version import __version__
from .commands import bench, devices, doctor, evaluate, export, gui, run, summary, train
from .errors import HeteroError

# Each subcommand module registers its own parser; the order here is the order in `--help`.
COMMANDS = [devices, train, evaluate, run, export, summary, gui, bench, doctor]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hetero", description="Vendor-neutral OpenCL deep learning: "
                                "list devices, train CNNs, compare devices.")
    p.add_argument("--version", action="version", version=f"hetero {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status (2: bad arguments, 1: an error, 130: interrupted)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            print(f"hetero: error: name a command ({', '.join(c.__name__.rsplit('.', 1)[-1] for c in COMMANDS)})",
                  file=sys.stderr)
            return 2
        return args.func(args)
    except HeteroError as e:
        print(f"hetero: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hetero: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hetero devices | head`: the reader left, nothing more to say
        return 0
    except OSError as e:
        if e.filename is None:
            raise
        # a file the user named or owns (unreadable, missing, full disk): the path and why, not a traceback
        print(f"hetero: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
