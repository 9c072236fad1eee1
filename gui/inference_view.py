"""The Inference view: open a checkpoint or an ONNX model, draw a digit or drop images, and see the top-5 classes
and the latency on each ticked device.

Loading and running go through hetero.infer (the `hetero run` code), in a worker thread: the first run on a
device builds its kernels, which can take seconds (minutes on a slow compiler). Models stay loaded per
(file, device) until another file is opened, so a second run costs only the forward passes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QThread, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hetero import infer

from . import qtfix
from .device_panel import BAD, DevicePanel
from .device_panel import COLUMNS as DEVICE_COLUMNS
from .log_panel import LogPanel
from .slots import slot
from .theme import bold_font
from .workers import _build_lock

TOP = 5
RUNS = 5  # timed forward passes per device after the first; their median is the latency shown
COLUMNS = ("Device", "#", "Class", "Probability", f"Latency (median of {RUNS})")
DEVICE, RANK, CLASS, PROB, LATENCY = range(len(COLUMNS))
VALUE_ROLE = Qt.ItemDataRole.UserRole
DRAWING = "Drawing"
BAR = QColor("#9ecae1")
MODEL_FILTER = "Models (*.onnx *.safetensors);;All files (*)"


def image_filter() -> str:
    """The file dialog filter of the image formats this Pillow opens."""
    from hetero.data.folder import image_suffixes

    patterns = " ".join(sorted(f"*{s}" for s in image_suffixes() if s in (".png", ".jpg", ".jpeg", ".bmp",
                                                                           ".gif", ".tif", ".tiff", ".webp")))
    return f"Images ({patterns});;All files (*)"


def is_image(path: str) -> bool:
    """True for a file whose ending Pillow opens; anything else dropped is taken for a model."""
    from hetero.data.folder import image_suffixes

    return Path(path).suffix.lower() in image_suffixes()


def explain(error: BaseException) -> str:
    """A failure in words, with the technical message after it (never a traceback)."""
    name = type(error).__name__
    text = " ".join(str(error).split())[:600] or name
    if isinstance(error, infer.InferenceError):
        return text
    if name == "BuildError":
        return f"The device's OpenCL compiler could not build a kernel for this model. {text}"
    if name == "OutOfMemoryError":
        return f"The device ran out of memory for this model. {text}"
    if name in ("DeviceNotFoundError", "NoPlatformError"):
        return f"The device is not available. {text}"
    return f"Inference failed ({name}): {text}"


# ----- the drawing canvas -----


class DrawingCanvas(QWidget):
    """A square to draw a digit on with the mouse, white on black as MNIST stores digits; or a preview of an
    image file. pixels() is the drawing at SIDE x SIDE, which the model's preprocessing resizes."""

    SIDE = 280
    PEN = 22  # about 2.2 pixels at MNIST's 28x28: the width of its strokes

    sigStroke = Signal()         # a stroke ended (mouse released)
    sigDrawingChosen = Signal()  # the user started drawing while a preview was shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image = QImage(self.SIDE, self.SIDE, QImage.Format.Format_Grayscale8)
        self.image.fill(0)
        self.preview: QImage | None = None
        self.caption = ""
        self._last: QPointF | None = None
        self._blank = True
        self.setMinimumSize(180, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit with the left mouse button; Clear starts again.")

    def sizeHint(self) -> QSize:
        return QSize(300, 300)

    # ----- the drawing -----

    def pixels(self) -> np.ndarray:
        """The drawing as uint8 (SIDE, SIDE), 0 background, 255 ink."""
        img = self.image
        rows = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * img.height())
        return rows.reshape(img.height(), img.bytesPerLine())[:, : img.width()].copy()

    def set_pixels(self, pixels: np.ndarray) -> None:
        """Replace the drawing with a uint8 (H, W) picture (resized to SIDE x SIDE)."""
        a = np.ascontiguousarray(pixels, dtype=np.uint8)
        h, w = a.shape
        data = a.tobytes()  # referenced by img until the scaled copy is made
        img = QImage(data, w, h, w, QImage.Format.Format_Grayscale8)
        self.image = img.scaled(self.SIDE, self.SIDE, Qt.AspectRatioMode.IgnoreAspectRatio,
                                Qt.TransformationMode.SmoothTransformation).convertToFormat(
            QImage.Format.Format_Grayscale8)
        self._blank = not a.any()
        self.update()

    def is_blank(self) -> bool:
        return self._blank

    def clear(self) -> None:
        self.image.fill(0)
        self._blank = True
        self.update()

    def draw_stroke(self, points: list[tuple[float, float]]) -> None:
        """Draw a stroke through points given in drawing coordinates (0..SIDE)."""
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("white"), self.PEN, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                            Qt.PenJoinStyle.RoundJoin))
        pts = [QPointF(x, y) for x, y in points]
        if len(pts) == 1:
            painter.drawPoint(pts[0])
        for a, b in zip(pts, pts[1:]):
            painter.drawLine(a, b)
        painter.end()
        self._blank = False
        self.update()

    def show_preview(self, image: QImage | None, caption: str = "") -> None:
        """Show an image file instead of the drawing (None: the drawing again)."""
        self.preview = image
        self.caption = caption
        self.update()

    # ----- painting and the mouse -----

    def square(self) -> QRectF:
        """Where the drawing lies in the widget: the largest centred square."""
        side = max(1, min(self.width(), self.height()) - 4)
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _to_image(self, pos: QPointF) -> tuple[float, float]:
        r = self.square()
        scale = self.SIDE / r.width()
        return (pos.x() - r.x()) * scale, (pos.y() - r.y()) * scale

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        r = self.square()
        painter.fillRect(r, QColor("black"))
        if self.preview is not None:
            if self.preview.isNull():
                painter.setPen(QColor("#bbbbbb"))
                painter.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                                 f"{self.caption}\n(no preview)")
            else:
                size = self.preview.size().scaled(r.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio)
                target = QRectF(r.x() + (r.width() - size.width()) / 2, r.y() + (r.height() - size.height()) / 2,
                                size.width(), size.height())
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(target, self.preview)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(r, self.image)
            if self._blank:
                painter.setPen(QColor("#8a8a8a"))
                painter.drawText(r, Qt.AlignmentFlag.AlignCenter, "draw a digit here")
        painter.setPen(QPen(QColor("#666666"), 1))
        painter.drawRect(r.adjusted(0, 0, -1, -1))
        painter.end()

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self.preview is not None:
            self.preview = None
            self.sigDrawingChosen.emit()
        self._last = event.position()
        self.draw_stroke([self._to_image(self._last)])

    def mouseMoveEvent(self, event) -> None:
        if self._last is None or not event.buttons() & Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        self.draw_stroke([self._to_image(self._last), self._to_image(pos)])
        self._last = pos

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._last = None
            self.sigStroke.emit()


