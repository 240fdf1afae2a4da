"""Settings kept between runs.

Two layers:

* :class:`AppSettings` is a plain, Qt-free frozen dataclass with a schema
  version. Everything the app needs to build an engine and lay out its window
  (except the window geometry blob) lives here, so it can be unit-tested and
  migrated without Qt.
* :class:`SettingsStore` is a thin adapter that reads and writes an
  :class:`AppSettings` (plus the window geometry) through ``QSettings``.

The organisation and application names are explicit so the settings file has a
stable location: ``~/.config/ReidVideoSearch/ReID Video Search.conf`` on Linux.
Tests pass their own ``QSettings`` (an INI file in a temporary folder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from core.index_settings import DEFAULT_RATE
from core.models.derived import PRECISIONS

ORGANISATION = "ReidVideoSearch"
"""QSettings organisation name."""

APPLICATION = "ReID Video Search"
"""QSettings application name (also the window title)."""

SCHEMA_VERSION = 3
"""Version of the stored settings layout; bump it and extend :func:`migrate` on a change."""

DEVICES = ("auto", "gpu", "cpu")
"""Device choices offered to the user (``Engine(device=...)``)."""

SAMPLINGS = ("rate", "stride")
"""How frames are picked for indexing: ``rate`` per second of video, or every ``stride``-th frame."""

RATE_RANGE = (0.5, 30.0)
"""Detection rates offered, in processed frames per second of video."""

DETECT_SIZES = (0, 480, 800, 960, 1280)
"""Detector input sizes offered (longest side, pixels); 0 is the model's own (640)."""

OLD_DEFAULT_RATE = 5.0
"""The default rate of settings version 2 (kept by then as a value, not as 'the default')."""


def _flag(value: Any, default: bool) -> bool:
    """A bool from a stored value (INI files give back ``"true"``/``"false"`` strings)."""
    if isinstance(value, str):
        text = value.strip().lower()
        return default if text not in ("true", "false", "1", "0") else text in ("true", "1")
    return bool(value) if value is not None else default


