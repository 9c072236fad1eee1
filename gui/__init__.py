"""The hetero desktop app (PySide6 + pyqtgraph), shipped as hetero.gui."""
