"""GUI test fixtures: temp settings, short real clips, a window factory, one indexing per session.

Indexing is the expensive part (YOLO on every second frame), so the session indexes
one short clip cut from vtest.avi **through the real window and its worker** (Index
only, with a 20 ms QTimer measuring how responsive the GUI thread stays), and the
tests that need an indexed library get a private copy of that library folder.
``REID_TEST_GUI_LIBRARY=lib.sqlite`` (a developer shortcut, as ``REID_TEST_VTEST_LIBRARY`` for the
core tests) starts the session from a copy of a library that holds vtest.avi indexed with the same
models and stride: the window's indexing is then a no-op, and the two tests about it fail.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QEventLoop, QSettings, QTimer

from GUI.settings import AppSettings, SettingsStore

# The offscreen platform's default screen is 800x800, smaller than the app's window: give it a
# desktop-sized screen (Qt 6.5+ reads the screen layout from a JSON file).
if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
    _SCREEN = Path(__file__).with_name("offscreen_screen.json")
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_SCREEN}"

CLIP_FRAMES = 795
"""Frames of the session video: the whole of vtest.avi (79.5 s, 398 processed frames at stride 2)."""

ENGINE_TIMEOUT_MS = 120_000
WORK_TIMEOUT_MS = 600_000


def pump_until(predicate: Callable[[], bool], timeout_ms: int) -> None:
    """Run the Qt event loop until ``predicate()`` holds (for session fixtures, where qtbot is not
    available). The loop sleeps between events, as the app's own does: polling ``processEvents``
    in a Python loop would keep one core busy and halve the worker's speed on a 2-core machine."""
    if predicate():
        return
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: loop.quit() if predicate() else None)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    poll.start()
    deadline.start(timeout_ms)
    loop.exec()
    poll.stop()
    deadline.stop()
    if not predicate():
        raise TimeoutError(f"condition not met within {timeout_ms} ms")


