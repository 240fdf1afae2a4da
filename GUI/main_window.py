"""The main window: wires the widgets, the player, the background work and the window's model.

The window holds no pipeline logic and little state. What it is made of is built by
:class:`GUI.window_ui.WindowUi`; what it shows and what the user chose lives in a
Qt-free :class:`GUI.window_model.WindowModel` that the window and the
:class:`GUI.player.Player` observe; the engine and its jobs run in
:class:`GUI.background.Background` (worker threads, see :mod:`GUI.workers`). This class
connects them and turns user actions into calls.

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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QRect, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox

from core import paths
from core.errors import ReidSearchError
from core.types import Hit, TrackedBoxes
from GUI.background import INDEX_JOB, SAVE_JOB, Background, describe_engine
from GUI.dialogs import FileDialogs, show_about, sort_dropped, videos_in
from GUI.evidence import EvidenceExport
from GUI.icons import app_icon
from GUI.image_folders import ImageFolders
from GUI.player import Player
from GUI.progress import ProgressDisplay
from GUI.query_control import QueryControl
from GUI.repair_prompt import RepairPrompt
from GUI.search_control import SearchControl
from GUI.settings import APPLICATION, AppSettings, SettingsStore
from GUI.settings_control import SettingsControl
from GUI.window_model import WindowModel, same_path
from GUI.window_ui import WindowUi
from GUI.workers import LibrarySnapshot, Thumbnail, hit_key

if TYPE_CHECKING:
    from core.engine import Engine, SearchResult

log = logging.getLogger(__name__)

SAMPLE_CLIP = paths.REPO_ROOT / "assets" / "sample_clip.mp4"
SAMPLE_QUERY = paths.REPO_ROOT / "assets" / "sample_query.jpg"


class MainWindow(WindowUi):
    """ReID Video Search main window.

    Args:
        settings_store: Where settings and window geometry are kept.
        db_path: Library database for this run (``--db``); overrides the settings.
        interactive: Show warnings and errors in message boxes (tests pass False and
            listen to :attr:`messageShown`).

    Attributes:
        model: What is shown and chosen (result, threshold, selection, video, scope, photos).
        player: The current video, its frame and boxes, seeking and playback.
        jobs: The engine and the work done with it on worker threads.
        repair_prompt: Offers Repair when the library is damaged.
        settings_control: The Settings dialog, applying its settings, and the offer to index again.
    """

    messageShown = Signal(str, str)
    engineReady = Signal()
    searchFinished = Signal(object)
    jobFinished = Signal(str)
    frameShown = Signal(int)
    progressShown = Signal(object)
    libraryRefreshed = Signal()

    def __init__(self, settings_store: SettingsStore, *, db_path: str | Path | None = None,
                 interactive: bool = True) -> None:
        super().__init__()
        self.settings_store = settings_store
        self.settings: AppSettings = settings_store.load()
        self._db_override = str(db_path) if db_path else None
        self._interactive = interactive
        self._closing = False
        self.last_message_box: QMessageBox | None = None
        self.model = WindowModel.restore(self.settings.threshold)
        self.jobs = Background(self)
        self.repair_prompt = RepairPrompt(self, interactive=interactive)
        self.settings_control = SettingsControl(self, interactive=interactive)
        self.dialogs = FileDialogs(self, lambda: self.settings.last_dir, self._remember_dir)
        self.progress = ProgressDisplay(self.progress_label, self.progress_bar, self.cancel_button)
        self.query = QueryControl(self.queries, self.model, self.jobs, self)
        self.search = SearchControl(self.model, self.jobs, self.progress, self.query, self.start_engine, self)
        self.evidence = EvidenceExport(self.model, self.jobs, self.progress, self.dialogs, self)
        self.image_folders = ImageFolders(self, lambda: self.engine, interactive=interactive)
        self.player = Player(self.model, reader=self.jobs.frames, view=self.view, timeline=self.timeline,
                             position=self.position, time_label=self.time_label, frame_label=self.frame_label,
                             play_action=self.act_play, boxes_at=self._boxes_at, parent=self)
        self.setWindowTitle(APPLICATION)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._connect_actions()
        self._connect_widgets()
        self._connect_model_and_jobs()
        self.results.set_threshold(self.model.threshold)
        self.restore_layout(self.settings_store.geometry(), self.settings_store.window_state())
        self.progress.set_visible(False)
        self._update_actions()
        self.show_empty_state(True)
        self.start_engine()

    @property
    def engine(self) -> Engine | None:
        """The engine, once its models are loaded."""
        return self.jobs.engine

    # ================================================================== wiring
    def _connect_actions(self) -> None:
        for act, slot in ((self.act_open, self.choose_video), (self.act_open_folder, self.choose_folder),
                          (self.act_add_photo, self.choose_photos), (self.act_search, self.start_search),
                          (self.act_index, lambda: self.start_search(index_only=True)),
                          (self.act_cancel, self.cancel_work), (self.act_export, self.choose_export),
                          (self.act_save_images, self.choose_image_folder),
                          (self.act_export_clips, self.evidence.choose),
                          (self.act_settings, self.settings_control.open), (self.act_quit, self.close),
                          (self.act_sample, self.try_sample),
                          (self.act_about, lambda: show_about(self, self.db_path())),
                          (self.act_play, self.player.toggle_play),
                          (self.act_back, lambda: self.player.step(-1)),
                          (self.act_fwd, lambda: self.player.step(1))):
            act.triggered.connect(slot)
        self.open_button.clicked.connect(self.choose_video)
        self.sample_button.clicked.connect(self.try_sample)
        self.search_button.clicked.connect(self.start_search)
        self.cancel_button.clicked.connect(self.cancel_work)
        self.recent_menu.aboutToShow.connect(
            lambda: self.fill_recent_menu(self.settings.recent_videos, self.open_video))

    def _connect_widgets(self) -> None:
        self.view.cropSelected.connect(self.add_crop_query)
        self.timeline.hitClicked.connect(self.show_hit)
        self.library.openRequested.connect(self.choose_video)
        self.library.openFolderRequested.connect(self.choose_folder)
        self.library.videoActivated.connect(self._library_video)
        self.library.queryActivated.connect(self.open_query)
        self.library.checkedChanged.connect(
            lambda: setattr(self.model, "checked_videos", self.library.checked_paths()))
        self.queries.addRequested.connect(self.choose_photos)
        self.queries.changed.connect(lambda: setattr(self.model, "photos", self.queries.photos()))
        self.results.hitActivated.connect(self.show_hit)
        self.results.markRequested.connect(self.search.mark)
        self.results.similarRequested.connect(self.search.find_similar)
        self.results.thresholdChanged.connect(lambda value: setattr(self.model, "threshold", value))
        self.player.frameShown.connect(self.frameShown)
        for problem in (self.queries.problem, self.player.problem):
            problem.connect(lambda text: self.show_message("error", text))
        self.jobs.boxes.spanLoaded.connect(self.player.refresh_boxes)

    def _connect_model_and_jobs(self) -> None:
        events = self.model.events
        events.result.connect(self._show_result)
        events.threshold.connect(self._threshold_changed)
        for changed in (events.checked_videos, events.photos, events.video_path):
            changed.connect(self._update_actions)
        jobs = self.jobs
        jobs.engineLoaded.connect(self._engine_loaded)
        jobs.engineFailed.connect(self._engine_failed)
        jobs.libraryLoaded.connect(self._library_loaded)
        jobs.thumbnailReady.connect(self._on_thumbnail)
        self.photo_strip.attach(self.model, jobs.thumbnailReady)
        self.photo_strip.hitActivated.connect(self.show_hit)
        jobs.error.connect(lambda text: self.show_message("error", self.query.friendly(text)))
        jobs.jobFinished.connect(self._job_done)  # after SearchControl's: the progress is updated first
        jobs.jobsChanged.connect(self._update_actions)
        for part in (self.search, self.evidence, self.query):
            part.message.connect(self.show_message)
        for part in (self.search, self.evidence):
            part.progressShown.connect(self.progressShown)
        self.search.status.connect(self.statusBar().showMessage)
        self.search.searchFinished.connect(self.searchFinished)
        self.search.reopened.connect(self._show_reopened)

    # ================================================================== messages
    def show_message(self, level: str, text: str) -> None:
        """Tell the user something: status bar always, a message box for warnings and errors.

        Args:
            level: ``"error"``, ``"warning"`` or ``"info"``.
            text: One readable sentence (or a few).
        """
        log.log({"error": logging.ERROR, "warning": logging.WARNING}.get(level, logging.INFO), "%s", text)
        self.statusBar().showMessage(text, 8000 if level == "info" else 20000)
        self.messageShown.emit(level, text)
        if level in ("error", "warning") and self._interactive and not self._closing:
            icon = QMessageBox.Icon.Critical if level == "error" else QMessageBox.Icon.Warning
            box = QMessageBox(icon, APPLICATION, text, QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()
            self.last_message_box = box

    # ================================================================== engine and library
    def db_path(self) -> Path:
        """The library database in use (``--db``, the settings, or the default)."""
        return Path(self._db_override or self.settings.db_path or paths.default_db_path())

    @property
    def db_from_command_line(self) -> bool:
        """Whether the library was given with ``--db`` (the Settings dialog says so)."""
        return self._db_override is not None

    def queries_dir(self) -> Path:
        """Where query crops drawn on the video are kept (next to the database)."""
        return self.db_path().parent / "queries"

    def start_engine(self) -> None:
        """(Re)build the engine from the settings on a worker thread."""
        if self.jobs.load_engine(self.settings, self.db_path()):
            self.device_label.setText("Loading models...")

    @Slot(object)
    def _engine_loaded(self, engine: Engine) -> None:
        text, details = describe_engine(engine)
        self.image_folders.apply(engine)
        self.device_label.setText(text)
        self.device_label.setToolTip(f"{details}\nDatabase: {self.db_path()}")
        for note in engine.notes:
            self.show_message("warning", note)
        self.engineReady.emit()

    @Slot(str)
    def _engine_failed(self, text: str) -> None:
        self.device_label.setText("Models not loaded")
        self.progress.set_visible(self.jobs.showing_progress())
        self.show_message("error", text)

    @Slot(object)
    def _library_loaded(self, snapshot: LibrarySnapshot) -> None:
        self.image_folders.learn(snapshot.videos)
        self.library.set_library(snapshot.videos, snapshot.queries_by_video())
        self.library.set_current(self.model.video_path)
        self.set_welcome(sum(1 for v in snapshot.videos if v.status == "indexed"),
                         sum(len(q) for _, q in snapshot.queries))
        self._update_actions()
        self.player.refresh_boxes()  # the people's boxes may be known now
        self.libraryRefreshed.emit()

    def _boxes_at(self, index: int) -> TrackedBoxes | None:
        video = self.model.video_path
        return self.jobs.boxes_at(self.library.info_for(video) if video else None, index)

    # ================================================================== opening things
    def _remember_dir(self, folder: str) -> None:
        self.settings = replace(self.settings, last_dir=folder)

    def _library_video(self, path: str) -> None:
        if self.model.video_path is None or not same_path(path, self.model.video_path):
            self.open_video(path, check="keep")

    def choose_video(self) -> None:
        """Ask for video files and open them."""
        if files := self.dialogs.videos():
            self.open_videos(files)

    def choose_folder(self) -> None:
        """Ask for a folder and open all its videos."""
        if folder := self.dialogs.folder("Open a folder of videos"):
            self.open_folder(folder)

    def choose_photos(self) -> None:
        """Ask for query photos."""
        if files := self.dialogs.photos():
            self.query.add_files(files)

    def open_folder(self, folder: str | Path, images: str | None = None) -> list[str]:
        """Open every video in ``folder`` (not recursive), all checked; images as frames or photos (asked)."""
        try:
            if (kind := self.image_folders.choose(folder, images)) is not None:
                return [str(folder)] if kind and self.open_video(folder, check="only") else []
            return self.open_videos(videos_in(folder))
        except ReidSearchError as err:
            self.show_message("error", str(err))
            return []

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
        if not self.player.open(path, photos=self.image_folders.is_photos(path)):
            return False
        self.show_empty_state(False)
        self.library.video_opened(path, check)
        self.settings = self.settings.with_recent(self.model.video_path or path)
        if not same_path(path, SAMPLE_CLIP):  # the next file dialog starts where this video is
            self._remember_dir(str(Path(path).resolve().parent))
        self.setWindowTitle(f"{Path(path).name} - {APPLICATION}")
        self.player.show_frame(0)
        self._update_actions()
        return True

    def open_query(self, query_id: int, video_path: str = "") -> bool:
        """Reopen a past search (read on a worker): its photos, its hits, and its video follow."""
        return self.search.reopen(query_id, video_path)

    def _show_reopened(self, result: SearchResult, video_path: str) -> None:
        self.query.set_photos(list(result.photos))
        target = video_path or (result.hits[0].video_path if result.hits else "")
        current = self.model.video_path
        if target and (current is None or not same_path(target, current)):
            self.open_video(target, check="keep")
        self.model.result = result

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: D102 - Qt override
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not files:
            return
        event.acceptProposedAction()
        images, videos, folders = sort_dropped(files)
        if images:
            self.query.add_files(images)
        if videos:
            self.open_videos(videos)
        for folder in folders:
            self.open_folder(folder)

    def open_initial(self, videos: Sequence[str], photos: Sequence[str], run: bool = False) -> None:
        """Open what the command line asked for (``--video``, ``--query``), optionally searching."""
        if videos:
            self.open_videos(list(videos))
        if photos:
            self.query.add_files(list(photos))
        if run and videos and photos:
            self.start_search()

    @Slot(QRect)
    def add_crop_query(self, rect: QRect) -> str | None:
        """Turn a rectangle drawn on the frame shown (image pixels) into a query photo.

        Saved next to the library database and offered as a photo (:meth:`QueryControl.add_crop`).

        Returns:
            The PNG path, or ``None`` if nothing was drawn.
        """
        try:
            return self.query.add_crop(self.player.frame, rect, self.queries_dir(), self.model.video_path)
        except ValueError as exc:
            self.show_message("error", str(exc))
            return None

    # ================================================================== search
    def cancel_work(self) -> None:
        """Stop indexing, saving images and exporting clips (Cancel, Esc)."""
        self.search.cancel()
        self.evidence.cancel()

    def start_search(self, index_only: bool = False) -> bool:
        """Index the videos in scope if needed, then search the photos in them (see ``SearchControl``)."""
        return self.search.start(index_only)

    @Slot(str)
    def _job_done(self, name: str) -> None:
        self._update_actions()
        self.jobFinished.emit(name)

    # ================================================================== results
    def _show_result(self, result: SearchResult | None) -> None:
        self.results.set_result(result, self.model.score_range)
        # A result's notes start with one per photo: the query panel says those (see QueryControl).
        notes = result.notes[len(result.photos):] if result is not None else ()
        self.notes_label.setText("\n".join(notes))
        self.notes_label.setVisible(bool(notes))
        if self.model.video_path is None and result is not None and result.hits:
            self.open_video(result.hits[0].video_path, check="keep")
        hits = result.hits if result is not None else ()
        self.jobs.thumbnails(hits, lambda h: not self.results.has_thumbnail(hit_key(h)))

    @Slot(object)
    def _on_thumbnail(self, item: Thumbnail) -> None:
        self.results.set_thumbnail(item.key, item.image)

    def _threshold_changed(self, threshold: float) -> None:
        if self.results.threshold != threshold:
            self.results.set_threshold(threshold)
        self._update_actions()

    @Slot(object)
    def show_hit(self, hit: Hit) -> None:
        """Seek to a hit's best frame (opening its video if needed) and highlight the person."""
        current = self.model.video_path
        if hit.photo_path and not self.image_folders.is_photos(hit.video_path):
            self.image_folders.set(hit.video_path, "photos")
            current = None  # opened before as frames: open it again as photos
        if current is None or not same_path(hit.video_path, current):
            if not self.open_video(hit.video_path, check="keep"):
                return
        self.player.pause()
        self.model.selected_hit = hit
        self.results.select_hit(hit)
        self.player.show_frame(hit.best_frame)

    def choose_export(self) -> None:
        """Ask for a CSV/JSON file name and export the hits shown."""
        if path := self.dialogs.export_file():
            self.search.export_hits(path)

    def choose_image_folder(self) -> None:
        """Ask for a folder and save the hit images there."""
        if folder := self.dialogs.folder("Save hit images to"):
            self.search.save_images(folder)

    # ================================================================== sample
    def try_sample(self) -> bool:
        """Open the sample clip and photo and run index + search."""
        missing = [str(p) for p in (SAMPLE_CLIP, SAMPLE_QUERY) if not p.is_file()]
        if missing:
            self.show_message("error", f"The sample is missing ({', '.join(missing)}); reinstall the app or "
                                       "run `python scripts/make_sample_assets.py`.")
            return False
        if not self.open_video(SAMPLE_CLIP, check="only"):
            return False
        self.query.clear()
        self.query.add_files([str(SAMPLE_QUERY)])
        return self.start_search()

    # ================================================================== state
    def _update_actions(self, *_: object) -> None:
        busy, saving = self.jobs.busy(INDEX_JOB), self.jobs.busy(SAVE_JOB)
        self.act_search.setEnabled(not busy and self.model.can_search)
        self.search_button.setEnabled(self.act_search.isEnabled())
        self.act_index.setEnabled(not busy and bool(self.model.scope))
        self.act_cancel.setEnabled(self.jobs.showing_progress())
        has_hits = bool(self.model.visible_hits)
        self.act_export.setEnabled(has_hits)
        self.act_save_images.setEnabled(has_hits and not saving)
        self.act_export_clips.setEnabled(has_hits and not self.evidence.busy)
        self.act_sample.setEnabled(not busy)
        self.sample_button.setEnabled(not busy)
        self.scope_label.setText(self.model.scope_text)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: D102 - Qt override
        self._closing = True
        self.player.close()
        self.jobs.close()
        self.settings = replace(self.settings, threshold=self.model.threshold_to_save())
        self.settings_store.save(self.settings)
        self.settings_store.save_geometry(self.saveGeometry(), QByteArray(self.main_split.saveState()))
        super().closeEvent(event)
