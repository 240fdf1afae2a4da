"""The player: the open video, the frame shown with the people's boxes, seeking and playback.

:class:`Player` owns the video source (``core.video.VideoSource``) and the transport
widgets (video view, timeline, position slider, time and frame labels, play action).
It observes the window's model (:class:`GUI.window_model.WindowModel`): the hits of the
current video go on the timeline, and the boxes drawn over the frame are coloured by
whether the person is a hit (amber) or the selected hit (green).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel, QSlider, QStyle

from core.errors import ReidSearchError
from core.text import format_time
from core.types import Frame, Hit, TrackedBoxes
from core.video import VideoSource, open_source
from GUI.timeline import Timeline
from GUI.video_view import OverlayBox, VideoView
from GUI.window_model import WindowModel, same_path
from GUI.workers import bgr_to_qimage

BoxesAt = Callable[[int], TrackedBoxes | None]
"""``boxes_at(frame_index)``: the tracked people of the current video at a frame, if indexed."""


def overlay_boxes(boxes: TrackedBoxes | None, hits: tuple[Hit, ...], selected: Hit | None,
                  frame_index: int) -> tuple[OverlayBox, ...]:
    """The boxes to draw over one frame.

    Args:
        boxes: The tracked people at this frame (``None``: not indexed).
        hits: The visible hits of this video.
        selected: The selected hit, if it is in this video.
        frame_index: The frame shown.

    Returns:
        One box per person (``"selected"``, ``"match"`` or ``"person"``), plus the selected
        hit's best box on its best frame when the tracks do not give it.
    """
    by_track = {h.track_id: h for h in hits}
    out: list[OverlayBox] = []
    seen_selected = False
    if boxes is not None:
        for tid, box in zip(boxes.track_ids.tolist(), boxes.boxes.tolist(), strict=False):
            hit = by_track.get(tid)
            if selected is not None and tid == selected.track_id:
                out.append(OverlayBox(tuple(box), f"Match {selected.score:.2f}", "selected", tid,
                                      selected.score))
                seen_selected = True
            elif hit is not None:
                out.append(OverlayBox(tuple(box), f"{hit.score:.2f}", "match", tid, hit.score))
            else:
                out.append(OverlayBox(tuple(box), f"#{tid}", "person", tid))
    if selected is not None and not seen_selected and frame_index == selected.best_frame:
        out.append(OverlayBox(tuple(selected.best_box), f"Match {selected.score:.2f}", "selected",
                              selected.track_id, selected.score))
    return tuple(out)


class Player(QObject):
    """Shows the current video (see the module notes).

    Args:
        model: The window's model (current video, hits, selection).
        view: Paints the frame and the boxes.
        timeline: The hits of this video and the position marker.
        position: The position slider.
        time_label: ``time / duration``.
        frame_label: ``frame i / last``.
        play_action: Play/pause (its icon and text follow the state).
        boxes_at: The tracked people at a frame of the current video.
        parent: Owner.

    Signals:
        frameShown(int): A frame was decoded and shown.
        problem(str): A readable sentence about a video that cannot be opened or read.
    """

    frameShown = Signal(int)
    problem = Signal(str)

    def __init__(self, model: WindowModel, *, view: VideoView, timeline: Timeline, position: QSlider,
                 time_label: QLabel, frame_label: QLabel, play_action: QAction, boxes_at: BoxesAt,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.view = view
        self.timeline = timeline
        self.position = position
        self.time_label = time_label
        self.frame_label = frame_label
        self.play_action = play_action
        self.boxes_at = boxes_at
        self.source: VideoSource | None = None
        self.frame: Frame | None = None
        self.frame_index = 0
        self.boxes: TrackedBoxes | None = None
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        timeline.seekRequested.connect(self.seek)
        position.valueChanged.connect(self._slider_moved)
        model.events.result.connect(self.refresh_hits)
        model.events.threshold.connect(self.refresh_hits)
        model.events.selected_hit.connect(self._selection_changed)

    # ------------------------------------------------------------------ the video
    def open(self, path: str) -> bool:
        """Open ``path`` and make it the model's current video (frame 0 is not shown yet).

        Returns:
            True if the video could be read; otherwise :attr:`problem` says why.
        """
        try:
            source = open_source(path)
        except ReidSearchError as exc:
            self.problem.emit(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - an unreadable file must never crash the app
            self.problem.emit(f"{path}: cannot be opened as a video ({type(exc).__name__}: {exc}).")
            return False
        if source.frame_count <= 0:
            try:  # the header gives no frame count: count by decoding once
                source.frame_count = source.verify()
            except ReidSearchError as exc:
                source.close()
                self.problem.emit(str(exc))
                return False
        self.pause()
        self.close()
        self.source = source
        self.frame = None
        self.frame_index = 0
        self.boxes = None
        self.position.blockSignals(True)
        self.position.setRange(0, max(0, source.frame_count - 1))
        self.position.setPageStep(max(1, int(round(source.fps or 10))))
        self.position.blockSignals(False)
        self.timeline.set_video(source.frame_count, source.fps)
        self.model.video_path = path
        self.refresh_hits()
        return True

    def close(self) -> None:
        """Close the video source."""
        if self.source is not None:
            self.source.close()
            self.source = None

    def show_frame(self, index: int) -> bool:
        """Decode and show frame ``index`` of the current video with its boxes."""
        source = self.source
        if source is None:
            return False
        index = max(0, min(int(index), source.frame_count - 1))
        try:
            frame = source.read(index)
        except ReidSearchError as exc:
            self.pause()
            self.problem.emit(str(exc))
            return False
        self.frame = frame
        self.frame_index = index
        self.boxes = self.boxes_at(index)
        self.view.set_frame(bgr_to_qimage(frame.image), self._overlays())
        self.position.blockSignals(True)
        self.position.setValue(index)
        self.position.blockSignals(False)
        fps = source.fps or 0.0
        duration = source.frame_count / fps if fps else 0.0
        self.time_label.setText(f"{format_time(frame.time_s)} / {format_time(duration)}")
        self.frame_label.setText(f"frame {index} / {source.frame_count - 1}")
        self.timeline.set_position(index)
        self.frameShown.emit(index)
        return True

    # ------------------------------------------------------------------ what is drawn
    def refresh_boxes(self) -> None:
        """Look the people's boxes up again (the library may know them now)."""
        if self.frame is not None:
            self.boxes = self.boxes_at(self.frame_index)
            self.view.set_overlays(self._overlays())

    def refresh_hits(self, *_: object) -> None:
        """Put the current video's visible hits on the timeline and recolour the boxes."""
        hits = self.model.hits_in(self.model.video_path)
        self.timeline.set_hits(hits, self.model.score_range)
        selected = self.model.selected_hit
        self.timeline.set_selected(selected if selected in hits else None)
        if self.frame is not None:
            self.view.set_overlays(self._overlays())

    def _selection_changed(self, hit: Hit | None) -> None:
        self.timeline.set_selected(hit)
        if self.frame is not None:
            self.view.set_overlays(self._overlays())

    def _overlays(self) -> tuple[OverlayBox, ...]:
        video = self.model.video_path
        selected = self.model.selected_hit
        if selected is not None and not same_path(selected.video_path, video or ""):
            selected = None
        return overlay_boxes(self.boxes, self.model.hits_in(video), selected, self.frame_index)

    # ------------------------------------------------------------------ transport
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

    def toggle_play(self) -> None:
        """Play or pause."""
        if self._timer.isActive():
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        """Play from the current frame at the video's frame rate."""
        source = self.source
        if source is None:
            return
        if self.frame_index >= source.frame_count - 1:
            self.show_frame(0)
        fps = source.fps if source.fps and source.fps > 0 else 25.0
        self._timer.start(max(1, int(round(1000.0 / fps))))
        self._show_play_state(QStyle.StandardPixmap.SP_MediaPause, "&Pause")

    def pause(self) -> None:
        """Stop playing."""
        if self._timer.isActive():
            self._timer.stop()
        self._show_play_state(QStyle.StandardPixmap.SP_MediaPlay, "&Play")

    @property
    def playing(self) -> bool:
        """Whether the video is playing."""
        return self._timer.isActive()

    def _show_play_state(self, icon: QStyle.StandardPixmap, text: str) -> None:
        self.play_action.setIcon(QApplication.style().standardIcon(icon))
        self.play_action.setText(text)

    def _tick(self) -> None:
        if self.source is None or self.frame_index >= self.source.frame_count - 1:
            self.pause()
            return
        if not self.show_frame(self.frame_index + 1):
            self.pause()