class GapMeter:
    """Measures the largest gap between ticks of a 20 ms QTimer on the GUI thread."""

    def __init__(self, interval_ms: int = 20) -> None:
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def start(self) -> None:
        self.ticks.clear()
        self.ticks.append(time.perf_counter())
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._tick()

    @property
    def max_gap_ms(self) -> float:
        return max((b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)), default=0.0) * 1000

    @property
    def mean_gap_ms(self) -> float:
        gaps = [b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)]
        return sum(gaps) / len(gaps) * 1000 if gaps else 0.0


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory):
    """Never touch the user's settings or library: QSettings and REID_DB point into a temp folder."""
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder / "user"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.SystemScope, str(folder / "system"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REID_DB", str(folder / "default-library.sqlite"))
        yield folder


def ini_settings_store(path: Path, settings: AppSettings | None = None) -> SettingsStore:
    """A settings store in an INI file (written with ``settings`` when given)."""
    settings_store = SettingsStore(QSettings(str(path), QSettings.Format.IniFormat))
    if settings is not None:
        settings_store.save(settings)
    return settings_store


def open_window(settings_store: SettingsStore, db: Path, interactive: bool = False):
    """Create, show and return a main window (models start loading at once)."""
    from GUI.main_window import MainWindow

    w = MainWindow(settings_store, db_path=db, interactive=interactive)
    w.messages = []
    w.messageShown.connect(lambda level, text: w.messages.append((level, text)))
    w.progress_items = []
    w.progressShown.connect(w.progress_items.append)
    w.library_loads = 0

    def loaded() -> None:
        w.library_loads += 1

    w.libraryRefreshed.connect(loaded)
    if settings_store.geometry() is None:
        w.resize(1280, 800)
    w.show()
    return w


@dataclass
class IndexedSession:
    """What the session's indexing through the window produced and measured."""

    db_dir: Path
    clip: Path
    progress: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    max_gap_ms: float = 0.0
    mean_gap_ms: float = 0.0
    ticks: int = 0
    wall_s: float = 0.0
    status: str = ""
    messages: list = field(default_factory=list)


@pytest.fixture(scope="session")
def model_settings(detector_model_path, reid_model_path) -> AppSettings:
    """Settings naming the shared real models (so tests do not depend on what models/ holds), float32
    and every 2nd frame: the settings these tests' expectations were measured with."""
    return AppSettings(detector=str(detector_model_path), reid=str(reid_model_path), device="cpu",
                       precision="fp32", sampling="stride", stride=2)


@pytest.fixture(scope="session")
def indexed_session(qapp, vtest_path, tmp_path_factory, model_settings) -> IndexedSession:
    """Index the real vtest.avi once, through the window's Index action and worker thread."""
    root = tmp_path_factory.mktemp("indexed")
    db_dir = root / "library"
    db_dir.mkdir()
    reuse = os.environ.get("REID_TEST_GUI_LIBRARY")
    if reuse:
        shutil.copyfile(reuse, db_dir / "library.sqlite")
    w = open_window(ini_settings_store(root / "settings.ini", model_settings), db_dir / "library.sqlite")
    try:
        pump_until(lambda: w.library_loads > 0 or any(lv == "error" for lv, _ in w.messages),
                   ENGINE_TIMEOUT_MS)
        assert w.engine is not None, w.messages
        assert w.open_video(vtest_path)
        out = IndexedSession(db_dir=db_dir, clip=vtest_path)
        done: list[str] = []
        w.jobFinished.connect(done.append)
        w.progressShown.connect(lambda _item: out.labels.append(w.progress_label.text()))
        meter = GapMeter()
        meter.start()
        t0 = time.perf_counter()
        assert w.start_search(index_only=True)
        loads = w.library_loads
        pump_until(lambda: "index+search" in done, WORK_TIMEOUT_MS)
        out.wall_s = time.perf_counter() - t0
        pump_until(lambda: w.library_loads > loads, ENGINE_TIMEOUT_MS)
        meter.stop()
        out.max_gap_ms, out.mean_gap_ms, out.ticks = meter.max_gap_ms, meter.mean_gap_ms, len(meter.ticks)
        out.progress = list(w.progress_items)
        out.messages = list(w.messages)
        info = w.library.info_for(str(vtest_path))
        out.status = info.status if info is not None else "missing"
        print(f"\n[GUI] session indexing of {CLIP_FRAMES} frames through the window: {out.wall_s:.1f} s, "
              f"largest GUI-thread timer gap {out.max_gap_ms:.0f} ms (mean {out.mean_gap_ms:.1f} ms, "
              f"{out.ticks} ticks of a 20 ms timer)")
    finally:
        w.close()
    return out


@pytest.fixture
def indexed_db(indexed_session, tmp_path) -> Path:
    """A private copy of the session's indexed library; returns the database file."""
    dest = tmp_path / "library"
    shutil.copytree(indexed_session.db_dir, dest)
    return dest / "library.sqlite"


@pytest.fixture
def make_window(qtbot, tmp_path, model_settings):
    """Factory: ``make_window(db, settings=None, interactive=False, wait_engine=True)`` -> a shown window."""
    windows = []

    def make(db: Path | None = None, settings: AppSettings | None = None, interactive: bool = False,
             wait_engine: bool = True, settings_store: SettingsStore | None = None):
        settings_store = settings_store or ini_settings_store(tmp_path / f"settings{len(windows)}.ini",
                                        settings or model_settings)
        w = open_window(settings_store, Path(db) if db else tmp_path / "library.sqlite", interactive)
        qtbot.addWidget(w)
        windows.append(w)
        qtbot.waitExposed(w)
        if wait_engine:
            qtbot.waitUntil(lambda: w.library_loads > 0 or any(lv == "error" for lv, _ in w.messages),
                            timeout=ENGINE_TIMEOUT_MS)
        return w

    yield make
    for w in windows:
        if w.isVisible():
            w.close()

