"""The window's state, without Qt: what is shown and chosen (napari's ``ViewerModel``, in small).

:class:`WindowModel` is an evented dataclass (``psygnal.evented``): assigning a field
that changes its value emits ``model.events.<field>(new, old)``, and the window and
its player connect to those events to redraw. The model holds the rules, so they can
be tested without a window:

* the threshold is kept in ``[0, 1]`` and the visible hits are ``result.above(threshold)``;
* a new result clears the selected hit, and so does a threshold above the selected
  hit's score (unless the user confirmed it: confirmed hits are always shown) or opening
  another video than the selected hit's;
* the search scope is the checked videos, else the current video;
* a threshold at the calibrated default (``core.search.DEFAULT_THRESHOLD``) is saved as
  "follow the default" (``None``), so a recalibrated default reaches the user.

Paths of videos are kept as :func:`norm_path` gives them (absolute, resolved).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psygnal import evented

from core.search import DEFAULT_THRESHOLD
from core.types import Hit

if TYPE_CHECKING:  # core.engine loads ONNX Runtime: the window imports it on a worker thread
    from core.engine import SearchResult

DEFAULT_SCORE_RANGE = (0.3, 0.9)
"""Score range of the hit colours before a search."""


def norm_path(path: str | Path) -> str:
    """A comparable form of a path (absolute, resolved)."""
    try:
        return str(Path(path).expanduser().resolve())
    except OSError:
        return str(Path(path).absolute())


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (resolved, case as the OS sees it)."""
    return norm_path(a) == norm_path(b)


@evented
@dataclass
class WindowModel:
    """What the window shows and what the user chose (see the module notes).

    Attributes:
        result: The search shown (new or reopened), or ``None`` before a search.
        threshold: Hits at or above this score are shown, in ``[0, 1]``.
        selected_hit: The hit the user picked (boxed in the video), or ``None``.
        video_path: The video shown (normalised path), or ``None``.
        checked_videos: The videos checked in the library (normalised paths, in list order).
        photos: The query photos (paths, in order).
        score_range: ``(low, high)`` scores of the hit colours (red to green), set from the
            result and the threshold when a result with hits arrives.
    """

    result: SearchResult | None = None
    threshold: float = DEFAULT_THRESHOLD
    selected_hit: Hit | None = None
    video_path: str | None = None
    checked_videos: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()
    score_range: tuple[float, float] = DEFAULT_SCORE_RANGE

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "threshold":
            value = min(1.0, max(0.0, float(value)))
        elif name == "video_path":
            value = norm_path(value) if value else None
        elif name == "checked_videos":
            value = tuple(norm_path(p) for p in value)
        elif name == "photos":
            value = tuple(str(p) for p in value)
        if name in ("result", "threshold"):
            object.__setattr__(self, "_by_video", None)  # before the change is announced
        super().__setattr__(name, value)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_video", None)
        # Connected first, so the rules hold before any observer hears of the change.
        self.events.result.connect(self._result_changed)
        self.events.threshold.connect(self._threshold_changed)
        self.events.video_path.connect(self._video_changed)

    @classmethod
    def restore(cls, threshold: float | None) -> WindowModel:
        """A model starting at a saved threshold (``None``: the calibrated default)."""
        return cls(threshold=DEFAULT_THRESHOLD if threshold is None else threshold)

    # ------------------------------------------------------------------ rules
    def _result_changed(self, result: SearchResult | None) -> None:
        self.selected_hit = None
        if result is not None and result.hits:
            scores = [h.score for h in result.hits]
            self.score_range = (min(min(scores), self.threshold), max(max(scores), self.threshold + 0.05))

    def _threshold_changed(self, threshold: float) -> None:
        sel = self.selected_hit
        if sel is not None and sel.score < threshold and sel.mark != "confirmed":  # confirmed: always shown
            self.selected_hit = None

    def _video_changed(self, video_path: str | None) -> None:
        sel = self.selected_hit
        if sel is not None and (video_path is None or not same_path(sel.video_path, video_path)):
            self.selected_hit = None

    # ------------------------------------------------------------------ derived
    @property
    def visible_hits(self) -> tuple[Hit, ...]:
        """Hits at or above the threshold, best first (empty before a search)."""
        return self.result.above(self.threshold) if self.result is not None else ()

    def hits_in(self, video_path: str | Path | None) -> tuple[Hit, ...]:
        """The visible hits of one video, best first."""
        if video_path is None:
            return ()
        by_video: dict[str, tuple[Hit, ...]] | None = getattr(self, "_by_video", None)
        if by_video is None:
            grouped: dict[str, list[Hit]] = {}
            for hit in self.visible_hits:
                grouped.setdefault(norm_path(hit.video_path), []).append(hit)
            by_video = {k: tuple(v) for k, v in grouped.items()}
            object.__setattr__(self, "_by_video", by_video)
        return by_video.get(norm_path(video_path), ())

    @property
    def scope(self) -> list[str]:
        """The videos a search covers: the checked ones, else the current video."""
        if self.checked_videos:
            return list(self.checked_videos)
        return [self.video_path] if self.video_path else []

    @property
    def scope_text(self) -> str:
        """One line saying what a search covers."""
        scope = self.scope
        if not scope:
            return "Open a video to search in."
        if len(scope) == 1:
            return f"Searches in {Path(scope[0]).name}."
        return f"Searches in {len(scope)} checked videos."

    @property
    def can_search(self) -> bool:
        """Whether there is something to search in and someone to search for."""
        return bool(self.scope) and bool(self.photos)

    def threshold_to_save(self) -> float | None:
        """The threshold for the settings: ``None`` (follow the default) when at the default."""
        threshold = round(self.threshold, 2)
        return None if abs(threshold - DEFAULT_THRESHOLD) < 0.005 else threshold
