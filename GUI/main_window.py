"""The main window: video with boxes, timeline, transport, query photos, hits, library.

The window holds no pipeline logic. It calls ``core.engine.Engine`` (indexing and
searching on worker threads, see :mod:`GUI.workers`) and ``core.video.open_source``
(frames for display), and shows what they return.

Testability hooks:

* :attr:`MainWindow.messageShown` ``(level, text)`` fires for every message shown
  to the user (``"error"``, ``"warning"`` or ``"info"``); with
  ``interactive=False`` no ``QMessageBox`` is opened (the status bar still shows it).
* :attr:`MainWindow.engineReady`, :attr:`MainWindow.searchFinished`,
  :attr:`MainWindow.jobFinished`, :attr:`MainWindow.progressShown`,
  :attr:`MainWindow.libraryRefreshed` and :attr:`MainWindow.frameShown` let a test
  wait for the real work instead of sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
from PySide6.QtCore import QByteArray, QRect, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QStackedWidget,
    QStyle,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core import paths
from core.errors import ReidSearchError
from core.types import IndexProgress
from core.video import VIDEO_EXTENSIONS, video_files
from GUI import export
from GUI.icons import app_icon
from GUI.library import LibraryPanel, norm_path, same_path
from GUI.query_panel import IMAGE_SUFFIXES, QueryPanel, is_image_file
from GUI.results import ResultsPanel
from GUI.settings import APPLICATION, AppSettings, SettingsStore
from GUI.timeline import Timeline, format_time
from GUI.video_view import OverlayBox, VideoView
from GUI.workers import (
    Cancelled,
    ExportDone,
    Job,
    JobRunner,
    LibrarySnapshot,
    Status,
    Thumbnail,
    bgr_to_qimage,
    export_images_body,
    hit_key,
    index_and_search_body,
    library_body,
    load_engine_body,
    thumbnails_body,
)

log = logging.getLogger(__name__)

SAMPLE_CLIP = paths.REPO_ROOT / "assets" / "sample_clip.mp4"
SAMPLE_QUERY = paths.REPO_ROOT / "assets" / "sample_query.jpg"

INDEX_JOB = "index+search"
THUMB_JOB = "thumbnails"
ENGINE_JOB = "load models"
SAVE_JOB = "save images"
LIBRARY_JOB = "library"


def _default_threshold() -> float:
    try:
        from core.search import DEFAULT_THRESHOLD
    except ImportError:  # pragma: no cover - core.search is part of the app
        return 0.5
    return float(DEFAULT_THRESHOLD)


def _open_source(path: str) -> Any:
    from core.video import open_source

    return open_source(path)


class MainWindow(QMainWindow):
    """ReID Video Search main window.

    Args:
        store: Where settings and window geometry are kept.
        db_path: Library database for this run (``--db``); overrides the settings.
        interactive: Show warnings and errors in message boxes (tests pass False and
            listen to :attr:`messageShown`).
    """

    messageShown = Signal(str, str)
    engineReady = Signal()
    searchFinished = Signal(object)
    jobFinished = Signal(str)
    frameShown = Signal(int)
    progressShown = Signal(object)
    libraryRefreshed = Signal()

    def __init__(self, store: SettingsStore, *, db_path: str | Path | None = None,
                 interactive: bool = True) -> None:
        super().__init__()
        self.store = store
        self.settings: AppSettings = store.load()
        self._db_override = str(db_path) if db_path else None
        self._interactive = interactive
        self.engine: Any = None
        self._engine_key: tuple[Any, ...] | None = None
        self._pending: list[Any] = []
        self.jobs = JobRunner(self)
        self.source: Any = None
        self.video_path: str | None = None
        self.frame_index = 0
        self._frame: Any = None
        self._boxes: Any = None
        self.result: Any = None
        self.selected_hit: Any = None
        self._hits_by_video: dict[str, tuple[Any, ...]] = {}
        self._index_t0 = 0.0
        self._indexed_something = False
        self.last_message_box: QMessageBox | None = None
        self._closing = False
        self._library_dirty = False

        self.setWindowTitle(APPLICATION)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._build_actions()
        self._build_ui()
        self._build_menus()
        self._play_timer = QTimer(self)
        self._play_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._play_timer.timeout.connect(self._tick)
        threshold = self.settings.threshold if self.settings.threshold is not None else _default_threshold()
        self.results.set_threshold(threshold)
        self.results.thresholdChanged.connect(self._threshold_changed)
        self._restore_geometry()
        self._update_actions()
        self._show_empty_state(True)
        self.start_engine()

    # ================================================================== construction
    def _build_actions(self) -> None:
        style = self.style()
        sp = QStyle.StandardPixmap

        def action(text: str, slot, shortcut: Any = None, icon: Any = None, tip: str = "") -> QAction:
            act = QAction(text, self)
            if icon is not None:
                act.setIcon(style.standardIcon(icon) if isinstance(icon, QStyle.StandardPixmap) else icon)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            if tip:
                act.setToolTip(tip)
                act.setStatusTip(tip)
            act.triggered.connect(slot)
            return act

        self.act_open = action("&Open video...", self.choose_video, QKeySequence.StandardKey.Open,
                               sp.SP_DialogOpenButton, "Open a video file to search in")
        self.act_open_folder = action("Open &folder...", self.choose_folder, "Ctrl+Shift+O",
                                      sp.SP_DirOpenIcon,
                                      "Open every video of a folder and search them together")
        self.act_add_photo = action("&Add query photo...", self.choose_photos, "Ctrl+P", sp.SP_FileIcon,
                                    "Add a photo of the person to find")
        self.act_search = action("&Search", self.start_search, "Ctrl+Return", sp.SP_FileDialogContentsView,
                                 "Index the checked videos if needed, then find the person in them")
        self.act_index = action("&Index only", lambda: self.start_search(index_only=True), "Ctrl+I",
                                None, "Index the checked videos without searching")
        self.act_cancel = action("&Cancel", self.cancel_work, "Esc", sp.SP_BrowserStop,
                                 "Stop indexing (it resumes where it stopped next time)")
        self.act_export = action("&Export hits...", self.choose_export, "Ctrl+E", sp.SP_DialogSaveButton,
                                 "Save the hits shown as CSV or JSON")
        self.act_save_images = action("Save hit &images...", self.choose_image_folder, "Ctrl+Shift+E", None,
                                      "Save each hit's crop and best frame as PNG files")
        self.act_settings = action("Se&ttings...", self.open_settings, QKeySequence.StandardKey.Preferences,
                                   None, "Models, device, stride, threshold, database")
        self.act_quit = action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_sample = action("&Try the sample", self.try_sample, None, sp.SP_MediaPlay,
                                 "Open the sample clip and photo and run a search")
        self.act_about = action("&About", self.show_about)
        self.act_play = action("&Play", self.toggle_play, "Space", sp.SP_MediaPlay, "Play / pause (Space)")
        self.act_back = action("Previous frame", lambda: self.step(-1), "Left", sp.SP_MediaSeekBackward,
                               "One frame back (Left)")
        self.act_fwd = action("Next frame", lambda: self.step(1), "Right", sp.SP_MediaSeekForward,
                              "One frame forward (Right)")
        for act in (self.act_play, self.act_back, self.act_fwd):
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

    def _build_ui(self) -> None:
        # --- centre: video (or empty state), timeline, transport
        self.view = VideoView()
        self.view.cropSelected.connect(self.add_crop_query)
        self.empty = self._empty_state()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        self.timeline = Timeline()
        self.timeline.hitClicked.connect(self.show_hit)
        self.timeline.seekRequested.connect(self.seek)

        self.play_button = self._tool_button(self.act_play)
        self.back_button = self._tool_button(self.act_back)
        self.fwd_button = self._tool_button(self.act_fwd)
        self.position = QSlider(Qt.Orientation.Horizontal)
        self.position.setRange(0, 0)
        self.position.setToolTip("Position in the video")
        self.position.valueChanged.connect(self._slider_moved)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.frame_label = QLabel("")
        self.frame_label.setObjectName("hint")
        for lab in (self.time_label, self.frame_label):
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        transport = QHBoxLayout()
        transport.setContentsMargins(0, 0, 0, 0)
        transport.addWidget(self.back_button)
        transport.addWidget(self.play_button)
        transport.addWidget(self.fwd_button)
        transport.addWidget(self.position, 1)
        transport.addWidget(self.time_label)
        transport.addWidget(self.frame_label)

        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(4, 0, 4, 0)
        centre_layout.addWidget(self.stack, 1)
        centre_layout.addWidget(self.timeline)
        centre_layout.addLayout(transport)
        for act in (self.act_play, self.act_back, self.act_fwd):
            centre.addAction(act)
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.centre = centre

        # --- left: library
        self.library = LibraryPanel()
        self.library.openRequested.connect(self.choose_video)
        self.library.openFolderRequested.connect(self.choose_folder)
        self.library.videoActivated.connect(lambda p: self.open_video(p, check="keep"))
        self.library.queryActivated.connect(self.open_query)
        self.library.checkedChanged.connect(self._update_actions)
        library_box = self._box("Library", self.library)

        # --- right: query photos + search, hits
        self.queries = QueryPanel()
        self.queries.addRequested.connect(self.choose_photos)
        self.queries.problem.connect(lambda text: self.show_message("error", text))
        self.queries.changed.connect(self._update_actions)
        self.search_button = QPushButton("  Search")
        self.search_button.setObjectName("primary")
        self.search_button.setIcon(self.act_search.icon())
        self.search_button.setIconSize(QSize(18, 18))
        self.search_button.setMinimumHeight(34)
        self.search_button.setToolTip(self.act_search.toolTip())
        self.search_button.clicked.connect(self.start_search)
        self.scope_label = QLabel("")
        self.scope_label.setObjectName("hint")
        self.scope_label.setWordWrap(True)
        query_widget = QWidget()
        ql = QVBoxLayout(query_widget)
        ql.setContentsMargins(0, 0, 0, 0)
        ql.addWidget(self.queries)
        ql.addWidget(self.search_button)
        ql.addWidget(self.scope_label)
        query_box = self._box("Find this person", query_widget)

        self.results = ResultsPanel()
        self.results.hitActivated.connect(self.show_hit)
        self.notes_label = QLabel("")
        self.notes_label.setObjectName("hint")
        self.notes_label.setWordWrap(True)
        self.notes_label.hide()
        results_widget = QWidget()
        rl = QVBoxLayout(results_widget)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.results, 1)
        rl.addWidget(self.notes_label)
        results_box = self._box("Hits", results_widget)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(query_box)
        right.addWidget(results_box)
        right.setStretchFactor(0, 0)
        right.setStretchFactor(1, 1)
        right.setChildrenCollapsible(False)
        self.right_split = right

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(library_box)
        split.addWidget(centre)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([290, 760, 390])
        split.setChildrenCollapsible(False)
        self.main_split = split
        self.setCentralWidget(split)

        # --- toolbar
        bar = QToolBar("Main")
        bar.setObjectName("main-toolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(18, 18))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for act in (self.act_open, self.act_open_folder, self.act_add_photo):
            bar.addAction(act)
        bar.addSeparator()
        bar.addAction(self.act_search)
        bar.addAction(self.act_cancel)
        bar.addSeparator()
        bar.addAction(self.act_export)
        self.addToolBar(bar)
        self.toolbar = bar

        # --- status bar: progress of background work, providers in use
        status = self.statusBar()
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(240)
        self.progress_bar.setMinimumWidth(160)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(self.act_cancel.toolTip())
        self.cancel_button.clicked.connect(self.cancel_work)
        self.device_label = QLabel("Loading models...")
        self.device_label.setObjectName("hint")
        status.addPermanentWidget(self.progress_label)
        status.addPermanentWidget(self.progress_bar)
        status.addPermanentWidget(self.cancel_button)
        sep = QFrame()
        sep.setFrameShape(QFrame.Shape.VLine)
        status.addPermanentWidget(sep)
        status.addPermanentWidget(self.device_label)
        self._set_progress_visible(False)

    def _empty_state(self) -> QWidget:
        page = QWidget()
        page.setObjectName("emptyState")
        title = QLabel("Find a person in your videos")
        title.setObjectName("emptyTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel("1. Open a video (or a folder of videos).<br>"
                      "2. Add a photo of the person, or drag a rectangle around them on the video.<br>"
                      "3. Press <b>Search</b>, then click a hit to see them.")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setObjectName("emptyText")
        open_button = QPushButton("Open video...")
        open_button.clicked.connect(self.choose_video)
        self.sample_button = QPushButton("Try the sample")
        self.sample_button.setObjectName("primary")
        self.sample_button.setToolTip(self.act_sample.toolTip())
        self.sample_button.clicked.connect(self.try_sample)
        for b in (open_button, self.sample_button):
            b.setMinimumSize(150, 36)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(open_button)
        row.addWidget(self.sample_button)
        row.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addStretch(2)
        layout.addWidget(title)
        layout.addSpacing(8)
        layout.addWidget(text)
        layout.addSpacing(16)
        layout.addLayout(row)
        layout.addStretch(3)
        return page

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for act in (self.act_open, self.act_open_folder, self.act_add_photo):
            file_menu.addAction(act)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addAction(self.act_save_images)
        file_menu.addSeparator()
        file_menu.addAction(self.act_settings)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        search_menu = bar.addMenu("&Search")
        for act in (self.act_search, self.act_index, self.act_cancel):
            search_menu.addAction(act)
        play_menu = bar.addMenu("&Playback")
        for act in (self.act_play, self.act_back, self.act_fwd):
            play_menu.addAction(act)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_sample)
        help_menu.addSeparator()
        help_menu.addAction(self.act_about)

    @staticmethod
    def _box(title: str, widget: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(6, 8, 6, 6)
        layout.addWidget(widget)
        return box

    @staticmethod
    def _tool_button(act: QAction) -> QToolButton:
        b = QToolButton()
        b.setDefaultAction(act)
        b.setIconSize(QSize(20, 20))
        b.setAutoRaise(True)
        return b

    # ================================================================== messages
    def show_message(self, level: str, text: str) -> None:
        """Tell the user something: status bar always, a message box for warnings and errors.

        Args:
            level: ``"error"``, ``"warning"`` or ``"info"``.
            text: One readable sentence (or a few).
        """
        log.info("%s: %s", level, text)
        self.statusBar().showMessage(text, 8000 if level == "info" else 20000)
        self.messageShown.emit(level, text)
        if level in ("error", "warning") and self._interactive and not self._closing:
            icon = QMessageBox.Icon.Critical if level == "error" else QMessageBox.Icon.Warning
            box = QMessageBox(icon, APPLICATION, text, QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()
            self.last_message_box = box

    # ================================================================== engine
    def db_path(self) -> Path:
        """The library database in use (``--db``, the settings, or the default)."""
        return Path(self._db_override or self.settings.db_path or paths.default_db_path())

    def queries_dir(self) -> Path:
        """Where query crops drawn on the video are kept (next to the database)."""
        return self.db_path().parent / "queries"

    def start_engine(self) -> None:
        """(Re)build the engine from the settings on a worker thread."""
        if self.jobs.busy(INDEX_JOB) or self.jobs.busy(ENGINE_JOB):
            return
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        s = self.settings
        db = self.db_path()
        key = s.engine_key() + (str(db),)

        def factory() -> Any:
            from core.engine import Engine

            db.parent.mkdir(parents=True, exist_ok=True)
            device = {"gpu": "cuda"}.get(s.device, s.device)
            return Engine(db, detector=s.detector, reid=s.reid, device=device, stride=s.stride)

        self.device_label.setText("Loading models...")
        job = Job(ENGINE_JOB, load_engine_body(factory))
        job.result.connect(self._engine_loaded)
        job.error.connect(self._engine_failed)
        job.finished.connect(self._job_done)
        self._engine_key = key
        self.jobs.start(job)
        self._update_actions()

    @Slot(object)
    def _engine_loaded(self, engine: Any) -> None:
        if self._closing:
            engine.close()
            return
        self.engine = engine
        providers = dict(getattr(engine, "providers", {}) or {})
        kinds = {v.replace("ExecutionProvider", "") for v in providers.values()}
        self.device_label.setText("Running on " + " + ".join(sorted(kinds)) if kinds else "Models loaded")
        self.device_label.setToolTip("\n".join(f"{k}: {v}" for k, v in providers.items())
                                     + f"\nDetector: {engine.detector_path}\nReID: {engine.reid_path}"
                                     + f"\nDatabase: {self.db_path()}")
        for note in getattr(engine, "notes", ()):
            self.show_message("warning", note)
        self.refresh_library()
        self.engineReady.emit()
        pending, self._pending = self._pending, []
        for call in pending:
            call()

    @Slot(str)
    def _engine_failed(self, text: str) -> None:
        self.device_label.setText("Models not loaded")
        self._pending.clear()
        self.show_message("error", text)

    def refresh_library(self) -> None:
        """Reload the library panel from the database (read on a worker thread)."""
        if self.engine is None or self._closing:
            return
        if self.jobs.busy(LIBRARY_JOB):
            self._library_dirty = True
            return
        self._library_dirty = False
        job = Job(LIBRARY_JOB, library_body(self.engine))
        job.result.connect(self._library_loaded)
        job.error.connect(self._on_job_error)
        job.finished.connect(self._job_done)
        self.jobs.start(job)

    @Slot(object)
    def _library_loaded(self, snapshot: Any) -> None:
        if not isinstance(snapshot, LibrarySnapshot):
            return
        self.library.set_library(snapshot.videos, snapshot.queries_by_video())
        self.library.set_current(self.video_path)
        self._update_actions()
        if self._frame is not None:  # the people's boxes may be known now
            self._boxes = self._boxes_at(self.frame_index)
            self.view.set_overlays(self._overlays())
        self.libraryRefreshed.emit()

    # ================================================================== opening things
    def _last_dir(self) -> str:
        return self.settings.last_dir or str(Path.home())

    def _remember_dir(self, path: str) -> None:
        folder = str(Path(path).parent if Path(path).is_file() else Path(path))
        self.settings = replace(self.settings, last_dir=folder)

    def choose_video(self) -> None:
        """Ask for video files and open them."""
        pattern = " ".join(f"*{s}" for s in VIDEO_EXTENSIONS)
        files, _ = QFileDialog.getOpenFileNames(self, "Open video", self._last_dir(),
                                                f"Videos ({pattern});;All files (*)")
        if files:
            self._remember_dir(files[0])
            self.open_videos(files)

    def choose_folder(self) -> None:
        """Ask for a folder and open all its videos."""
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of videos", self._last_dir())
        if folder:
            self._remember_dir(folder)
            self.open_folder(folder)

    def choose_photos(self) -> None:
        """Ask for query photos."""
        pattern = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        files, _ = QFileDialog.getOpenFileNames(self, "Add photos of the person", self._last_dir(),
                                                f"Images ({pattern});;All files (*)")
        if files:
            self._remember_dir(files[0])
            self.queries.add_photos(files)

    def open_folder(self, folder: str | Path) -> list[str]:
        """Open every video in ``folder`` (not recursive); they are all checked for searching."""
        folder = Path(folder)
        try:
            videos = [str(p) for p in video_files(folder)] if folder.is_dir() else []
        except ReidSearchError as err:
            self.show_message("error", str(err))
            return []
        if not videos:
            self.show_message("error", f"{folder}: no video files found in this folder "
                                       f"(looked for {', '.join(VIDEO_EXTENSIONS)}).")
            return []
        return self.open_videos(videos)

    def open_videos(self, files: Sequence[str | Path]) -> list[str]:
        """Open several videos: the first is shown, all are listed and checked for searching."""
        opened = []
        for n, f in enumerate(files):
            if n == 0:
                if self.open_video(f, check="only"):
                    opened.append(str(f))
            elif Path(f).is_file():
                self.library.add_pending(str(f), checked=True)
                opened.append(str(f))
            else:
                self.show_message("error", f"{f}: video not found.")
        if len(opened) > 1:
            self.library.set_checked(opened, exclusive=True)
        return opened

    def open_video(self, path: str | Path, check: str = "only") -> bool:
        """Open and show a video.

        Args:
            path: The video file.
            check: ``"only"``: search only this video; ``"add"``: add it to the checked
                videos; ``"keep"``: leave the checks (the current video is checked if
                nothing is).

        Returns:
            True if the video could be read.
        """
        path = str(path)
        try:
            source = _open_source(path)
        except ReidSearchError as exc:
            self.show_message("error", str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - an unreadable file must never crash the app
            self.show_message("error", f"{path}: cannot be opened as a video ({type(exc).__name__}: {exc}).")
            return False
        if source.frame_count <= 0:
            try:  # the header gives no frame count: count by decoding once
                source.frame_count = source.verify()
            except ReidSearchError as exc:
                source.close()
                self.show_message("error", str(exc))
                return False
        self.pause()
        if self.source is not None:
            self.source.close()
        self.source = source
        self.video_path = norm_path(path)
        self.frame_index = 0
        self._boxes = None
        if self.selected_hit is not None and not same_path(self.selected_hit.video_path, path):
            self.selected_hit = None
        self.position.blockSignals(True)
        self.position.setRange(0, max(0, source.frame_count - 1))
        self.position.setPageStep(max(1, int(round(source.fps or 10))))
        self.position.blockSignals(False)
        self.timeline.set_video(source.frame_count, source.fps)
        self._update_timeline_hits()
        self._show_empty_state(False)
        self.library.add_pending(path, checked=False)
        if check == "only":
            self.library.set_checked([path], exclusive=True)
        elif check == "add" or not self.library.checked_paths():
            self.library.set_checked([path])
        self.library.set_current(path)
        self.settings = self.settings.with_recent(self.video_path)
        self.setWindowTitle(f"{Path(path).name} - {APPLICATION}")
        self.show_frame(0)
        self._update_actions()
        return True

    def open_query(self, query_id: int, video_path: str = "") -> bool:
        """Reopen a past search: its photos, its hits, and its video."""
        if self.engine is None:
            self.show_message("error", "The models are not loaded yet; try again in a moment.")
            return False
        try:
            result = self.engine.load_query(query_id)
        except ReidSearchError as exc:
            self.show_message("error", str(exc))
            return False
        info = next((q for v in self.library._queries.values() for q in v if q.id == query_id), None)
        if info is not None:
            self.queries.set_photos(list(info.photos))
        target = video_path or (result.hits[0].video_path if result.hits else "")
        if target and (self.video_path is None or not same_path(target, self.video_path)):
            self.open_video(target, check="keep")
        self.set_result(result)
        self.show_message("info", f"Query #{query_id}: {len(result.hits)} candidate hits loaded.")
        return True

    def _show_empty_state(self, empty: bool) -> None:
        self.stack.setCurrentWidget(self.empty if empty else self.view)
        for w in (self.timeline, self.position, self.play_button, self.back_button, self.fwd_button):
            w.setEnabled(not empty)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for video in self.settings.recent_videos:
            act = self.recent_menu.addAction(video)
            act.triggered.connect(lambda _=False, v=video: self.open_video(v))
        if not self.settings.recent_videos:
            self.recent_menu.addAction("No recent videos").setEnabled(False)

    # ================================================================== frames
    def show_frame(self, index: int) -> bool:
        """Decode and show frame ``index`` of the current video with its boxes."""
        if self.source is None:
            return False
        index = max(0, min(int(index), self.source.frame_count - 1))
        try:
            frame = self.source.read(index)
        except ReidSearchError as exc:
            self.pause()
            self.show_message("error", str(exc))
            return False
        self._frame = frame
        self.frame_index = index
        self._boxes = self._boxes_at(index)
        self.view.set_frame(bgr_to_qimage(frame.image), self._overlays())
        self.position.blockSignals(True)
        self.position.setValue(index)
        self.position.blockSignals(False)
        fps = self.source.fps or 0.0
        duration = self.source.frame_count / fps if fps else 0.0
        self.time_label.setText(f"{format_time(frame.time_s)} / {format_time(duration)}")
        self.frame_label.setText(f"frame {index} / {self.source.frame_count - 1}")
        self.timeline.set_position(index)
        self.frameShown.emit(index)
        return True

    def _boxes_at(self, index: int) -> Any:
        info = self.library.info_for(self.video_path) if self.video_path else None
        if self.engine is None or info is None or info.status == "not indexed" and info.tracks == 0:
            return None
        try:
            return self.engine.boxes_at(info.id, index)  # by id: no path lookup on the GUI thread
        except ReidSearchError:
            return None

    def _overlays(self) -> tuple[OverlayBox, ...]:
        hits = {h.track_id: h for h in self._hits_by_video.get(self.video_path or "", ())}
        sel = self.selected_hit
        if sel is not None and not same_path(sel.video_path, self.video_path or ""):
            sel = None
        out: list[OverlayBox] = []
        seen_selected = False
        boxes = self._boxes
        if boxes is not None:
            for tid, box in zip(boxes.track_ids.tolist(), boxes.boxes.tolist(), strict=False):
                hit = hits.get(tid)
                if sel is not None and tid == sel.track_id:
                    out.append(OverlayBox(tuple(box), f"Match {sel.score:.2f}", "selected", tid, sel.score))
                    seen_selected = True
                elif hit is not None:
                    out.append(OverlayBox(tuple(box), f"{hit.score:.2f}", "match", tid, hit.score))
                else:
                    out.append(OverlayBox(tuple(box), f"#{tid}", "person", tid))
        if sel is not None and not seen_selected and self.frame_index == sel.best_frame:
            out.append(OverlayBox(tuple(sel.best_box), f"Match {sel.score:.2f}", "selected", sel.track_id,
                                  sel.score))
        return tuple(out)

    def seek(self, index: int) -> None:
        """Show frame ``index`` (pauses playback)."""
        self.pause()
        self.show_frame(index)

    def step(self, delta: int) -> None:
        """Move ``delta`` frames (pauses playback)."""
        if self.source is not None:
            self.seek(self.frame_index + delta)

    def _slider_moved(self, value: int) -> None:
        if self.source is not None and value != self.frame_index:
            self.pause()
            self.show_frame(value)

    # ================================================================== playback
    def toggle_play(self) -> None:
        """Play or pause."""
        if self._play_timer.isActive():
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        """Play from the current frame at the video's frame rate."""
        if self.source is None:
            return
        if self.frame_index >= self.source.frame_count - 1:
            self.show_frame(0)
        fps = self.source.fps if self.source.fps and self.source.fps > 0 else 25.0
        self._play_timer.start(max(1, int(round(1000.0 / fps))))
        self.act_play.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.act_play.setText("&Pause")

    def pause(self) -> None:
        """Stop playing."""
        if self._play_timer.isActive():
            self._play_timer.stop()
        self.act_play.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.act_play.setText("&Play")

    @property
    def playing(self) -> bool:
        """Whether the video is playing."""
        return self._play_timer.isActive()

    def _tick(self) -> None:
        if self.source is None or self.frame_index >= self.source.frame_count - 1:
            self.pause()
            return
        if not self.show_frame(self.frame_index + 1):
            self.pause()

    # ================================================================== queries
    @Slot(QRect)
    def add_crop_query(self, rect: QRect) -> str | None:
        """Turn a rectangle drawn on the current frame (image pixels) into a query photo.

        The crop is saved as a PNG next to the library database (so the stored
        query keeps a path) and added to the query panel.

        Returns:
            The PNG path, or ``None`` if nothing was added.
        """
        if self._frame is None:
            return None
        img = self._frame.image
        h, w = img.shape[:2]
        x1, y1 = max(0, rect.left()), max(0, rect.top())
        x2, y2 = min(w, rect.left() + rect.width()), min(h, rect.top() + rect.height())
        if x2 - x1 < 8 or y2 - y1 < 16:
            self.show_message("error", "The rectangle is too small to be a person: drag a box around "
                                       "the whole person.")
            return None
        crop = img[y1:y2, x1:x2]
        folder = self.queries_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.show_message("error", f"{folder}: cannot create the folder for query photos "
                                       f"({exc.strerror}).")
            return None
        stem = Path(self.video_path or "video").stem
        out = folder / f"{stem}_f{self.frame_index:06d}_{x1}_{y1}_{x2}_{y2}.png"
        if not cv2.imwrite(str(out), crop):
            self.show_message("error", f"{out}: could not save the query photo.")
            return None
        self.queries.add_photo(out)
        self.show_message("info", f"Added the person at frame {self.frame_index} as a query photo; "
                                  "press Search to find them.")
        return str(out)

    # ================================================================== search
    def search_scope(self) -> list[str]:
        """The videos a search covers: the checked ones, else the current video."""
        checked = self.library.checked_paths()
        if checked:
            return checked
        return [self.video_path] if self.video_path else []

    def start_search(self, index_only: bool = False) -> bool:
        """Index the videos in scope if needed, then search the query photos in them (worker thread).

        Returns:
            True if the work started (or will start once the models are loaded).
        """
        if self.jobs.busy(INDEX_JOB):
            self.show_message("info", "A search is already running.")
            return False
        videos = self.search_scope()
        if not videos:
            self.show_message("error", "Open a video first (File > Open video...), or try the sample.")
            return False
        photos = self.queries.photos()
        if not index_only and not photos:
            self.show_message("error", "Add a photo of the person first: Add photo..., drop an image on the "
                                       "query panel, or drag a rectangle around them on the video.")
            return False
        if self.engine is None:
            if self.jobs.busy(ENGINE_JOB):
                self._pending.append(lambda: self.start_search(index_only))
                self.statusBar().showMessage("Loading models; the search starts as soon as they are ready.")
                return True
            self._pending.append(lambda: self.start_search(index_only))
            self.start_engine()
            return True
        body = index_and_search_body(self.engine, videos, None if index_only else photos,
                                     self.results.threshold)
        job = Job(INDEX_JOB, body)
        job.progress.connect(self._on_progress)
        job.result.connect(self._on_search_result)
        job.error.connect(self._on_job_error)
        job.finished.connect(self._job_done)
        self._index_t0 = time.monotonic()
        self._indexed_something = False
        self._set_progress_visible(True)
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText("Starting...")
        self.jobs.start(job)
        self._update_actions()
        return True

    def cancel_work(self) -> None:
        """Stop indexing (and thumbnails / image saving); indexing resumes later."""
        if self.jobs.busy(INDEX_JOB) or self.jobs.busy(SAVE_JOB):
            self.progress_label.setText("Cancelling...")
            self.cancel_button.setEnabled(False)
        self.jobs.cancel(INDEX_JOB)
        self.jobs.cancel(SAVE_JOB)

    @Slot(object)
    def _on_progress(self, item: Any) -> None:
        self._show_progress(item)
        self.progressShown.emit(item)

    def _show_progress(self, item: Any) -> None:
        if isinstance(item, IndexProgress):
            name = Path(item.video_path).name
            if item.skipped:
                self.progress_label.setText(f"{name}: already indexed")
                return
            self._indexed_something = True
            total = max(item.frames_total, item.frames_done, 1)
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(item.frames_done)
            self.progress_bar.setFormat(f"{item.frames_done}/{item.frames_total or '?'} frames")
            eta = f"ETA {format_time(item.eta_s, precise=False)}" if item.eta_s is not None else "ETA --"
            tracks = f", {item.tracks} people tracked" if item.tracks else ""
            self.progress_label.setText(f"Indexing {name}: {item.fps:.1f} fps, {eta}{tracks}")
        elif isinstance(item, Status):
            self.progress_label.setText(item.text)
            if item.text.startswith("Searching"):
                self.progress_bar.setRange(0, 0)
                self.progress_bar.setFormat("")

    @Slot(object)
    def _on_search_result(self, outcome: Any) -> None:
        if isinstance(outcome, Cancelled):
            self.show_message("info", f"Stopped {outcome.what}. Indexing resumes where it stopped next time.")
            return
        if isinstance(outcome, Status):
            self.show_message("info", outcome.text)
            return
        self.set_result(outcome)
        for note in outcome.notes:
            self.show_message("info", note)
        shown = len(self.results.visible_hits())
        self.show_message("info", f"Search done in {outcome.elapsed_s:.1f} s: {shown} hit"
                                  f"{'s' if shown != 1 else ''} at or above {self.results.threshold:.2f} "
                                  f"({len(outcome.hits)} candidates). Click a hit to see the person.")
        self.searchFinished.emit(outcome)

    @Slot(str)
    def _on_job_error(self, text: str) -> None:
        self.show_message("error", text)

    @Slot()
    def _job_done(self) -> None:
        job = self.sender()
        name = job.name if isinstance(job, Job) else ""
        if name in (INDEX_JOB, SAVE_JOB):
            others = [j for j in self.jobs.running() if j is not job and j.name in (INDEX_JOB, SAVE_JOB)]
            self._set_progress_visible(bool(others))
        if name == INDEX_JOB:
            self.refresh_library()
        if name == LIBRARY_JOB and self._library_dirty:
            self.refresh_library()
        self._update_actions()
        self.jobFinished.emit(name)

    def _set_progress_visible(self, visible: bool) -> None:
        for w in (self.progress_label, self.progress_bar, self.cancel_button):
            w.setVisible(visible)
        self.cancel_button.setEnabled(visible)
        if not visible:
            self.progress_label.setText("")
            self.progress_bar.setFormat("%p%")

    # ================================================================== results
    def set_result(self, result: Any) -> None:
        """Show a ``SearchResult``: list, timeline, boxes; fetch thumbnails in the background."""
        self.result = result
        self.selected_hit = None
        self.timeline.set_selected(None)
        self.results.set_result(result)
        self._threshold_changed(self.results.threshold)
        notes = tuple(getattr(result, "notes", ()) or ())
        self.notes_label.setText("\n".join(notes))
        self.notes_label.setVisible(bool(notes))
        if self.video_path is None and result is not None and result.hits:
            self.open_video(result.hits[0].video_path, check="keep")
        self._start_thumbnails(result.hits if result is not None else ())
        self._update_actions()

    def _start_thumbnails(self, hits: Sequence[Any]) -> None:
        self.jobs.cancel(THUMB_JOB)
        todo = [h for h in hits if not self.results.has_thumbnail(hit_key(h))]
        if not todo:
            return
        job = Job(THUMB_JOB, thumbnails_body(todo, _open_source))
        job.progress.connect(self._on_thumbnail)
        job.error.connect(lambda text: log.warning("thumbnails: %s", text))
        job.finished.connect(self._job_done)
        self.jobs.start(job)

    @Slot(object)
    def _on_thumbnail(self, item: Any) -> None:
        if isinstance(item, Thumbnail):
            self.results.set_thumbnail(item.key, item.image)

    @Slot(float)
    def _threshold_changed(self, threshold: float) -> None:
        by_video: dict[str, list[Any]] = {}
        for hit in self.results.visible_hits():
            by_video.setdefault(norm_path(hit.video_path), []).append(hit)
        self._hits_by_video = {k: tuple(v) for k, v in by_video.items()}
        if self.selected_hit is not None and self.selected_hit.score < threshold:
            self.selected_hit = None
            self.timeline.set_selected(None)
        self._update_timeline_hits()
        if self._frame is not None:
            self.view.set_overlays(self._overlays())
        self._update_actions()

    def _update_timeline_hits(self) -> None:
        hits = self._hits_by_video.get(self.video_path or "", ())
        self.timeline.set_hits(hits, self.results.score_range())
        self.timeline.set_selected(self.selected_hit if self.selected_hit in hits else None)

    @Slot(object)
    def show_hit(self, hit: Any) -> None:
        """Seek to a hit's best frame (opening its video if needed) and highlight the person."""
        if self.video_path is None or not same_path(hit.video_path, self.video_path):
            if not self.open_video(hit.video_path, check="keep"):
                return
        self.pause()
        self.selected_hit = hit
        self.timeline.set_selected(hit)
        self.results.select_hit(hit)
        self.show_frame(hit.best_frame)

    # ================================================================== export
    def export_hits(self, path: str | Path) -> Path | None:
        """Write the hits shown (at or above the threshold) to ``path`` (``.csv`` or ``.json``)."""
        hits = self.results.visible_hits()
        try:
            out = export.write_hits(hits, path)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            self.show_message("error", f"{path}: could not export the hits ({why}).")
            return None
        self.show_message("info", f"Exported {len(hits)} hits to {out}.")
        return out

    def choose_export(self) -> None:
        """Ask for a CSV/JSON file name and export the hits shown."""
        start = str(Path(self._last_dir()) / "hits.csv")
        path, chosen = QFileDialog.getSaveFileName(self, "Export hits", start,
                                                   "CSV spreadsheet (*.csv);;JSON (*.json)")
        if not path:
            return
        if Path(path).suffix.lower() not in (".csv", ".json"):
            path += ".json" if "json" in chosen.lower() else ".csv"
        self._remember_dir(path)
        self.export_hits(path)

    def save_hit_images(self, folder: str | Path) -> bool:
        """Save each shown hit's crop and annotated best frame as PNGs in ``folder`` (worker thread)."""
        hits = self.results.visible_hits()
        if not hits:
            self.show_message("error", "There are no hits to save: run a search first "
                                       "(or lower the threshold).")
            return False
        if self.jobs.busy(SAVE_JOB):
            return False
        job = Job(SAVE_JOB, export_images_body(hits, str(folder), _open_source))
        job.progress.connect(self._on_progress)
        job.result.connect(self._on_images_saved)
        job.error.connect(self._on_job_error)
        job.finished.connect(self._job_done)
        self._set_progress_visible(True)
        self.progress_bar.setRange(0, 0)
        self.jobs.start(job)
        self._update_actions()
        return True

    def choose_image_folder(self) -> None:
        """Ask for a folder and save the hit images there."""
        folder = QFileDialog.getExistingDirectory(self, "Save hit images to", self._last_dir())
        if folder:
            self._remember_dir(folder)
            self.save_hit_images(folder)

    @Slot(object)
    def _on_images_saved(self, outcome: Any) -> None:
        if isinstance(outcome, ExportDone):
            self.show_message("info", f"Saved {outcome.files} images to {outcome.folder}.")
        elif isinstance(outcome, Cancelled):
            self.show_message("info", "Stopped saving images.")

    # ================================================================== sample, settings, about
    def try_sample(self) -> bool:
        """Open the sample clip and photo and run index + search."""
        missing = [str(p) for p in (SAMPLE_CLIP, SAMPLE_QUERY) if not p.is_file()]
        if missing:
            self.show_message("error", f"The sample is missing ({', '.join(missing)}); reinstall the app or "
                                       "run `python scripts/make_sample_assets.py`.")
            return False
        if not self.open_video(SAMPLE_CLIP, check="only"):
            return False
        self.queries.clear()
        self.queries.add_photo(SAMPLE_QUERY)
        return self.start_search()

    def open_settings(self) -> None:
        """Show the Settings dialog; apply (and rebuild the engine) when accepted."""
        from GUI.settings_dialog import SettingsDialog

        providers = dict(getattr(self.engine, "providers", {}) or {})
        notes = tuple(getattr(self.engine, "notes", ()) or ())
        dialog = SettingsDialog(self.settings, providers, notes, _default_threshold(), self)
        if dialog.exec() == SettingsDialog.DialogCode.Accepted:
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, new: AppSettings) -> None:
        """Use new settings: save them, move the threshold, rebuild the engine if needed."""
        old_key = self.settings.engine_key()
        self.settings = new
        self.store.save(new)
        if new.threshold is not None:
            self.results.set_threshold(new.threshold)
        if new.engine_key() != old_key:
            if self.jobs.busy(INDEX_JOB):
                self.show_message("warning", "The new models, device or database are used after the "
                                             "running search ends; apply the settings again then.")
                return
            self.start_engine()

    def show_about(self) -> None:
        """About box."""
        QMessageBox.about(self, f"About {APPLICATION}",
                          f"<b>{APPLICATION}</b><p>Find a person in videos from a photo: people are "
                          "detected (YOLO), tracked, described by a ReID model and searched with FAISS. "
                          "Index a video once, search many people instantly.</p>"
                          f"<p>Library: {self.db_path()}</p>")

    # ================================================================== state
    def _update_actions(self) -> None:
        busy = self.jobs.busy(INDEX_JOB)
        has_video = bool(self.search_scope())
        has_photos = bool(self.queries.photos())
        self.act_search.setEnabled(not busy and has_video and has_photos)
        self.search_button.setEnabled(self.act_search.isEnabled())
        self.act_index.setEnabled(not busy and has_video)
        self.act_cancel.setEnabled(busy or self.jobs.busy(SAVE_JOB))
        has_hits = bool(self.results.visible_hits())
        self.act_export.setEnabled(has_hits)
        self.act_save_images.setEnabled(has_hits and not self.jobs.busy(SAVE_JOB))
        self.act_sample.setEnabled(not busy)
        self.sample_button.setEnabled(not busy)
        scope = self.search_scope()
        if not scope:
            self.scope_label.setText("Open a video to search in.")
        elif len(scope) == 1:
            self.scope_label.setText(f"Searches in {Path(scope[0]).name}.")
        else:
            self.scope_label.setText(f"Searches in {len(scope)} checked videos.")

    def _restore_geometry(self) -> None:
        geometry = self.store.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1440, 860)
        state = self.store.window_state()
        if state is not None:
            self.main_split.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: D102 - Qt override
        self._closing = True
        self.pause()
        self.jobs.stop_all()
        threshold: float | None = round(self.results.threshold, 2)
        if abs(threshold - _default_threshold()) < 0.005:
            threshold = None  # keep following the engine's calibrated default
        self.settings = replace(self.settings, threshold=threshold)
        self.store.save(self.settings)
        self.store.save_geometry(self.saveGeometry(), QByteArray(self.main_split.saveState()))
        if self.source is not None:
            self.source.close()
            self.source = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        super().closeEvent(event)

    # ================================================================== drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: D102 - Qt override
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not files:
            return
        event.acceptProposedAction()
        images = [f for f in files if is_image_file(f)]
        videos = [f for f in files if not is_image_file(f) and not Path(f).is_dir()]
        folders = [f for f in files if Path(f).is_dir()]
        if images:
            self.queries.add_photos(images)
        if videos:
            self.open_videos(videos)
        for folder in folders:
            self.open_folder(folder)

    def open_initial(self, videos: Sequence[str], photos: Sequence[str], run: bool = False) -> None:
        """Open what the command line asked for (``--video``, ``--query``), optionally searching."""
        if videos:
            self.open_videos(list(videos))
        if photos:
            self.queries.add_photos(list(photos))
        if run and videos and photos:
            self.start_search()
