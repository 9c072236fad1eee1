"""The `hetero` console script's entry point: hetero.cli.main, with a Ctrl-C during start-up a quiet exit.

It lives outside the hetero package because importing anything inside hetero first runs hetero/__init__.py
(numpy, pyopencl and every module), which is where a Ctrl-C right after launch lands.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Import and run the CLI; exit status 130 (and one line, no traceback) when interrupted while importing."""
    try:
        from hetero.cli import main as cli_main
    except KeyboardInterrupt:
        print("hetero: interrupted", file=sys.stderr)
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
