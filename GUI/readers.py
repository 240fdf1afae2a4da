"""Reading for the player off the GUI thread: the frames of the open video and the people's boxes.

A player asks for a frame many times a second (playing, dragging the slider) and for the
boxes drawn over it. Decoding a frame after a seek takes tens to hundreds of
milliseconds (up to the previous keyframe is decoded), and a library on a network drive
can take seconds to answer. Neither may happen on the GUI thread, so both are asked of
long-lived jobs (:class:`GUI.workers.Job` on their own thread, run by the window's
:class:`GUI.workers.JobRunner`, so closing the window stops and joins them):

* :class:`FrameReader` owns the open video's ``VideoSource`` (not thread-safe: after
  :meth:`FrameReader.open` only its thread touches it). A request replaces any request
  not yet started, so dragging the slider decodes the latest position, not every
  position passed. Each frame comes back as a :class:`ShownFrame` (the ``QImage`` is
  made on the reader's thread too).
* :class:`BoxReader` reads the boxes of a span of frames at once
  (``core.engine.Engine.boxes_between``, :data:`core.boxes.SPAN_FRAMES` frames) into a
  cache the GUI thread reads without waiting: :meth:`BoxReader.at` answers from the
  cache, or returns ``None`` and asks for the span, and :attr:`BoxReader.spanLoaded`
  says when to look again. Near the end of a span the next one is read ahead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from core.boxes import SPAN_FRAMES, FrameBoxes, span_of
from core.errors import ReidSearchError
from core.types import Frame, TrackedBoxes
from GUI.workers import Job, JobRunner, bgr_to_qimage

if TYPE_CHECKING:
    from core.engine import Engine
    from core.video import VideoSource

log = logging.getLogger(__name__)

FRAMES_JOB = "frame reader"
BOXES_JOB = "box reader"
READER_JOBS = (FRAMES_JOB, BOXES_JOB)
"""Names of the long-lived reader jobs (not "work" the user waits for)."""

CACHED_SPANS = 64
"""Spans of boxes kept (about 10 minutes of 25 fps video)."""

RETRY_S = 2.0
"""A span that could not be read is asked for again after this long."""


class Mailbox:
    """Requests from the GUI thread to one reader thread (thread-safe).

    Args:
        latest_only: A new request replaces those not yet taken (frames); otherwise requests
            queue in order, each once (spans of boxes).
    """

    def __init__(self, latest_only: bool) -> None:
        self._latest_only = latest_only
        self._items: list[Any] = []
        self._ready = threading.Condition()

    def put(self, item: Any) -> None:
        """Ask for ``item``."""
        with self._ready:
            if self._latest_only:
                self._items = [item]
            elif item not in self._items:
                self._items.append(item)
            self._ready.notify()

    def take(self, timeout: float) -> Any | None:
        """The next request, or ``None`` after ``timeout`` seconds without one."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            return self._items.pop(0) if self._items else None


def reader_body(mailbox: Mailbox, handle: Callable[[Any], object],
                cleanup: Callable[[], None] | None = None) -> Callable[[Job], None]:
    """Job body answering the requests of ``mailbox`` with ``handle(request)`` until the job is cancelled.

    Each answer is emitted as the job's ``progress``; ``cleanup`` runs when the job ends.
    """

    def body(job: Job) -> None:
        try:
            while not job.cancel_event.is_set():
                request = mailbox.take(0.05)
                if request is not None:
                    job.progress.emit(handle(request))
        finally:
            if cleanup is not None:
                cleanup()

    return body


# ----------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class ShownFrame:
    """A decoded frame for the player.

    Attributes:
        generation: Which opened video it belongs to (:attr:`FrameReader.generation`).
        frame: The frame (index, time, BGR image).
        image: The same frame as a ``QImage`` that owns its pixels.
    """

    generation: int
    frame: Frame
    image: QImage


@dataclass(frozen=True)
class FrameFailed:
    """A frame that could not be read: its index and the sentence saying why."""

    generation: int
    index: int
    text: str


