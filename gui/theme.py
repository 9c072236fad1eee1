"""Light and dark themes for the widgets and the pyqtgraph plots; "auto" follows the desktop's colour scheme
(QStyleHints.colorScheme, Qt 6.5 and later) and changes with it."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

MODES = ("auto", "light", "dark")


@dataclass(frozen=True)
class Colours:
    """What the plots and painted widgets draw with in one theme."""

    dark: bool
    background: str   # plots and painted panels
    foreground: str   # axes, titles, labels, text
    muted: str        # secondary text (a data-parallel run's device rows, empty-panel hints)
    fill: tuple[int, int, int, int]  # behind labels drawn over curves (legends, the best epoch, checkpoint lines)
    correct: str      # the digit grid's captions of right answers


LIGHT = Colours(False, "#ffffff", "#333333", "#666666", (255, 255, 255, 232), "#1f7a1f")
DARK = Colours(True, "#1e1e1e", "#dddddd", "#a0a0a0", (30, 30, 30, 232), "#6fcf6f")

_current = LIGHT
_mode = "light"
_light_palette: QPalette | None = None
# what apply() restyles: widgets that registered (walking app.allWidgets() reaches widgets half torn down)
_themed: weakref.WeakSet = weakref.WeakSet()


def bold_font(widget: QWidget) -> None:
    """Make a widget's text bold through its font: a style sheet would keep it out of palette changes (a white
    button in the dark theme)."""
    font = widget.font()
    font.setBold(True)
    widget.setFont(font)


def register(widget: QObject) -> None:
    """Have apply() call widget.apply_theme(colours) from now on (it is forgotten once deleted)."""
    _themed.add(widget)


def colours() -> Colours:
    """The theme now in use."""
    return _current


def mode() -> str:
    return _mode


def desktop_is_dark() -> bool:
    """Whether the desktop asks for dark colours: its colour scheme where Qt knows it (6.5+), else how dark the
    platform's own window colour is."""
    app = QGuiApplication.instance()
    if app is None:
        return False
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value == Qt.ColorScheme.Dark:
            return True
        if value == Qt.ColorScheme.Light:
            return False
    base = _light_palette if _light_palette is not None else app.palette()
    return base.color(QPalette.ColorRole.Window).lightness() < 128


def dark_palette() -> QPalette:
    """Fusion's colours turned dark (Fusion ignores the desktop's scheme on X11)."""
    p = QPalette()
    window, base, text = QColor("#2b2b2b"), QColor("#1e1e1e"), QColor("#e6e6e6")
    for role, colour in ((QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
                         (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, QColor("#262626")),
                         (QPalette.ColorRole.ToolTipBase, QColor("#3a3a3a")), (QPalette.ColorRole.ToolTipText, text),
                         (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor("#353535")),
                         (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor("#ff6b6b")),
                         (QPalette.ColorRole.Highlight, QColor("#2f6db5")),
                         (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
                         (QPalette.ColorRole.Link, QColor("#6ea8ff")),
                         (QPalette.ColorRole.PlaceholderText, QColor("#9a9a9a")),
                         (QPalette.ColorRole.Mid, QColor("#4a4a4a")), (QPalette.ColorRole.Dark, QColor("#202020")),
                         (QPalette.ColorRole.Light, QColor("#505050")), (QPalette.ColorRole.Shadow, QColor("#000000"))):
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#777777"))
    return p


def apply(new_mode: str) -> Colours:
    """Use the light or dark theme ("auto": the desktop's) for the whole app: its palette, the defaults of plots
    made from now on, and every plot and themed widget already shown."""
    global _current, _mode, _light_palette
    if new_mode not in MODES:
        raise ValueError(f"theme: {new_mode!r} is not one of {', '.join(MODES)}")
    app = QApplication.instance()
    if _light_palette is None and app is not None:
        _light_palette = QPalette(app.palette())  # the platform's own, to go back to
    _mode = new_mode
    dark = desktop_is_dark() if new_mode == "auto" else new_mode == "dark"
    _current = DARK if dark else LIGHT
    pg.setConfigOptions(background=_current.background, foreground=_current.foreground)
    if app is not None:
        app.setPalette(dark_palette() if dark else QPalette(_light_palette))
    for widget in list(_themed):
        if shiboken6.isValid(widget):
            widget.apply_theme(_current)
    return _current


def style_plot(widget: pg.PlotWidget, c: Colours) -> None:
    """A plot's background, axes, title and legend in the theme's colours."""
    widget.setBackground(c.background)
    item = widget.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(c.foreground)
        axis.setTextPen(c.foreground)
        axis.labelStyle = {**axis.labelStyle, "color": c.foreground}
        axis._updateLabel()  # (pyqtgraph has no public way to recolour a label already set)
    title = item.titleLabel
    title.setAttr("color", c.foreground)
    title.setText(title.text)
    legend = item.legend
    if legend is not None:
        legend.setBrush(pg.mkBrush(*c.fill))
        legend.setLabelTextColor(c.foreground)
        for _, label in legend.items:  # setLabelTextColor only takes effect on the next text
            label.setText(label.text, color=c.foreground)
