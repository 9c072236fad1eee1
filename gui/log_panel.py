"""The log panel: what happened, in words, with warnings and errors in colour."""

from __future__ import annotations

import html
import sys
import time

from PySide6.QtWidgets import QPlainTextEdit

from . import theme

LEVEL_COLOURS = {"info": "#333333", "warning": "#b26a00", "error": "#b00020"}


def as_html(text: str) -> str:
    """Escaped text whose line breaks and indentation show (HTML would run a "Looked in:" list together)."""
    lines = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        lines.append("&nbsp;" * (len(line) - len(stripped)) + html.escape(stripped))
    return "<br>".join(lines)


class LogPanel(QPlainTextEdit):
    """Read-only, newest line last. `entries` keeps (level, message) for whoever needs to check them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setPlaceholderText("Messages about training and benchmarks appear here.")
        self.entries: list[tuple[str, str]] = []
        self._lines: list[tuple[str, str, str, str]] = []  # (stamp, level, message, source), to redraw in a theme
        theme.register(self)

    def add(self, level: str, message: str, source: str = "") -> None:
        """Show a message; 'debug' (tracebacks) goes to stderr only, the panel already says what failed."""
        if level == "debug":
            print(message, file=sys.stderr)
            return
        level = level if level in LEVEL_COLOURS else "info"
        self.entries.append((level, message))
        stamp = time.strftime("%H:%M:%S")
        self._lines.append((stamp, level, message, source))
        del self._lines[:-self.maximumBlockCount()]
        self._append(stamp, level, message, source)

    def apply_theme(self, c: theme.Colours) -> None:
        """Draw every line again in the theme's colours (an info line's dark grey vanishes on a dark ground)."""
        self.clear()
        for line in self._lines:
            self._append(*line)

    def _append(self, stamp: str, level: str, message: str, source: str) -> None:
        prefix = {"warning": "Warning: ", "error": "Error: "}.get(level, "")
        where = f"[{html.escape(source)}] " if source else ""
        weight = "bold" if level == "error" else "normal"
        colour = theme.colours().foreground if level == "info" else LEVEL_COLOURS[level]  # readable either theme
        self.appendHtml(f'<span style="color:#888888">{stamp}</span> {where}'
                        f'<span style="color:{colour}; font-weight:{weight}">'
                        f"{as_html(prefix + message)}</span>")

    def count(self, level: str) -> int:
        return sum(1 for lv, _ in self.entries if lv == level)
