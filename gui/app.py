"""`hetero-gui` / `hetero gui`: make the application, show the window, optionally run the demo and screenshot."""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import subprocess
import sys

# What Qt's X11 platform plugin (libqxcb.so, libQt6XcbQpa.so) loads, with the Debian/Ubuntu package of each.
# Qt says "xcb-cursor0 is needed" whichever of them is missing; this list lets `hetero gui` name the real ones.
XCB_LIBRARIES = (
    ("libxcb.so.1", "libxcb1"), ("libX11.so.6", "libx11-6"), ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-util.so.1", "libxcb-util1"), ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"), ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-render.so.0", "libxcb-render0"), ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-shape.so.0", "libxcb-shape0"), ("libxcb-shm.so.0", "libxcb-shm0"), ("libxcb-sync.so.1", "libxcb-sync1"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"), ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon.so.0", "libxkbcommon0"), ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libGL.so.1", "libgl1"), ("libglib-2.0.so.0", "libglib2.0-0"),
)


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
    if not QApplication.instance() and uses_xcb():
        missing = missing_xcb_libraries()
        if missing:  # Qt would abort with "xcb-cursor0 is needed" whichever is missing
            print(xcb_message(missing), file=sys.stderr)
            return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("hetero")
    if not QApplication.instance().property("hetero_styled"):
        app.setStyle("Fusion")
        app.setProperty("hetero_styled", True)
    window = MainWindow(demo=bool(args.demo or args.screenshot))
    # at most the screen's free area: a larger window runs off a 1280x800 screen with its buttons unseen
    free = app.primaryScreen().availableGeometry()
    restored = window.restore_geometry()  # as the last session left it (never in --demo / --screenshot mode)
    if not restored:
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
    if not restored and (free.width() < 1560 or free.height() < 960):
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


def uses_xcb() -> bool:
    """Whether Qt will draw through X11 (its xcb plugin): asked for by QT_QPA_PLATFORM, or Linux's default
    outside a Wayland session."""
    chosen = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen == "xcb"
    if not sys.platform.startswith("linux"):
        return False
    wayland = os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland"
    return bool(os.environ.get("DISPLAY")) and not wayland


def known_libraries() -> set[str] | None:
    """The shared libraries the dynamic linker's cache lists (`ldconfig -p`), or None where there is no cache."""
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        return {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    return None


def library_present(soname: str, cache: set[str] | None) -> bool:
    """Whether the dynamic linker finds `soname`: in its cache, in $LD_LIBRARY_PATH or beside Qt's own libraries
    (without a cache, by loading it)."""
    if cache is not None and soname in cache:
        return True
    folders = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    try:
        import PySide6

        folders.append(os.path.join(os.path.dirname(PySide6.__file__), "Qt", "lib"))
    except ImportError:
        pass
    if any(os.path.exists(os.path.join(d, soname)) for d in folders):
        return True
    if cache is None:
        try:
            ctypes.CDLL(soname)
            return True
        except OSError:
            return False
    return False


def missing_xcb_libraries() -> list[tuple[str, str]]:
    """(library, Debian package) of each library Qt's xcb plugin needs that cannot be found."""
    libraries = known_libraries()
    return [(soname, package) for soname, package in XCB_LIBRARIES if not library_present(soname, libraries)]


def xcb_message(missing: list[tuple[str, str]]) -> str:
    """What `hetero gui` says instead of Qt's misleading "xcb-cursor0 is needed" (and its abort)."""
    names = ", ".join(soname for soname, _ in missing)
    packages = " ".join(dict.fromkeys(package for _, package in missing))
    return (f"hetero gui: Qt's X11 platform plugin (xcb) needs libraries this system lacks: {names}.\n"
            f"  Debian/Ubuntu: sudo apt-get install {packages}\n"
            f"  Elsewhere: install the packages that provide those files (Fedora: xcb-util-cursor, xcb-util-wm, "
            f"xcb-util-keysyms, xcb-util-image, xcb-util-renderutil, libxkbcommon-x11).\n"
            f"  Or run without a display: QT_QPA_PLATFORM=offscreen hetero gui --screenshot FILE")


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
