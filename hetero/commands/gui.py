"""`hetero gui`: the desktop app. Qt is imported only when the command runs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..gui.app import add_arguments  # argparse only; the app module imports Qt inside run_app

    p = sub.add_parser("gui", help="open the desktop app: train with live plots, compare devices")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..gui.app import run_app

    return run_app(args)