class FrameReader(QObject):
    """Decodes the open video's frames on its own thread (see the module notes).

    Signals:
        frameRead(object): A :class:`ShownFrame` of the current video.
        failed(int, str): Frame ``index`` cannot be read (readable sentence).
    """

    frameRead = Signal(object)
    failed = Signal(int, str)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.generation = 0
        self._job: Job | None = None
        self._mailbox: Mailbox | None = None
        self._waiting: int | None = None

    def open(self, source: VideoSource) -> None:
        """Read from ``source`` from now on (the reader's thread owns it, and closes it)."""
        self.close()
        self.generation += 1
        generation, mailbox = self.generation, Mailbox(latest_only=True)

        def read(index: int) -> ShownFrame | FrameFailed:
            try:
                frame = source.read(index)
                return ShownFrame(generation, frame, bgr_to_qimage(frame.image))
            except ReidSearchError as exc:
                return FrameFailed(generation, index, str(exc))
            except Exception as exc:  # noqa: BLE001 - the reader must outlive one bad frame
                return FrameFailed(generation, index, f"Frame {index} of {source.path} cannot be read "
                                                      f"({type(exc).__name__}: {exc}).")

        job = Job(FRAMES_JOB, reader_body(mailbox, read, source.close))
        job.progress.connect(self._answered)
        self._job, self._mailbox = job, mailbox
        self.runner.start(job)

    def request(self, index: int) -> None:
        """Ask for frame ``index`` (replaces a request not yet started)."""
        if self._mailbox is not None:
            self._waiting = int(index)
            self._mailbox.put(int(index))

    @property
    def waiting(self) -> bool:
        """Whether a requested frame has not arrived yet."""
        return self._waiting is not None

    def close(self) -> None:
        """Stop reading (the source is closed on the reader's thread)."""
        if self._job is not None:
            self._job.cancel()
        self._job = self._mailbox = None
        self._waiting = None

    @Slot(object)
    def _answered(self, item: ShownFrame | FrameFailed) -> None:
        if item.generation != self.generation:
            return  # a frame of a video closed since
        index = item.frame.index if isinstance(item, ShownFrame) else item.index
        if self._waiting == index:
            self._waiting = None
        if isinstance(item, ShownFrame):
            self.frameRead.emit(item)
        else:
            self.failed.emit(item.index, item.text)


# ----------------------------------------------------------------------------- boxes


@dataclass(frozen=True)
class _SpanRead:
    generation: int
    key: tuple[int, int]
    boxes: FrameBoxes | None
    text: str = ""


class BoxReader(QObject):
    """The people's boxes, read a span at a time on its own thread and cached (see the module notes).

    Args:
        runner: Starts the reader job.
        engine: Returns the engine in use (``None`` while none is loaded).

    Signals:
        spanLoaded(int): Boxes of video ``id`` arrived; ask :meth:`at` again.
    """

    spanLoaded = Signal(int)

    def __init__(self, runner: JobRunner, engine: Callable[[], Engine | None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._engine = engine
        self._cache: OrderedDict[tuple[int, int], FrameBoxes] = OrderedDict()
        self._asked: set[tuple[int, int]] = set()
        self._failed: dict[tuple[int, int], float] = {}
        self._job: Job | None = None
        self._mailbox = Mailbox(latest_only=False)
        self._generation = 0
        self.reads = 0

    def at(self, video_id: int, frame: int) -> TrackedBoxes | None:
        """The boxes of a frame if their span is read (else ``None``, and the span is asked for)."""
        first, last = span_of(frame)
        boxes = self._cache.get((video_id, first))
        if boxes is None:
            self._ask(video_id, first)
            return None
        self._cache.move_to_end((video_id, first))
        if frame - first >= SPAN_FRAMES * 3 // 4:  # read the next span ahead of a playing video
            self._ask(video_id, last + 1)
        return boxes.at(frame)

    def clear(self) -> None:
        """Forget every span read (the library changed: a video was indexed, the engine replaced)."""
        self._generation += 1
        self._cache.clear()
        self._asked.clear()
        self._failed.clear()

    def close(self) -> None:
        """Stop the reader job."""
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def _ask(self, video_id: int, first: int) -> None:
        key = (video_id, first)
        engine = self._engine()
        if engine is None or key in self._asked or key in self._cache:
            return
        if time.monotonic() - self._failed.get(key, -RETRY_S) < RETRY_S:
            return
        if self._job is None or self._job.done:
            self._start()
        self._asked.add(key)
        self._mailbox.put((self._generation, engine, key))

    def _start(self) -> None:
        def read(request: tuple[int, Engine, tuple[int, int]]) -> _SpanRead:
            generation, engine, (video_id, first) = request
            try:
                boxes = engine.boxes_between(video_id, first, first + SPAN_FRAMES - 1)
            except ReidSearchError as exc:
                return _SpanRead(generation, (video_id, first), None, str(exc))
            return _SpanRead(generation, (video_id, first), boxes)

        self._mailbox = Mailbox(latest_only=False)
        self._asked.clear()
        job = Job(BOXES_JOB, reader_body(self._mailbox, read))
        job.progress.connect(self._answered)
        job.error.connect(self._stopped)
        self._job = job
        self.runner.start(job)

    @Slot(str)
    def _stopped(self, text: str) -> None:
        log.warning("box reader stopped: %s", text)  # the next request starts a new one

    @Slot(object)
    def _answered(self, item: _SpanRead) -> None:
        if item.generation != self._generation:
            return  # asked before a clear(): may be stale
        self._asked.discard(item.key)
        if item.boxes is None:
            self._failed[item.key] = time.monotonic()
            log.warning("boxes: %s", item.text)
            return
        self._cache[item.key] = item.boxes
        self.reads += 1
        while len(self._cache) > CACHED_SPANS:
            self._cache.popitem(last=False)
        self.spanLoaded.emit(item.key[0])