def pixels_qimage(pixels: np.ndarray) -> QImage:
    """A QImage of uint8 (C, H, W) pixels, C 1 or 3 (what the model is given)."""
    a = np.ascontiguousarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0), np.uint8)
    h, w = a.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if a.ndim == 2 else QImage.Format.Format_RGB888
    data = a.tobytes()  # referenced by the QImage until copied
    return QImage(data, w, h, a.strides[0], fmt).copy()


# ----- the worker -----


class InferenceWorker(QThread):
    """Loads the model on each device and classifies the input there (source None: only loads it on the first).

    A problem of the file or the input (the same on every device) ends the job with sigFailed("", message); a
    device that fails gets sigFailed(its id, message) and the next device is tried. Never touches widgets."""

    sigStatus = Signal(str)              # what is being done, for the busy line
    sigLoaded = Signal(str, object)      # (device id, hetero.infer.LoadedModel)
    sigInput = Signal(object)            # uint8 (C, H, W) pixels the model is given
    sigResult = Signal(str, object)      # (device id, hetero.infer.Prediction)
    sigFailed = Signal(str, str)         # (device id or "" for the file or the input, message)

    def __init__(self, path: str, device_ids: list[str], source: tuple[str, object] | None,
                 cache: dict[tuple[str, str], infer.LoadedModel], parent=None):
        super().__init__(parent)
        self.path = path
        self.device_ids = list(device_ids)
        self.source = source  # ("drawing", uint8 (H, W)) or ("file", path); None: only load (open a model)
        self.cache = cache    # shared with the view, which leaves it alone while a worker runs
        self.cancel = threading.Event()

    def run(self) -> None:
        x = None
        for device_id in self.device_ids:
            if self.cancel.is_set():
                return
            try:
                loaded = self._load(device_id)
                if self.source is None:
                    return
                if x is None:
                    pixels = self._pixels(loaded.prep)
                    self.sigInput.emit(pixels)
                    x = infer.model_input(pixels, loaded.prep)
                self.sigStatus.emit(f"Running on {device_id} (a first run there builds its kernels)…")
                self.sigResult.emit(device_id, infer.classify(loaded, x, TOP, RUNS))
            except infer.InferenceError as e:  # the file or the input: no other device would do better
                self.sigFailed.emit("", explain(e))
                return
            except Exception as e:  # a device that does not open or build: its row says so, the others run
                self.sigFailed.emit(device_id, explain(e))

    def _load(self, device_id: str) -> infer.LoadedModel:
        import hetero

        key = (self.path, device_id)
        loaded = self.cache.get(key)
        if loaded is None:
            self.sigStatus.emit(f"Loading {Path(self.path).name} on {device_id}…")
            dev = hetero.device(device_id)
            # building a checkpoint's model seeds the weight initialiser: never in the middle of a training
            # run's build in another tab (see workers.build_model)
            with _build_lock:
                loaded = infer.load(self.path, dev)
            self.cache[key] = loaded
            self.sigLoaded.emit(device_id, loaded)
        return loaded

    def _pixels(self, prep: infer.Preprocessing) -> np.ndarray:
        kind, value = self.source
        if kind == "file":
            return infer.image_pixels(value, prep)
        return infer.canvas_pixels(value, prep)


