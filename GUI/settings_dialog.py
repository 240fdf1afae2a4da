"""The Settings dialog: models, device, precision, sampling, motion gate, threshold, database location.

It names what is really in use (the default model by name, the database given with
``--db``) and, before OK is pressed, says what a change of the models or of the frames
indexed does to the videos already indexed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from core import paths
from core.errors import ModelError
from core.models.manifest import FETCH_HINT, default_model, load_manifest
from core.search import DEFAULT_THRESHOLD
from GUI.dialogs import lay_out_dialog
from GUI.settings import DETECT_SIZES, RATE_RANGE, AppSettings

if TYPE_CHECKING:
    from core.engine import Engine

DEVICE_LABELS = {"auto": "Automatic (GPU if available)", "gpu": "GPU (CUDA)", "cpu": "CPU"}
PRECISION_LABELS = {"auto": "Automatic (int8 on the CPU, float16 on a GPU)",
                    "int8": "int8 (about 2x faster on most CPUs)",
                    "fp16": "float16 (GPU)",
                    "fp32": "float32 (the model as trained; for CPUs where int8 is not faster)"}
SIZE_LABELS = {0: "The model's own (640 pixels)", 480: "480 pixels (faster; people near the camera)",
               800: "800 pixels", 960: "960 pixels (people far from an HD camera; about 2.5x slower)",
               1280: "1280 pixels (about 5x slower)"}
SAMPLING_LABELS = {"rate": "By time: frames per second of video", "stride": "Every n-th frame"}
OTHER = "__other__"


class ModelCombo(QComboBox):
    """Picks a model file of one task: the default, a manifest entry or any ONNX file."""

    def __init__(self, task: str, current: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._task = task
        try:
            manifest = load_manifest()
            entries = [e for e in manifest if e.task == task]
        except ModelError as exc:
            manifest, entries = [], []
            self.setToolTip(str(exc))
        try:
            first = default_model(task, manifest)
            self.addItem(f"Default: {first.name} ({first.file})", None)
            self.setItemData(0, f"The first model of the manifest that is present: {first.description}", 3)
        except ModelError as exc:
            self.addItem("Default: none present", None)
            self.setItemData(0, str(exc), 3)
        for entry in entries:
            state = "" if entry.present else f" - missing, run `{FETCH_HINT}`"
            self.addItem(f"{entry.name} ({entry.file}){state}", str(entry.path))
            self.setItemData(self.count() - 1, entry.description, 3)  # Qt.ToolTipRole
        self.addItem("Other ONNX file...", OTHER)
        if current:
            self._select_path(current)
        self._last = self.currentIndex()
        self.activated.connect(self._picked)

    def _select_path(self, path: str) -> None:
        for i in range(self.count()):
            data = self.itemData(i)
            if data not in (None, OTHER) and Path(data) == Path(path):
                self.setCurrentIndex(i)
                return
        self.insertItem(self.count() - 1, f"{Path(path).name} ({Path(path).parent})", str(path))
        self.setCurrentIndex(self.count() - 2)

    def _picked(self, index: int) -> None:
        if self.itemData(index) != OTHER:
            self._last = index
            return
        start = str(paths.models_dir())
        path, _ = QFileDialog.getOpenFileName(self, f"Choose a {self._task} model", start,
                                              "ONNX models (*.onnx);;All files (*)")
        if path:
            self._select_path(path)
            self._last = self.currentIndex()
        else:
            self.setCurrentIndex(self._last)

    def path(self) -> str | None:
        """The chosen file, or ``None`` for the default."""
        data = self.currentData()
        return None if data in (None, OTHER) else str(data)


class SettingsDialog(QDialog):
    """Edit :class:`~GUI.settings.AppSettings`.

    Args:
        settings: The current settings.
        providers: ``Engine.providers`` of the running engine (what is really in use).
        notes: ``Engine.notes`` of the running engine.
        default_threshold: The calibrated default threshold (shown when none is set).
        parent: Parent widget.
        db_in_use: The library database the window uses now.
        db_from_command_line: ``db_in_use`` was given with ``--db`` (the setting applies without it).
        indexed_videos: Videos of the library indexed with the models and stride in use.
    """

    def __init__(self, settings: AppSettings, providers: dict[str, str] | None = None,
                 notes: tuple[str, ...] = (), default_threshold: float = DEFAULT_THRESHOLD,
                 parent: QWidget | None = None, *, db_in_use: Path | None = None,
                 db_from_command_line: bool = False, indexed_videos: int = 0) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._settings = settings
        self.detector = ModelCombo("detect", settings.detector)
        self.reid = ModelCombo("reid", settings.reid)
        self.device = QComboBox()
        for key, label in DEVICE_LABELS.items():
            self.device.addItem(label, key)
        self.device.setCurrentIndex(list(DEVICE_LABELS).index(settings.device))
        in_use = ", ".join(f"{k}: {v.replace('ExecutionProvider', '')}" for k, v in (providers or {}).items())
        self.providers = QLabel(("In use now: " + in_use) if in_use else "Models not loaded yet.")
        self.providers.setObjectName("hint")
        self.providers.setWordWrap(True)
        if notes:
            self.providers.setText(self.providers.text() + "\n" + "\n".join(notes))
        self.precision = QComboBox()
        for key, label in PRECISION_LABELS.items():
            self.precision.addItem(label, key)
        self.precision.setCurrentIndex(list(PRECISION_LABELS).index(settings.precision))
        self.precision.setToolTip("The detector's arithmetic. int8 is a version of the detector made at "
                                  "install time; on old CPUs without VNNI it can be slower than float32 "
                                  "(scripts/benchmark.py shows both).")
        self.detect_size = QComboBox()
        for key in DETECT_SIZES:
            self.detect_size.addItem(SIZE_LABELS[key], key)
        self.detect_size.setCurrentIndex(DETECT_SIZES.index(settings.detect_size))
        self.detect_size.setToolTip("How large the detector sees each frame. At 640 pixels it finds about "
                                    "half of the people 150-250 pixels tall in a 1080p frame; at 960, "
                                    "four in five (README, Detector input size).")
        self.sampling = QComboBox()
        for key, label in SAMPLING_LABELS.items():
            self.sampling.addItem(label, key)
        self.sampling.setCurrentIndex(list(SAMPLING_LABELS).index(settings.sampling))
        self.rate = QDoubleSpinBox()
        self.rate.setRange(*RATE_RANGE)
        self.rate.setSingleStep(0.5)
        self.rate.setDecimals(1)
        self.rate.setValue(settings.rate)
        self.rate.setToolTip("Frames looked at per second of video, whatever its frame rate (3: every "
                             "3rd frame at 10 fps, every 8th at 25 fps). Fewer splits people into more "
                             "tracks.")
        self.stride = QSpinBox()
        self.stride.setRange(1, 30)
        self.stride.setValue(settings.stride)
        self.stride.setToolTip("Index every n-th frame: 1 is the most thorough, 2-3 is faster and "
                               "usually enough for walking people.")
        self.sampling.currentIndexChanged.connect(self._sampling_changed)
        self._sampling_changed()
        sampling_row = QHBoxLayout()
        sampling_row.addWidget(self.sampling, 1)
        sampling_row.addWidget(self.rate)
        sampling_row.addWidget(self.stride)
        self.motion_gate = QCheckBox("Skip frames where nothing moves (while no one is being followed)")
        self.motion_gate.setChecked(settings.motion_gate)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setValue(settings.threshold if settings.threshold is not None else default_threshold)
        self._default_threshold = default_threshold
        self.db = QLineEdit(settings.db_path or "")
        self.db.setPlaceholderText(f"{paths.default_db_path()} (the default)")
        in_use = db_in_use or Path(settings.db_path or paths.default_db_path())
        self.db_in_use = QLabel(f"In use now: {in_use}" + (" (given with --db for this run; the setting "
                                                           "above is used when the app starts without it)"
                                                           if db_from_command_line else ""))
        self.db_in_use.setObjectName("hint")
        self.db_in_use.setWordWrap(True)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse_db)
        db_row = QHBoxLayout()
        db_row.addWidget(self.db, 1)
        db_row.addWidget(browse)

        form = QFormLayout()
        form.addRow("Person detector:", self.detector)
        form.addRow("ReID model:", self.reid)
        form.addRow("Device:", self.device)
        form.addRow("", self.providers)
        form.addRow("Detector precision:", self.precision)
        form.addRow("Detector input:", self.detect_size)
        form.addRow("Frames indexed:", sampling_row)
        form.addRow("", self.motion_gate)
        form.addRow("Score threshold:", self.threshold)
        form.addRow("Library database:", db_row)
        form.addRow("", self.db_in_use)
        self._indexed = indexed_videos
        self.consequence = QLabel()
        self.consequence.setObjectName("hint")
        self.consequence.setWordWrap(True)
        note = self.consequence
        for combo in (self.detector, self.reid):
            combo.currentIndexChanged.connect(self._say_consequence)
        self.precision.currentIndexChanged.connect(self._say_consequence)
        self.detect_size.currentIndexChanged.connect(self._say_consequence)
        self.sampling.currentIndexChanged.connect(self._say_consequence)
        self.rate.valueChanged.connect(self._say_consequence)
        self.stride.valueChanged.connect(self._say_consequence)
        self.motion_gate.toggled.connect(self._say_consequence)
        self._say_consequence()
        lay_out_dialog(self, form, note)

    def _say_consequence(self, *_: object) -> None:
        """Say, as the choice changes, what it does to the videos indexed already."""
        s = self._settings
        reid = self.reid.path() != s.reid
        sampling = self.sampling.currentData()
        frames = (sampling != s.sampling or self.motion_gate.isChecked() != s.motion_gate
                  or (sampling == "rate" and abs(self.rate.value() - s.rate) > 1e-6)
                  or (sampling == "stride" and self.stride.value() != s.stride))
        other = (self.detector.path() != s.detector or self.precision.currentData() != s.precision or frames
                 or self.detect_size.currentData() != s.detect_size)
        n = self._indexed
        videos = ("the video indexed so far is" if n == 1 else
                  f"the {n} videos indexed so far are" if n else "videos indexed so far are")
        if reid or other:
            what = "ReID model" if reid else "detector, precision or choice of frames"
            text = (f"A new {what}: {videos} indexed again the next time they are searched, which takes "
                    "about as long as the first time; their past searches stay and can be reopened.")
        else:
            text = ("Changing the models, the precision, the detector input or which frames are indexed "
                    "indexes the videos again when they are next searched.")
        self.consequence.setText(text)
        self.consequence.setStyleSheet("color: #b45309;" if reid or other else "")

    def _sampling_changed(self) -> None:
        by_time = self.sampling.currentData() == "rate"
        self.rate.setVisible(by_time)
        self.stride.setVisible(not by_time)

    def _browse_db(self) -> None:
        start = self.db.text() or str(paths.default_db_path())
        path, _ = QFileDialog.getSaveFileName(self, "Library database", start,
                                              "SQLite databases (*.sqlite *.db);;All files (*)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.db.setText(path)

    def result_settings(self) -> AppSettings:
        """The settings as edited in the dialog."""
        threshold = round(self.threshold.value(), 2)
        if self._settings.threshold is None and abs(threshold - self._default_threshold) < 1e-6:
            threshold = None
        return replace(
            self._settings,
            detector=self.detector.path(),
            reid=self.reid.path(),
            device=self.device.currentData(),
            precision=self.precision.currentData(),
            detect_size=self.detect_size.currentData(),
            sampling=self.sampling.currentData(),
            rate=round(self.rate.value(), 1),
            stride=self.stride.value(),
            motion_gate=self.motion_gate.isChecked(),
            threshold=threshold,
            db_path=self.db.text().strip() or None,
        )


def edit_settings(parent: QWidget, settings: AppSettings, engine: Engine | None, *, db_in_use: Path,
                  db_from_command_line: bool, indexed_videos: int) -> AppSettings | None:
    """Show the Settings dialog for the window; the settings chosen, or ``None`` when cancelled."""
    providers = dict(engine.providers) if engine is not None else {}
    notes = engine.notes if engine is not None else ()
    dialog = SettingsDialog(settings, providers, notes, DEFAULT_THRESHOLD, parent, db_in_use=db_in_use,
                            db_from_command_line=db_from_command_line, indexed_videos=indexed_videos)
    return dialog.result_settings() if dialog.exec() == SettingsDialog.DialogCode.Accepted else None
