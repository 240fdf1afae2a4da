"""What the main window is made of: actions, widgets, layout, menus, toolbar, status bar.

:class:`WindowUi` builds them and connects nothing, as a class ``pyside6-uic`` writes
from a Designer file would: every widget and action becomes an attribute of the
window. :class:`GUI.main_window.MainWindow` derives from it and wires the actions and
the widgets' signals to what they do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QByteArray, QEvent, QObject, QSize, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
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

from core.text import plural
from GUI.library import LibraryPanel
from GUI.photo_strip import PhotoStrip
from GUI.query_panel import QueryPanel
from GUI.results import ResultsPanel
from GUI.timeline import Timeline
from GUI.video_view import VideoView

Shortcut = QKeySequence | QKeySequence.StandardKey | str | None

MINIMUM_SIZE = (900, 600)
"""The smallest window: at this size every label is whole and the hits list shows several rows."""

RIGHT_MIN_WIDTH = 372
"""Narrowest the query and hits column gets (a hit's row: thumbnail, track, score, time range)."""

LIBRARY_MIN_WIDTH = 186
"""Narrowest the library column gets (a video's name stays readable)."""

FIRST_STEPS = ("1. Open a video (or a folder of videos).<br>"
               "2. Add a photo of the person, or drag a rectangle around them on the video.<br>"
               "3. Press <b>Search</b>, then click a hit to see them.")


def _box(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 8, 6, 6)
    layout.addWidget(widget)
    return box


def _tool_button(act: QAction) -> QToolButton:
    b = QToolButton()
    b.setDefaultAction(act)
    b.setIconSize(QSize(20, 20))
    b.setAutoRaise(True)
    return b


def _column(*widgets: QWidget, stretch_first: bool = False) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    for n, w in enumerate(widgets):
        layout.addWidget(w, 1 if stretch_first and n == 0 else 0)
    return page


def _hint(text: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(wrap)
    return label


class OwnArrowKeys(QObject):
    """Lets a widget keep the arrow keys while it has the keyboard (playback takes them window-wide)."""

    KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: D102 - Qt override
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() in self.KEYS:
            event.accept()  # the key goes to the widget, not to a shortcut
        return False


class WindowUi(QMainWindow):
    """The main window's widgets and actions, built and laid out (see the module notes)."""

    # actions
    act_open: QAction
    act_open_folder: QAction
    act_add_photo: QAction
    act_search: QAction
    act_index: QAction
    act_cancel: QAction
    act_export: QAction
    act_save_images: QAction
    act_export_clips: QAction
    act_settings: QAction
    act_quit: QAction
    act_sample: QAction
    act_about: QAction
    act_play: QAction
    act_back: QAction
    act_fwd: QAction
    # centre: the video (or the empty state), the timeline, the transport
    view: VideoView
    empty: QWidget
    welcome: QLabel
    open_button: QPushButton
    sample_button: QPushButton
    stack: QStackedWidget
    timeline: Timeline
    photo_strip: PhotoStrip
    play_button: QToolButton
    back_button: QToolButton
    fwd_button: QToolButton
    position: QSlider
    time_label: QLabel
    frame_label: QLabel
    centre: QWidget
    # sides: library; query photos, search, hits
    library: LibraryPanel
    queries: QueryPanel
    search_button: QPushButton
    scope_label: QLabel
    results: ResultsPanel
    notes_label: QLabel
    right_column: QWidget
    main_split: QSplitter
    toolbar: QToolBar
    recent_menu: QMenu
    # status bar
    progress_label: QLabel
    progress_bar: QProgressBar
    cancel_button: QPushButton
    device_label: QLabel

    def __init__(self) -> None:
        super().__init__()
        self._build_actions()
        self._build_centre()
        self._build_sides()
        self._build_bars()

    # ------------------------------------------------------------------ actions
    def _action(self, text: str, shortcut: Shortcut = None, icon: QStyle.StandardPixmap | None = None,
                tip: str = "") -> QAction:
        act = QAction(text, self)
        if icon is not None:
            act.setIcon(self.style().standardIcon(icon))
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setToolTip(tip)
            act.setStatusTip(tip)
        return act

    def _build_actions(self) -> None:
        sp, key = QStyle.StandardPixmap, QKeySequence.StandardKey
        act = self._action
        self.act_open = act("&Open video...", key.Open, sp.SP_DialogOpenButton,
                            "Open a video file to search in")
        self.act_open_folder = act("Open &folder...", "Ctrl+Shift+O", sp.SP_DirOpenIcon,
                                   "Open every video of a folder and search them together")
        self.act_add_photo = act("&Add query photo...", "Ctrl+P", sp.SP_FileIcon,
                                 "Add a photo of the person to find")
        self.act_search = act("&Search", "Ctrl+Return", sp.SP_FileDialogContentsView,
                              "Index the checked videos if needed, then find the person in them")
        self.act_index = act("&Index only", "Ctrl+I", None, "Index the checked videos without searching")
        self.act_cancel = act("&Cancel", "Esc", sp.SP_BrowserStop,
                              "Stop indexing (it resumes where it stopped next time)")
        self.act_export = act("&Export hits...", "Ctrl+E", sp.SP_DialogSaveButton,
                              "Save the hits shown as CSV or JSON")
        self.act_save_images = act("Save hit &images...", "Ctrl+Shift+E", None,
                                   "Save each hit's crop and best frame as PNG files")
        self.act_export_clips = act("Export &clips...", "Ctrl+Shift+X", sp.SP_DriveHDIcon,
                                    "Save a short video of each hit, a contact sheet and a record of "
                                    "the search")
        self.act_settings = act("Se&ttings...", "Ctrl+,", None,
                                "Models, device, stride, threshold, database (Ctrl+,)")
        self.act_settings.setShortcuts([QKeySequence("Ctrl+,"), *QKeySequence.keyBindings(key.Preferences)])
        self.act_quit = act("&Quit", key.Quit)
        self.act_sample = act("&Try the sample", None, sp.SP_MediaPlay,
                              "Open the sample clip and photo and run a search")
        self.act_about = act("&About")
        self.act_play = act("&Play", "Space", sp.SP_MediaPlay, "Play / pause (Space)")
        self.act_back = act("Previous frame", "Left", sp.SP_MediaSeekBackward, "One frame back (Left)")
        self.act_fwd = act("Next frame", "Right", sp.SP_MediaSeekForward, "One frame forward (Right)")
        for a in (self.act_play, self.act_back, self.act_fwd):
            # Window-wide: they work whichever panel has the keyboard (the hits list after a click keeps
            # Up/Down to move between hits); a text field still takes Space and the arrows for itself.
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

    # ------------------------------------------------------------------ widgets
    def _build_centre(self) -> None:
        self.view = VideoView()
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.empty = self._empty_state()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        self.timeline = Timeline()
        self.photo_strip = PhotoStrip()
        self.play_button = _tool_button(self.act_play)
        self.back_button = _tool_button(self.act_back)
        self.fwd_button = _tool_button(self.act_fwd)
        self.position = QSlider(Qt.Orientation.Horizontal)
        self.position.setRange(0, 0)
        self.position.setToolTip("Position in the video")
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.frame_label = _hint(wrap=False)
        for lab in (self.time_label, self.frame_label):
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        transport = QHBoxLayout()
        transport.setContentsMargins(0, 0, 0, 0)
        for w in (self.back_button, self.play_button, self.fwd_button):
            transport.addWidget(w)
        transport.addWidget(self.position, 1)
        clock = QVBoxLayout()  # time over frame: the slider keeps its width in a narrow window
        clock.setSpacing(0)
        clock.addWidget(self.time_label)
        clock.addWidget(self.frame_label)
        transport.addLayout(clock)
        centre = QWidget()
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.timeline)
        layout.addWidget(self.photo_strip)
        layout.addLayout(transport)
        self.addActions([self.act_play, self.act_back, self.act_fwd])
        self.centre = centre

    def _empty_state(self) -> QWidget:
        page = QWidget()
        page.setObjectName("emptyState")
        title = QLabel("Find a person in your videos")
        title.setObjectName("emptyTitle")
        title.setWordWrap(True)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(FIRST_STEPS)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setObjectName("emptyText")
        text.setWordWrap(True)
        self.welcome = text
        self.open_button = QPushButton("Open video...")
        self.sample_button = QPushButton("Try the sample")
        self.sample_button.setObjectName("primary")
        self.sample_button.setToolTip(self.act_sample.toolTip())
        row = QHBoxLayout()
        row.addStretch(1)
        for b in (self.open_button, self.sample_button):
            b.setMinimumSize(130, 32)
            row.addWidget(b)
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

    def _build_sides(self) -> None:
        self.library = LibraryPanel()
        self.queries = QueryPanel()
        self.search_button = QPushButton("  Search")
        self.search_button.setObjectName("primary")
        self.search_button.setIcon(self.act_search.icon())
        self.search_button.setIconSize(QSize(18, 18))
        self.search_button.setMinimumHeight(30)
        self.search_button.setToolTip(self.act_search.toolTip())
        self.scope_label = _hint()
        self.results = ResultsPanel()
        self._own_arrows = OwnArrowKeys(self)
        self.results.slider.installEventFilter(self._own_arrows)  # the threshold moves with the arrows
        self.notes_label = _hint()
        self.notes_label.hide()
        search_row = QWidget()
        row = QHBoxLayout(search_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.search_button, 1)
        row.addWidget(self.scope_label, 1)  # beside the button: the hits list keeps the height
        query_box = _box("Find this person", _column(self.queries, search_row))
        results_box = _box("Hits", _column(self.results, self.notes_label, stretch_first=True))

        # A layout, not a splitter: the query box takes the height its photos, notes and question need
        # (a splitter would squeeze wrapped text over them), the hits list all the rest.
        right = _column(results_box)
        right.layout().insertWidget(0, query_box, 0)
        right.layout().setStretch(1, 1)
        right.setMinimumWidth(RIGHT_MIN_WIDTH)  # the hits list's Score and Seen columns stay whole
        self.right_column = right
        split = QSplitter(Qt.Orientation.Horizontal)
        library_box = _box("Library", self.library)
        library_box.setMinimumWidth(LIBRARY_MIN_WIDTH)
        split.addWidget(library_box)
        split.addWidget(self.centre)
        split.addWidget(right)
        # The panels grow and shrink with the window in proportion (2 : 5 : 3), each down to its minimum.
        for n, stretch in enumerate((2, 5, 3)):
            split.setStretchFactor(n, stretch)
        split.setSizes([290, 760, 390])
        split.setChildrenCollapsible(False)
        self.setMinimumSize(*MINIMUM_SIZE)
        self.main_split = split
        self.setCentralWidget(split)

    # ------------------------------------------------------------------ bars
    def _build_bars(self) -> None:
        bar = QToolBar("Main")
        bar.setObjectName("main-toolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(18, 18))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for group in ((self.act_open, self.act_open_folder, self.act_add_photo),
                      (self.act_search, self.act_cancel), (self.act_export, self.act_export_clips)):
            if bar.actions():
                bar.addSeparator()
            bar.addActions(list(group))
        self.addToolBar(bar)
        self.toolbar = bar
        self._build_menus()

        # status bar: progress of background work, providers in use
        status = self.statusBar()
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(240)
        self.progress_bar.setMinimumWidth(160)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(self.act_cancel.toolTip())
        self.device_label = _hint("Loading models...", wrap=False)
        sep = QFrame()
        sep.setFrameShape(QFrame.Shape.VLine)
        for w in (self.progress_label, self.progress_bar, self.cancel_button, sep, self.device_label):
            status.addPermanentWidget(w)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_open, self.act_open_folder, self.act_add_photo])
        self.recent_menu = file_menu.addMenu("Open &recent")
        for group in ((self.act_export, self.act_export_clips, self.act_save_images), (self.act_settings,),
                      (self.act_quit,)):
            file_menu.addSeparator()
            file_menu.addActions(list(group))
        bar.addMenu("&Search").addActions([self.act_search, self.act_index, self.act_cancel])
        bar.addMenu("&Playback").addActions([self.act_play, self.act_back, self.act_fwd])
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_sample)
        help_menu.addSeparator()
        help_menu.addAction(self.act_about)

    # ------------------------------------------------------------------ what changes
    def show_empty_state(self, empty: bool) -> None:
        """Show the first steps (no video yet) or the video with its transport."""
        self.stack.setCurrentWidget(self.empty if empty else self.view)
        for w in (self.timeline, self.position, self.play_button, self.back_button, self.fwd_button):
            w.setEnabled(not empty)

    def restore_layout(self, geometry: QByteArray | None, state: QByteArray | None) -> None:
        """Put the window and its panels back as they were saved (a default size when nothing is)."""
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1440, 860)
        if state is not None:
            self.main_split.restoreState(state)

    def set_welcome(self, indexed: int, searches: int) -> None:
        """The first steps, or, when the library has indexed videos, how to get back to them."""
        if not indexed:
            self.welcome.setText(FIRST_STEPS)
            return
        past = f" and {plural(searches, 'past search', 'past searches')}" if searches else ""
        self.welcome.setText(f"Your library has {plural(indexed, 'indexed video')}{past} (on the left): "
                             "click a video to show it, or a past search to see its hits again.<br>"
                             "Or open another video, add a photo of the person and press <b>Search</b>.")

    def fill_recent_menu(self, videos: Sequence[str], open_video: Callable[[str], object]) -> None:
        """List the recent videos in *File > Open recent*; choosing one calls ``open_video``."""
        self.recent_menu.clear()
        for video in videos:
            act = self.recent_menu.addAction(video)
            act.triggered.connect(lambda _=False, v=video: open_video(v))
        if not videos:
            self.recent_menu.addAction("No recent videos").setEnabled(False)
