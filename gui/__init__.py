"""The hetero desktop app (PySide6 + pyqtgraph), shipped as hetero.gui. Qt is imported only when it runs."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point of `hetero-gui`."""
    from .app import main as app_main

    return app_main(argv)


__all__ = ["main"]