# ----- the view -----


class InferenceView(QWidget):
    """Open a model, draw or open an input, tick devices, Run: top classes and latency per device."""

    sigFinished = Signal()  # a job (opening a model or a run) has ended and its results are shown

    def __init__(self, log: LogPanel | None = None, device_panel: DevicePanel | None = None, parent=None):
        qtfix.apply()
        super().__init__(parent)
        self.log = log if log is not None else LogPanel()
        self.devices = device_panel or DevicePanel(split=False)
        self.worker: InferenceWorker | None = None
        self.model_path: str | None = None
        self.model: infer.LoadedModel | None = None  # as loaded on the first device, for its description
        self.cache: dict[tuple[str, str], infer.LoadedModel] = {}
        self.images: list[str] = []  # opened or dropped image files, in the input box after "Drawing"
        self.results: dict[str, infer.Prediction] = {}
        self.device_errors: dict[str, str] = {}
        self._order: list[str] = []  # the devices of the last run, in the table's order
        self._again = False  # a run was asked for while busy: start it when the worker ends
        self.setAcceptDrops(True)

        # model
        self.open_button = QPushButton("Open model…")
        self.open_button.setToolTip("A training checkpoint (.safetensors written by hetero train or the Train tab) "
                                    "or an ONNX model (.onnx). You can also drop the file on this tab.")
        self.open_button.clicked.connect(slot(self.open_model_dialog))
        self.model_label = QLabel("No model: open a checkpoint or an .onnx file, or drop one here.")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.onnx_label = QLabel(infer.onnx_missing() or "")
        self.onnx_label.setWordWrap(True)
        self.onnx_label.setStyleSheet("color: #b26a00;")
        self.onnx_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.onnx_label.setVisible(bool(self.onnx_label.text()))
        # fp16 does not matter here (models run in float32): its room goes to the Status column
        self.devices.tree.setColumnHidden(DEVICE_COLUMNS.index("fp16"), True)
        left, lv = self.devices.column("Devices", 1)
        model_box = QGroupBox("Model")
        mv = QVBoxLayout(model_box)
        mv.addWidget(self.open_button)
        mv.addWidget(self.model_label)
        mv.addWidget(self.onnx_label)
        lv.addWidget(model_box)

        # input
        self.canvas = DrawingCanvas()
        self.canvas.sigStroke.connect(slot(self._stroke_ended))
        self.canvas.sigDrawingChosen.connect(slot(self._choose_drawing))
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(slot(self.clear_drawing))
        self.images_button = QPushButton("Open images…")
        self.images_button.setToolTip("PNG, JPEG or any image Pillow reads; resized and converted to the model's "
                                      "input as hetero run does. You can also drop images on this tab.")
        self.images_button.clicked.connect(slot(self.open_images_dialog))
        self.input_box = QComboBox()
        self.input_box.addItem(DRAWING)
        self.input_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.input_box.setMinimumContentsLength(12)
        self.input_box.currentIndexChanged.connect(slot(self._input_chosen))
        self.seen = QLabel()  # what the model is given, at its own resolution, enlarged
        self.seen.setFixedSize(56, 56)
        self.seen.setStyleSheet("background: black; border: 1px solid #666666;")
        self.seen.setToolTip("The input as the model receives it: resized and converted to its channels")
        self.seen_caption = QLabel("model input")
        self.seen_caption.setStyleSheet("color: #666666;")
        self.frame_box = QCheckBox("Frame the drawing as MNIST does")
        self.frame_box.setChecked(True)
        self.frame_box.setToolTip("Scale the drawn digit to fill 20 of 28 pixels and put its centre of mass in the "
                                  "middle, as MNIST's digits are; then resize it to the model's input like an "
                                  "image file. Off: the whole square is resized as it is.")
        input_group = QGroupBox("Input")
        iv = QVBoxLayout(input_group)
        iv.addWidget(self.canvas, 1)
        row = QHBoxLayout()
        row.addWidget(self.clear_button)
        row.addWidget(self.images_button)
        iv.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Classify"))
        row.addWidget(self.input_box, 1)
        iv.addLayout(row)
        iv.addWidget(self.frame_box)
        row = QHBoxLayout()
        row.addWidget(self.seen)
        row.addWidget(self.seen_caption, 1)
        iv.addLayout(row)

        # results
        self.run_button = QPushButton("Run")
        bold_font(self.run_button)  # (a style sheet would keep it light in the dark theme)
        self.run_button.setToolTip("Classify the input on every ticked device")
        self.run_button.clicked.connect(slot(self.run))
        self.auto_box = QCheckBox("Run after each stroke or new image")
        self.auto_box.setChecked(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # no end known: Qt animates it while shown
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(10)
        self.busy.setVisible(False)
        self.status = QLabel("Open a model, draw a digit, press Run.")
        self.status.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {BAD};")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setVisible(False)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for k in range(len(COLUMNS)):
            header.setSectionResizeMode(k, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(CLASS, QHeaderView.ResizeMode.Stretch)
        self.table.setItemDelegateForColumn(PROB, ProbabilityBar(self.table))
        results_group = QGroupBox("Top 5 per device")
        rv = QVBoxLayout(results_group)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.auto_box, 1)
        rv.addLayout(row)
        rv.addWidget(self.busy)
        rv.addWidget(self.status)
        rv.addWidget(self.message)
        rv.addWidget(self.table, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(input_group)
        split.addWidget(results_group)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 2)
        split.setSizes([400, 320, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        app = QApplication.instance()
        if app is not None:  # a thread still running when Qt tears down aborts the process
            app.aboutToQuit.connect(slot(self.stop_all, None))
        self._update_buttons()

    # ----- opening files -----

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", "", MODEL_FILTER)
        if path:
            self.open_model(path)

    def open_images_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", "", image_filter())
        if paths:
            self.add_images(paths)

    def open_model(self, path: str) -> bool:
        """Load a checkpoint or .onnx file on the first ticked device (in the worker); False while busy."""
        if self.is_running():
            self.show_message("Wait for the current job to end before opening another model.")
            return False
        if infer.is_onnx(path) and infer.onnx_missing():
            self.show_message(f"{path}: {infer.onnx_missing()}")  # said before any device work starts
            return False
        ids = self._device_ids()
        if not ids:
            return False
        path = os.path.abspath(os.path.expanduser(path))
        self.cache.clear()  # one model at a time: the last one's device memory is freed
        self.model_path, self.model = path, None
        self.results, self.device_errors, self._order = {}, {}, []
        self._show_table()
        self.model_label.setText(f"{Path(path).name}: loading…")
        self.model_label.setToolTip(path)
        return self._start(InferenceWorker(path, ids[:1], None, self.cache, self))

    def add_images(self, paths: list[str]) -> None:
        """Put image files in the input box and choose the first (run at once when auto-run is on)."""
        first = None
        for p in paths:
            p = os.path.abspath(os.path.expanduser(p))
            if p not in self.images:
                self.images.append(p)
                self.input_box.addItem(Path(p).name)
                self.input_box.setItemData(self.input_box.count() - 1, p, Qt.ItemDataRole.ToolTipRole)
            if first is None:
                first = p
        if first is None:
            return
        self.input_box.setCurrentIndex(1 + self.images.index(first))  # shows its preview
        if self.auto_box.isChecked():
            self.run_when_ready()

    def dragEnterEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.drop_files([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])
        event.acceptProposedAction()

    def drop_files(self, paths: list[str]) -> None:
        """Dropped files: images become inputs, anything else is opened as the model (the first one)."""
        images = [p for p in paths if is_image(p)]
        models = [p for p in paths if not is_image(p)]
        if models:
            if len(models) > 1:
                self.log.add("warning", f"One model at a time: opening {models[0]}, not the {len(models) - 1} "
                                        "other file(s) dropped with it.")
            if self.open_model(models[0]) and images:
                self._again = self.auto_box.isChecked()  # classify the images once the model is in
        if images:
            self.add_images(images)

    # ----- the input -----

    def clear_drawing(self) -> None:
        self.canvas.clear()
        self._choose_drawing()

    def _choose_drawing(self) -> None:
        self.input_box.setCurrentIndex(0)

    def _input_chosen(self) -> None:
        k = self.input_box.currentIndex()
        self.frame_box.setEnabled(k <= 0)  # framing is for drawings; files are read as hetero run reads them
        if k <= 0:
            self.canvas.show_preview(None)
        else:
            path = self.images[k - 1]
            self.canvas.show_preview(QImage(path), Path(path).name)

    def _stroke_ended(self) -> None:
        if self.auto_box.isChecked() and self.model is not None:
            self.run_when_ready()

    def source(self) -> tuple[str, object] | None:
        """What Run classifies: ("drawing", uint8 (H, W)) or ("file", path); None, with a message, for nothing."""
        k = self.input_box.currentIndex()
        if k > 0:
            return ("file", self.images[k - 1])
        if self.canvas.is_blank():
            self.show_message("The drawing is empty: draw a digit with the mouse, or open or drop an image.")
            return None
        pixels = self.canvas.pixels()
        # a digit drawn across the whole square is larger and less centred than MNIST's ever are
        return ("drawing", infer.frame_like_mnist(pixels) if self.frame_box.isChecked() else pixels)

    # ----- running -----

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def run(self) -> bool:
        """Classify the input on every ticked device; False (with a message) when it cannot start."""
        if self.is_running():
            self._again = True
            return False
        if self.model_path is None:
            self.show_message("Open a model first: a checkpoint (.safetensors) or an .onnx file.")
            return False
        if self.model is None:
            self.show_message("The model did not load (see above): open another file.")
            return False
        source = self.source()
        ids = self._device_ids()
        if source is None or not ids:
            return False
        self.results, self.device_errors, self._order = {}, {}, ids
        self._show_table()
        self.seen.clear()  # the last input's picture would pass for this one's until the worker sends it
        self.seen_caption.setText("model input")
        return self._start(InferenceWorker(self.model_path, ids, source, self.cache, self))

    def run_when_ready(self) -> None:
        """Run now, or as soon as the current job ends."""
        if self.is_running():
            self._again = True
        elif self.model is not None:
            self.run()

    def stop_all(self, wait_ms: int | None = 2000) -> bool:
        """Ask the worker to stop after the current device and wait for it (None: as long as it takes)."""
        self._again = False
        worker = self.worker
        if worker is None:
            return True
        try:
            worker.cancel.set()
            return worker.wait() if wait_ms is None else worker.wait(wait_ms)
        except RuntimeError:  # at quit, after Qt has deleted the view and its worker: nothing runs any more
            return True

    def _device_ids(self) -> list[str]:
        ids = self.devices.selected_ids()
        if not ids:
            usable = any(info.usable for info in self.devices.infos)
            self.show_message("Tick at least one device in the list." if usable else
                              "No usable OpenCL device: install an OpenCL driver (see `hetero devices`).")
        return ids

    def _start(self, worker: InferenceWorker) -> bool:
        self.worker = worker
        worker.sigStatus.connect(self._on_status)
        worker.sigLoaded.connect(self._on_loaded)
        worker.sigInput.connect(self._on_input)
        worker.sigResult.connect(self._on_result)
        worker.sigFailed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self.show_message("")
        self._status("Starting…")
        worker.start()
        self._update_buttons()
        return True

    @Slot(str)
    def _on_status(self, text: str) -> None:
        self._status(text)

    def _status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))  # an empty line would leave a gap above the message

    @Slot(str, object)
    def _on_loaded(self, device_id: str, loaded) -> None:
        if self.model is None and loaded.path == self.model_path:
            self.model = loaded
            self.model_label.setText(f"{Path(loaded.path).name}: {loaded.describe()}")
            self.log.add("info", f"Model {loaded.path} loaded on {device_id}: {loaded.describe()}.")

    @Slot(object)
    def _on_input(self, pixels) -> None:
        img = pixels_qimage(pixels)
        self.seen.setPixmap(_nearest_pixmap(img, self.seen.size()))
        c, h, w = pixels.shape
        self.seen_caption.setText(f"model input: {c}x{h}x{w}")

    @Slot(str, object)
    def _on_result(self, device_id: str, prediction) -> None:
        self.results[device_id] = prediction
        self._show_table()

    @Slot(str, str)
    def _on_failed(self, device_id: str, message: str) -> None:
        if device_id:
            self.device_errors[device_id] = message
            self._show_table()
            self.log.add("error", f"{device_id}: {message}")
        else:
            self.show_message(message)
            self.log.add("error", message)

    @Slot()
    def _on_finished(self) -> None:
        self.worker.wait()  # queued from its last moments: returns as soon as its thread has ended
        cancelled = self.worker.cancel.is_set()
        self.worker = None
        if self.model is None and self.model_path is not None:
            self.model_label.setText(f"{Path(self.model_path).name}: could not be loaded.")
            if self.device_errors and self.message.isHidden():  # it failed on the device, not in the file
                self.show_message(next(iter(self.device_errors.values())))
        if self.results:
            best = min(self.results.values(), key=lambda p: p.latency_ms)
            self._status(f"{len(self.results)} device(s): top class {best.top[0][1]}; fastest "
                         f"{best.device_id} at {best.latency_ms:.2f} ms.")
        elif self.model is not None and not self.device_errors and self.message.isHidden():
            self._status("Model ready: draw a digit or open an image, then Run.")
        else:
            self._status("")
        self._update_buttons()
        self.sigFinished.emit()
        again, self._again = self._again, False
        if again and not cancelled and self.model is not None:
            self.run()

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.busy.setVisible(running)
        self.open_button.setEnabled(not running)
        self.run_button.setEnabled(not running)

    def show_message(self, text: str) -> None:
        """The tab's error line ('' hides it)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # ----- the table -----

    def _show_table(self) -> None:
        rows: list[tuple[str, object]] = []
        for device_id in self._order:
            if device_id in self.results:
                rows.append((device_id, self.results[device_id]))
            elif device_id in self.device_errors:
                rows.append((device_id, self.device_errors[device_id]))
        self.table.clearSpans()
        self.table.setRowCount(sum(len(r.top) if not isinstance(r, str) else 1 for _, r in rows))
        n = 0
        for device_id, result in rows:
            height = 1 if isinstance(result, str) else len(result.top)
            name = QTableWidgetItem(device_id)
            name.setToolTip(self.devices.label(device_id) if _known(self.devices, device_id) else device_id)
            name.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(n, DEVICE, name)
            if height > 1:
                self.table.setSpan(n, DEVICE, height, 1)
            if isinstance(result, str):
                error = QTableWidgetItem(result)
                error.setForeground(QBrush(QColor(BAD)))
                error.setToolTip(result)
                self.table.setItem(n, RANK, error)
                self.table.setSpan(n, RANK, 1, len(COLUMNS) - 1)
                n += 1
                continue
            right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            for k, (index, cls, p) in enumerate(result.top):
                self._set(n + k, RANK, str(k + 1), None, Qt.AlignmentFlag.AlignCenter)
                self._set(n + k, CLASS, cls if cls == str(index) else f"{cls} ({index})", index)
                self._set(n + k, PROB, f"{100 * p:.2f}%", p, right)
            latency = self._set(n, LATENCY, f"{result.latency_ms:.2f} ms", result.latency_ms, right)
            latency.setToolTip(f"median of {result.runs} runs, each from upload to read back of one image; the "
                               f"first run took {result.first_ms:.1f} ms (it builds kernels not built before)")
            if height > 1:
                self.table.setSpan(n, LATENCY, height, 1)
            n += height

    def _set(self, row: int, col: int, text: str, value, align=None) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        if value is not None:
            item.setData(VALUE_ROLE, value)
        if align is not None:
            item.setTextAlignment(align)
        self.table.setItem(row, col, item)
        return item

    def table_rows(self, device_id: str) -> list[tuple[int, float]]:
        """(class index, probability) of a device's rows in the table, as shown, most probable first."""
        out = []
        current = None
        for r in range(self.table.rowCount()):
            item = self.table.item(r, DEVICE)
            if item is not None:
                current = item.text()
            cls, prob = self.table.item(r, CLASS), self.table.item(r, PROB)
            if current == device_id and cls is not None and prob is not None:
                out.append((int(cls.data(VALUE_ROLE)), float(prob.data(VALUE_ROLE))))
        return out


def _known(panel: DevicePanel, device_id: str) -> bool:
    try:
        panel.info(device_id)
    except Exception:
        return False
    return True


class ProbabilityBar(QStyledItemDelegate):
    """A probability cell: a bar from the left as long as the probability, the text over it."""

    def paint(self, painter: QPainter, option, index) -> None:
        p = index.data(VALUE_ROLE)
        if isinstance(p, float):
            r = option.rect.adjusted(1, 3, -1, -3)
            painter.fillRect(QRectF(r.x(), r.y(), r.width() * min(max(p, 0.0), 1.0), r.height()), BAR)
        super().paint(painter, option, index)


def _nearest_pixmap(img: QImage, size: QSize):
    """The image enlarged without smoothing, so each model input pixel stays a visible square."""
    from PySide6.QtGui import QPixmap

    return QPixmap.fromImage(img.scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation))
