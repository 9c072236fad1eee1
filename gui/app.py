"""`hetero-gui` / `hetero gui`: make the application, show the window, optionally run the demo and screenshot."""

from __future__ import annotations

import argparse
import gc
import os
import sys


def _output_file(text: str) -> str:
    """An argparse type: a file path that can be written (checked before the window opens)."""
    from hetero.commands import output_problem

    problem = output_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _data_folder(text: str) -> str:
    if not os.path.isdir(os.path.expanduser(text)):
        raise argparse.ArgumentTypeError(f"{text}: no such folder; name the folder that holds the IDX files")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The app's command-line options (shared by `hetero gui` and `hetero-gui`), each checked as it is parsed."""
    from hetero.commands import float_arg, int_arg

    p.add_argument("--demo", action="store_true", help="start training LeNet-5 on the default device at once")
    p.add_argument("--screenshot", metavar="FILE", type=_output_file,
                   help="save a screenshot of the window to FILE, then exit")
    p.add_argument("--after", metavar="SECONDS", type=float_arg(0.0, 86400.0), default=5.0,
                   help="when to take the screenshot (default 5)")
    p.add_argument("--device", metavar="SPEC", help="devices to tick, e.g. 'cpu', '0:0', 'cpu/2'")
    p.add_argument("--data", metavar="DIR", type=_data_folder,
                   help="folder with the MNIST IDX files (default $HETERO_DATA_DIR)")
    p.add_argument("--epochs", type=int_arg(1, 1000), default=None, help="epochs for the demo (default 3)")


def run_app(args: argparse.Namespace) -> int:
    """Run the window until it closes; with --screenshot, exit 0 once the PNG is written."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .slots import slot

    if not QApplication.instance() and not _display_available():
        if not args.screenshot:
            print("hetero gui: no display (neither DISPLAY nor WAYLAND_DISPLAY is set). Run it on a desktop, "
                  "or headless with QT_QPA_PLATFORM=offscreen and --screenshot FILE.", file=sys.stderr)
            return 1
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("hetero")
    if not QApplication.instance().property("hetero_styled"):
        app.setStyle("Fusion")
        app.setProperty("hetero_styled", True)
    window = MainWindow(demo=bool(args.demo or args.screenshot))
    # at most the screen's free area: a larger window runs off a 1280x800 screen with its buttons unseen
    free = app.primaryScreen().availableGeometry()
    window.resize(min(1560, free.width()), min(960, free.height()))
    view = window.train_view
    if args.data:
        view.data_edit.setText(os.path.abspath(args.data))
    if args.device:
        try:
            view.devices.select_spec(args.device)
            window.compare_view.devices.select_spec(args.device)
        except Exception as e:
            window.log.add("error", f"--device {args.device}: {e}")
    if args.demo:
        view.model_box.setCurrentText("lenet5")
        view.dataset_box.setCurrentText("mnist")
        view.epochs_box.setValue(args.epochs or 3)
        QTimer.singleShot(0, slot(view.start))
    if free.width() < 1560 or free.height() < 960:
        window.showMaximized()  # the frame fits the screen too: resized, its title bar pushes the status bar off
    else:
        window.show()
    result = {"code": 0}
    if args.screenshot:
        def shoot() -> None:
            view.redraw()
            ok = window.grab().save(args.screenshot)
            if not ok:
                print(f"hetero gui: could not write the screenshot {args.screenshot}", file=sys.stderr)
            result["code"] = 0 if ok else 1
            window.close()  # once the workers have stopped; closing the last window ends app.exec()

        QTimer.singleShot(int(args.after * 1000), shoot)
    app.exec()
    # Tear the window down while Qt and Python are both whole: left to interpreter shutdown, the
    # collector may free PySide objects after Qt is gone (a crash at exit instead of a clean 0).
    window.deleteLater()

    QApplication.processEvents()
    gc.collect()
    return result["code"]


def _display_available() -> bool:
    """Whether Qt has somewhere to draw: a chosen platform plugin, or an X11/Wayland display on Linux."""
    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hetero-gui", description="The hetero desktop app: train and compare "
                                "CNNs on any OpenCL device.")
    add_arguments(p)
    return run_app(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
