"""The player: the open video, the frame shown with the people's boxes, seeking and playback.

:class:`Player` drives the transport widgets (video view, timeline, position slider, time
and frame labels, play action). It never decodes a frame or reads the library on the GUI
thread: frames come from a :class:`GUI.readers.FrameReader` (which owns the video source)
and the boxes from a ``boxes_at`` that answers from a cache filled off the GUI thread
(:class:`GUI.readers.BoxReader`). So a seek moves the position, the labels and the
timeline at once, and the picture follows when it is decoded; :attr:`Player.frameShown`
says when. Playing follows the clock: a frame that is late is skipped, not waited for.

It observes the window's model (:class:`GUI.window_model.WindowModel`): the hits of the
current video go on the timeline, and the boxes drawn over the frame are coloured as the
hits list and the timeline colour them (by score), the selected hit's box in bright green.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel, QSlider, QStyle

from core.errors import ReidSearchError
from core.photo_source import PhotoSource
from core.text import format_time
from core.types import Frame, Hit, TrackedBoxes
from core.video import open_source
from GUI.readers import FrameReader, ShownFrame
from GUI.timeline import Timeline, score_color
from GUI.video_view import OverlayBox, VideoView
from GUI.window_model import DEFAULT_SCORE_RANGE, WindowModel, same_path

BoxesAt = Callable[[int], TrackedBoxes | None]
"""``boxes_at(frame_index)``: the tracked people of the current video at a frame, if indexed and
already read (never waits: ``None`` while they are read, then :meth:`Player.refresh_boxes`)."""


def widest(text: str) -> str:
    """``text`` with every digit made an ``8`` (the widest digit): a label of that width never grows."""
    return re.sub(r"\d", "8", text)


def overlay_boxes(boxes: TrackedBoxes | None, hits: tuple[Hit, ...], selected: Hit | None,
                  frame_index: int, score_range: tuple[float, float] = DEFAULT_SCORE_RANGE,
                  ) -> tuple[OverlayBox, ...]:
    """The boxes to draw over one frame.

    Args:
        boxes: The tracked people at this frame (``None``: not indexed, or not read yet).
        hits: The visible hits of this video.
        selected: The selected hit, if it is in this video.
        frame_index: The frame shown.
        score_range: ``(low, high)`` of the score colours (the hits list's and the timeline's).

    Returns:
        One box per person (``"selected"``, ``"match"`` coloured by score, or ``"person"``),
        plus the selected hit's best box on its best frame when the tracks do not give it.
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
                c = score_color(hit.score, *score_range)
                out.append(OverlayBox(tuple(box), f"{hit.score:.2f}", "match", tid, hit.score,
                                      (c.red(), c.green(), c.blue())))
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
        reader: Decodes frames off the GUI thread.
        view: Paints the frame and the boxes.
        timeline: The hits of this video and the position marker.
        position: The position slider.
        time_label: ``time / duration``.
        frame_label: ``frame i / last``.
        play_action: Play/pause (its icon and text follow the state).
        boxes_at: The tracked people at a frame of the current video (never waits).
        parent: Owner.

    Attributes:
        frame_index: The position: the frame asked for last (shown once decoded).
        frame: The frame on screen (``None`` before the first arrives).
        shown_index: Its index (-1 before the first).
        path: The open video (``None`` when none is).
        frame_count: Its frames.
        fps: Its frame rate.

    Signals:
        frameShown(int): A frame was decoded and is on screen.
        problem(str): A readable sentence about a video that cannot be opened or read.
    """

    frameShown = Signal(int)
    problem = Signal(str)

    def __init__(self, model: WindowModel, *, reader: FrameReader, view: VideoView, timeline: Timeline,
                 position: QSlider, time_label: QLabel, frame_label: QLabel, play_action: QAction,
                 boxes_at: BoxesAt, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.reader = reader
        self.view = view
        self.timeline = timeline
        self.position = position
        self.time_label = time_label
        self.frame_label = frame_label
        self.play_action = play_action
        self.boxes_at = boxes_at
        self.path: str | None = None
        self.photos = False
        """The open source is a photo collection."""
        self.timed = True
        """Its frames have times (a video, or photos with EXIF times): the timeline is shown."""
        self.frame_count = 0
        self.fps = 0.0
        self.frame: Frame | None = None
        self.frame_index = 0
        self.shown_index = -1
        self.boxes: TrackedBoxes | None = None
        self._play_from = (0, 0.0)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        reader.frameRead.connect(self._frame_read)
        reader.failed.connect(self._read_failed)
        timeline.seekRequested.connect(self.seek)
        position.valueChanged.connect(self._slider_moved)
        model.events.result.connect(self.refresh_hits)
        model.events.threshold.connect(self.refresh_hits)
        model.events.selected_hit.connect(self._selection_changed)

    # ------------------------------------------------------------------ the video
    def open(self, path: str, *, photos: bool = False) -> bool:
        """Open ``path`` and make it the model's current video (frame 0 is not asked for yet).

        ``photos``: a photo collection, shown photo by photo upright; the timeline is shown only
        when its photos have EXIF times.

        Returns:
            True if the video could be read; otherwise :attr:`problem` says why.
        """
        try:
            source = open_source(path, photos=photos)
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
        self.path = path
        self.frame_count = source.frame_count
        self.fps = source.fps if source.fps and source.fps > 0 else 25.0
        self.reader.open(source)  # the reader's thread owns the source from now on
        self.frame = None
        self.frame_index = 0
        self.shown_index = -1
        self.boxes = None
        self.position.blockSignals(True)
        self.position.setRange(0, max(0, self.frame_count - 1))
        self.position.setPageStep(max(1, int(round(self.fps))))
        self.position.blockSignals(False)
        self._size_labels()
        self.timeline.set_video(self.frame_count, self.fps)
        self.photos = isinstance(source, PhotoSource)
        self.timed = not self.photos or source.time_source == "exif"
        self.timeline.setVisible(self.timed)
        self.model.video_path = path
        self.refresh_hits()
        return True

    def close(self) -> None:
        """Stop reading the video."""
        self.pause()
        self.reader.close()
        self.path = None

    @property
    def duration_s(self) -> float:
        """Length of the open video in seconds."""
        return self.frame_count / self.fps if self.fps else 0.0

    def _size_labels(self) -> None:
        """Fix the labels' widths to their widest text for this video, so the slider keeps its width."""
        last = max(self.frame_count - 1, 0)
        duration = format_time(self.duration_s)
        for label, text in ((self.time_label, f"{duration} / {duration}"),
                            (self.frame_label, f"frame {last} / {last}")):
            label.setFixedWidth(label.fontMetrics().horizontalAdvance(widest(text)) + 10)

    def show_frame(self, index: int) -> bool:
        """Go to frame ``index`` of the current video: the position moves now, the picture when decoded."""
        if self.path is None:
            return False
        index = max(0, min(int(index), self.frame_count - 1))
        self.frame_index = index
        self.position.blockSignals(True)
        self.position.setValue(index)
        self.position.blockSignals(False)
        self._show_time(index / self.fps if self.fps else 0.0)
        self.frame_label.setText(f"{'photo' if self.photos else 'frame'} {index} / {self.frame_count - 1}")
        self.timeline.set_position(index)
        self.reader.request(index)
        return True

    def _show_time(self, time_s: float) -> None:
        if not self.timed:
            self.time_label.setText("")  # photos without EXIF times: their rank is all there is
            return
        self.time_label.setText(f"{format_time(time_s)} / {format_time(self.duration_s)}")

    @Slot(object)
    def _frame_read(self, shown: ShownFrame) -> None:
        frame = shown.frame
        self.frame = frame
        self.shown_index = frame.index
        self.boxes = self.boxes_at(frame.index)
        self.view.set_frame(shown.image, self._overlays())
        if frame.index == self.frame_index:
            self._show_time(frame.time_s)  # the container's own time of the frame
        self.frameShown.emit(frame.index)
        if self.playing and frame.index >= self.frame_count - 1:
            self.pause()

    @Slot(int, str)
    def _read_failed(self, index: int, text: str) -> None:
        self.pause()
        self.problem.emit(text)

    # ------------------------------------------------------------------ what is drawn
    def refresh_boxes(self, *_: object) -> None:
        """Look the people's boxes up again (they were read, or the library knows them now)."""
        if self.frame is not None:
            self.boxes = self.boxes_at(self.shown_index)
            self.view.set_overlays(self._overlays())

    def refresh_hits(self, *_: object) -> None:
        """Put the current video's visible hits on the timeline and recolour the boxes."""
        hits = self.model.hits_in(self.model.video_path)
        self.timeline.set_hits(hits, self.model.score_range)
        selected = self.model.selected_hit
        self.timeline.set_selected(selected if selected in hits else None)
        if self.model.result is None:
            self.timeline.set_empty_text("No search yet")
        else:
            self.timeline.set_empty_text(f"No hits in this video at or above {self.model.threshold:.2f}")
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
        return overlay_boxes(self.boxes, self.model.hits_in(video), selected, self.shown_index,
                             self.model.score_range)

    # ------------------------------------------------------------------ transport
    def seek(self, index: int) -> None:
        """Go to frame ``index`` (pauses playback)."""
        self.pause()
        self.show_frame(index)

    def step(self, delta: int) -> None:
        """Move ``delta`` frames (pauses playback)."""
        if self.path is not None:
            self.seek(self.frame_index + delta)

    def _slider_moved(self, value: int) -> None:
        if self.path is not None and value != self.frame_index:
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
        if self.path is None:
            return
        if self.frame_index >= self.frame_count - 1:
            self.show_frame(0)
        self._play_from = (self.frame_index, time.monotonic())
        self._timer.start(max(1, int(round(1000.0 / self.fps))))
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
        last = self.frame_count - 1
        if self.path is None or (self.frame_index >= last and not self.reader.waiting):
            self.pause()
            return
        if self.reader.waiting:
            return  # the frame asked for is still being decoded: skip this tick, keep to the clock
        start, t0 = self._play_from
        due = start + int((time.monotonic() - t0) * self.fps)
        self.show_frame(min(max(due, self.frame_index + 1), last))
