"""Start the ReID Video Search desktop app.

Usage (from the ``GUI`` folder)::

    python main.py [--video FILE]... [--query PHOTO]... [--db FILE] [--search]

``--video`` opens videos (the first is shown, all are checked for searching),
``--query`` adds query photos, ``--db`` picks the library database for this run,
``--search`` starts indexing + searching right away.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

try:  # the installed project (install.sh: pip install -e .) makes core/ and GUI/ importable from anywhere
    import core  # noqa: F401
except ImportError:  # pragma: no cover - only without the install step
    sys.exit("ReID Video Search is not installed in this Python: run ./install.sh first (it installs the "
             "project into .venv), then start the app with ../.venv/bin/python main.py.")

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from GUI.main_window import MainWindow


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (Qt's own options are left to Qt)."""
    parser = argparse.ArgumentParser(prog="main.py",
                                     description="ReID Video Search: find a person in videos.")
    parser.add_argument("--video", action="append", default=[], metavar="FILE",
                        help="video to open (repeatable; the first one is shown)")
    parser.add_argument("--query", action="append", default=[], metavar="PHOTO",
                        help="photo of the person to find (repeatable)")
    parser.add_argument("--db", metavar="FILE", help="library database for this run (default: from Settings)")
    parser.add_argument("--search", action="store_true", help="index and search right away")
    args, _qt_args = parser.parse_known_args(argv)
    return args


STYLE_SHEET = """
QLabel#hint { color: #6b7280; }
QLabel#emptyTitle { font-size: 20pt; font-weight: 600; color: #e5e7eb; }
QLabel#emptyText { font-size: 11pt; color: #cbd5e1; line-height: 150%; }
QWidget#emptyState { background: #121418; }
QPushButton#primary { background: #1e88e5; color: white; border: 1px solid #1565c0; border-radius: 4px;
                      padding: 4px 14px; font-weight: 600; }
QPushButton#primary:hover { background: #2196f3; }
QPushButton#primary:disabled { background: #90a4ae; border-color: #78909c; color: #eceff1; }
QGroupBox { font-weight: 600; }
"""


def create_app(argv: list[str] | None = None) -> QApplication:
    """Create (or return) the ``QApplication`` with the app's names, style and icon."""
    from PySide6.QtWidgets import QApplication

    from GUI.icons import app_icon
    from GUI.settings import APPLICATION, ORGANISATION

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
    app.setWindowIcon(app_icon())
    return app


def install_excepthook(window: MainWindow | None) -> None:
    """Show unexpected errors in a message box instead of dying silently."""
    import traceback

    def hook(kind, value, tb):
        logging.getLogger("GUI").error("".join(traceback.format_exception(kind, value, tb)))
        if window is not None:
            window.show_message("error", f"Unexpected error: {kind.__name__}: {value}")

    sys.excepthook = hook


def quit_on_signals(app: QApplication) -> None:
    """Ctrl+C / SIGTERM close the window cleanly (settings saved, workers joined) instead of killing it."""
    import signal

    from PySide6.QtCore import QTimer

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    # Python runs signal handlers only when it gets control: wake it up now and then.
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(300)


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("GUI").setLevel(logging.INFO)
    app = create_app(sys.argv if argv is None else [sys.argv[0], *argv])

    from GUI.main_window import MainWindow
    from GUI.settings import SettingsStore

    window = MainWindow(SettingsStore(), db_path=args.db)
    install_excepthook(window)
    app.aboutToQuit.connect(window.close)  # however the app ends, workers are stopped and joined
    quit_on_signals(app)
    window.show()
    window.open_initial(args.video, args.query, run=args.search)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
