"""Take assets/screenshot.png (the real app after a search on vtest.avi) and assets/contact_sheet.png.

Run it under a real X server (Xvfb), not the offscreen platform::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot.py --threshold 0.6

It indexes the video (resumable; instant when the library already has it), searches
for the person in the query photo, selects the best hit and grabs the window; then it
exports the best hits shown through the window's own export (``core.clips``, no clips)
and keeps the contact sheet. Settings are kept in a temporary INI file, never in the
user's settings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings

from core.paths import REPO_ROOT as REPO
from GUI.main import create_app
from GUI.settings import AppSettings, SettingsStore


def pump(app, predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(REPO.parent / "shared" / "data" / "video" / "vtest.avi"))
    parser.add_argument("--query", default=str(REPO / "assets" / "sample_query.jpg"))
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "reid-screenshot" / "lib.sqlite"))
    parser.add_argument("--out", default=str(REPO / "assets" / "screenshot.png"))
    parser.add_argument("--sheet", default=str(REPO / "assets" / "contact_sheet.png"),
                        help="where the contact sheet of the best hits goes ('' for none)")
    parser.add_argument("--sheet-hits", type=int, default=5, help="hits on the contact sheet")
    parser.add_argument("--size", default="1440x900")
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()

    app = create_app([sys.argv[0]])
    from GUI.main_window import MainWindow

    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    store = SettingsStore(QSettings(str(settings_file), QSettings.Format.IniFormat))
    store.save(AppSettings(device="auto"))
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    w = MainWindow(store, db_path=args.db, interactive=False)
    w.messageShown.connect(lambda level, text: print(f"[{level}] {text}", flush=True))
    width, height = (int(v) for v in args.size.split("x"))
    w.resize(width, height)
    w.show()
    loads = [0]
    w.libraryRefreshed.connect(lambda: loads.__setitem__(0, loads[0] + 1))
    pump(app, lambda: loads[0] > 0, 300)
    if not w.open_video(args.video):
        w.close()
        return 1
    w.query.add_files([args.query])
    results, finished = [], []
    w.searchFinished.connect(results.append)
    w.jobFinished.connect(finished.append)
    w.progressShown.connect(lambda p: print(f"\r{w.progress_label.text()}   ", end="", flush=True))
    t0 = time.perf_counter()
    n = loads[0]
    w.start_search()
    pump(app, lambda: "index+search" in finished, 7200)
    if not results:
        print("\nno search result")
        w.close()
        return 1
    pump(app, lambda: loads[0] > n, 120)
    print(f"\nindex+search took {time.perf_counter() - t0:.1f} s; {len(results[0].hits)} candidates")
    if args.threshold is not None:
        w.results.set_threshold(args.threshold)
    pump(app, lambda: not w.jobs.busy("thumbnails"), 300)
    hits = w.results.visible_hits() or results[0].hits
    if hits:
        w.show_hit(hits[0])
    for lib_item in range(w.library.tree.topLevelItemCount()):
        w.library.tree.topLevelItem(lib_item).setExpanded(True)
    t1 = time.monotonic()
    pump(app, lambda: time.monotonic() - t1 > 1.0, 5)  # let the layout settle and paint
    shown = len(w.results.visible_hits())
    w.statusBar().showMessage(f"Search done: {shown} hit{'s' if shown != 1 else ''} at or above "
                              f"{w.results.threshold:.2f}. Click a hit to see the person.")
    app.processEvents()
    pixmap = w.grab()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ok = pixmap.save(args.out)
    print(f"saved {args.out} ({pixmap.width()}x{pixmap.height()})" if ok else f"could not write {args.out}")
    if ok and args.sheet and hits:
        ok = contact_sheet(app, w, hits[: args.sheet_hits], Path(args.sheet))
    w.close()
    return 0 if ok else 1


def contact_sheet(app, w, hits, out: Path) -> bool:
    """Export ``hits`` through the window (contact sheet, no clips) and keep the sheet as ``out``."""
    import shutil

    from core.clips import ExportOptions

    folder = Path(tempfile.mkdtemp()) / "export"
    reports, ended = [], []
    w.evidence.exported.connect(reports.append)
    w.jobFinished.connect(ended.append)
    if not w.evidence.start(hits, folder, ExportOptions(clips=False)):
        return False
    pump(app, lambda: "export clips" in ended, 300)
    if not reports:
        print("the export did not finish")
        return False
    shutil.copyfile(reports[0].sheet, out)
    print(f"saved {out}")
    return True


if __name__ == "__main__":
    sys.exit(main())