@dataclass(frozen=True)
class AppSettings:
    """What the user chose, Qt-free.

    Attributes:
        schema_version: Layout version of these settings.
        detector: Detector ONNX file, or ``None`` for the manifest default.
        reid: ReID ONNX file, or ``None`` for the manifest default.
        device: ``"auto"``, ``"gpu"`` or ``"cpu"``.
        precision: The detector's precision (``core.models.derived.PRECISIONS``; ``"auto"``: int8 on
            the CPU, float16 on a GPU).
        sampling: ``"rate"`` (``rate`` processed frames per second of video, the default) or
            ``"stride"`` (every ``stride``-th frame).
        rate: Processed frames per second of video when sampling by time.
        stride: Process every ``stride``-th frame when sampling by frames (>= 1).
        motion_gate: Skip the detector where nothing moves and no one is being followed.
        detect_size: Longest side of the detector's input in pixels (one of :data:`DETECT_SIZES`;
            0: the model's own).
        threshold: Score threshold of the results list, or ``None`` for the engine default.
        db_path: Library database file, or ``None`` for ``core.paths.default_db_path()``.
        last_dir: Folder of the last file dialog.
        recent_videos: Most recently opened videos, newest first (at most 10).
    """

    schema_version: int = SCHEMA_VERSION
    detector: str | None = None
    reid: str | None = None
    device: str = "auto"
    stride: int = 2
    precision: str = "auto"
    sampling: str = "rate"
    rate: float = DEFAULT_RATE
    motion_gate: bool = True
    detect_size: int = 0
    threshold: float | None = None
    db_path: str | None = None
    last_dir: str = ""
    recent_videos: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        device = str(self.device).lower()
        object.__setattr__(self, "device", device if device in DEVICES else "auto")
        try:
            stride = int(self.stride)
        except (TypeError, ValueError):
            stride = 2
        object.__setattr__(self, "stride", max(1, min(stride, 30)))
        precision = str(self.precision).lower()
        object.__setattr__(self, "precision", precision if precision in PRECISIONS else "auto")
        sampling = str(self.sampling).lower()
        object.__setattr__(self, "sampling", sampling if sampling in SAMPLINGS else "rate")
        try:
            rate = float(self.rate)
        except (TypeError, ValueError):
            rate = DEFAULT_RATE
        rate = rate if rate == rate else DEFAULT_RATE  # NaN
        object.__setattr__(self, "rate", max(RATE_RANGE[0], min(rate, RATE_RANGE[1])))
        object.__setattr__(self, "motion_gate", _flag(self.motion_gate, True))
        try:
            size = int(self.detect_size)
        except (TypeError, ValueError):
            size = 0
        object.__setattr__(self, "detect_size", size if size in DETECT_SIZES else 0)
        if self.threshold is not None:
            try:
                object.__setattr__(self, "threshold", min(1.0, max(0.0, float(self.threshold))))
            except (TypeError, ValueError):
                object.__setattr__(self, "threshold", None)
        for name in ("detector", "reid", "db_path"):
            value = getattr(self, name)
            object.__setattr__(self, name, str(value) if value else None)
        object.__setattr__(self, "recent_videos", tuple(str(v) for v in self.recent_videos if v)[:10])

    def engine_key(self) -> tuple[str | int | float | bool | None, ...]:
        """The settings an engine is built from; a change means a new engine."""
        return (self.detector, self.reid, self.device, self.precision, self.sampling, self.rate,
                self.stride, self.motion_gate, self.detect_size, self.db_path)

    def run_key(self) -> tuple[str | int | float | bool | None, ...]:
        """The settings a run is made with (models, precision, frames): a change means indexing again."""
        by_time = self.sampling == "rate"
        return (self.detector, self.reid, self.precision, self.sampling, self.rate if by_time else None,
                None if by_time else self.stride, self.motion_gate, self.detect_size)

    def engine_kwargs(self) -> dict[str, Any]:
        """``core.engine.Engine`` keyword arguments: device, precision, sampling, motion gate, input size."""
        by_time = self.sampling == "rate"
        return {"device": {"gpu": "cuda"}.get(self.device, self.device), "precision": self.precision,
                "stride": None if by_time else self.stride, "rate": self.rate if by_time else None,
                "motion_gate": self.motion_gate, "detect_size": self.detect_size or None}

    def with_recent(self, video: str) -> AppSettings:
        """Return a copy with ``video`` first in the recent list."""
        recent = (video,) + tuple(v for v in self.recent_videos if v != video)
        return replace(self, recent_videos=recent[:10])

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/INI friendly) of every field."""
        data = asdict(self)
        data["recent_videos"] = list(self.recent_videos)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppSettings:
        """Build settings from a stored dict, migrating older layouts and ignoring unknown keys."""
        data = migrate(dict(data))
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["schema_version"] = SCHEMA_VERSION
        recent = kwargs.get("recent_videos") or ()
        if isinstance(recent, str):
            recent = (recent,)
        kwargs["recent_videos"] = tuple(recent)
        return cls(**kwargs)


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a stored settings dict to :data:`SCHEMA_VERSION`.

    Version 0 (no version key) is the same layout as version 1. Version 2 adds precision,
    sampling, rate and the motion gate: settings of version 1 whose stride is not the old
    default 2 keep sampling by that stride (the user chose it); the others sample by time.
    Version 3 adds the detector's input size (0, the model's own) and lowers the default rate
    from 5 to 3 frames a second (measured as fast with the same people found): a stored rate of
    exactly 5, the old default, becomes the new default.
    """
    try:
        version = int(data.get("schema_version", 0) or 0)
    except (TypeError, ValueError):
        version = 0
    if version > SCHEMA_VERSION:
        # Written by a newer app: keep what we understand.
        return data
    if version < 2 and "sampling" not in data:
        try:
            chose = int(data.get("stride", 2)) != 2
        except (TypeError, ValueError):
            chose = False
        data["sampling"] = "stride" if chose else "rate"
    if version < 3:
        try:
            old_default = float(data.get("rate", OLD_DEFAULT_RATE)) == OLD_DEFAULT_RATE
        except (TypeError, ValueError):
            old_default = True
        if old_default:
            data["rate"] = DEFAULT_RATE
    data["schema_version"] = SCHEMA_VERSION
    return data


def _none_if_empty(value: Any) -> Any:
    if value in ("", None, "@Invalid()"):
        return None
    return value


class SettingsStore:
    """Reads and writes :class:`AppSettings` and the window geometry through ``QSettings``.

    Args:
        qsettings: The backing store; ``None`` means the user's settings for
            :data:`ORGANISATION` / :data:`APPLICATION`.
    """

    GROUP = "app"

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._qs = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)

    @property
    def qsettings(self) -> QSettings:
        """The backing ``QSettings``."""
        return self._qs

    def load(self) -> AppSettings:
        """Return the stored settings (defaults for anything missing or unreadable)."""
        qs = self._qs
        qs.beginGroup(self.GROUP)
        try:
            data: dict[str, Any] = {}
            for key in qs.childKeys():
                data[key] = qs.value(key)
        finally:
            qs.endGroup()
        for key in ("detector", "reid", "db_path", "threshold"):
            if key in data:
                data[key] = _none_if_empty(data[key])
        if "recent_videos" in data and data["recent_videos"] is None:
            data["recent_videos"] = ()
        try:
            return AppSettings.from_dict(data)
        except (TypeError, ValueError):
            return AppSettings()

    def save(self, settings: AppSettings) -> None:
        """Write ``settings`` and flush them to disk."""
        qs = self._qs
        qs.beginGroup(self.GROUP)
        try:
            qs.remove("")
            for key, value in settings.to_dict().items():
                if value is None:
                    value = ""
                qs.setValue(key, value)
        finally:
            qs.endGroup()
        qs.sync()

    def geometry(self) -> QByteArray | None:
        """The saved main-window geometry, if any."""
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        """The saved splitter/dock state, if any."""
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_geometry(self, geometry: QByteArray, state: QByteArray | None = None) -> None:
        """Remember the main-window geometry (and optional layout state)."""
        self._qs.setValue("window/geometry", geometry)
        if state is not None:
            self._qs.setValue("window/state", state)
        self._qs.sync()
