"""Decode ahead: a thread that decodes and prepares frames while ONNX Runtime runs the detector.

:class:`Prefetcher` consumes a frame iterator (``VideoSource.iter_frames``, which skips the
frames between two processed ones with ``grab()`` alone, never converting them to BGR) in
a daemon thread and hands :class:`Prepared` items over a bounded queue: the frame, its
letterboxed detector input when the detector can prepare one (``prepare(image)``), and its
small grey copy for the motion gate. OpenCV's decoding, resizing and ONNX Runtime all
release the GIL, so decoding overlaps inference. At most ``depth`` frames wait in the
queue, so memory stays bounded and a cancel takes effect within a frame of the consumer.

Order and content are exactly those of the iterator, so results do not depend on the
thread: an error in the thread (a damaged file) is raised in the consumer at the point
where that frame would have come.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.types import Frame

_END = object()


@dataclass(frozen=True)
class Prepared:
    """One processed frame, ready for the detector and the motion gate.

    Attributes:
        frame: The decoded frame.
        net_input: The detector's prepared input (``prepare(image)``'s result), or ``None``.
        small: ``(h, w)`` uint8 grey copy for the motion gate, or ``None`` when the gate is off.
    """

    frame: Frame
    net_input: Any = field(default=None, repr=False)
    small: np.ndarray | None = field(default=None, repr=False)


class Prefetcher:
    """Iterate :class:`Prepared` frames made by a background thread (see the module notes).

    Args:
        frames: The frames to prepare, in order.
        prepare: Turns a frame into a :class:`Prepared` (runs in the thread).
        depth: Most prepared frames waiting (>= 1).
    """

    def __init__(self, frames: Iterator[Frame], prepare: Callable[[Frame], Prepared], depth: int = 8) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(frames, prepare), name="decode", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, frames: Iterator[Frame], prepare: Callable[[Frame], Prepared]) -> None:
        try:
            for frame in frames:
                if self._stop.is_set() or not self._put(prepare(frame)):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(exc)
        else:
            self._put(_END)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # release the decoder in the thread that used it

    def __iter__(self) -> Iterator[Prepared]:
        return self

    def __next__(self) -> Prepared:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def close(self) -> None:
        """Stop the thread (it finishes the frame at hand) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._done = True

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Inline:
    """:class:`Prefetcher`'s interface without the thread (``prefetch=0``)."""

    def __init__(self, frames: Iterator[Frame], prepare: Callable[[Frame], Prepared]) -> None:
        self._items = (prepare(f) for f in frames)
        self._frames = frames

    def __iter__(self) -> Iterator[Prepared]:
        return self._items

    def __next__(self) -> Prepared:
        return next(self._items)

    def close(self) -> None:
        """Stop: close the frame iterator (its decoder)."""
        self._frames.close()
