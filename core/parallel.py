"""Index several videos at once: worker processes, each with its own models, one video at a time.

:func:`index_videos` is what ``core.engine.Engine.index_many`` runs. With one worker it
indexes the videos one after the other in this process; with more it starts that many
worker processes (``multiprocessing``, *spawn* context: nothing of this process's
threads, sessions or database connections is inherited). Each worker loads the models
once (:class:`WorkerSpec`, ONNX Runtime with ``threads`` threads), then takes the next
video not yet taken and indexes it with :func:`core.pipeline.index_video` into the same
library, until none is left. The events of every video (:class:`~core.types.IndexStarted`,
its :class:`~core.types.IndexProgress` items, its :class:`~core.types.IndexOutcome`) come
back over a queue and are yielded in the order they arrive; each carries its video's path.

Nothing about storing changes: a worker writes only its own video's run, through its own
:class:`~core.store.Store` (SQLite in WAL mode serialises the checkpoints' short
transactions), under that run's operating-system lock (``core.pipeline``). So every run
has a single writer, and resuming is per video: a cancelled, failed or killed batch
resumes every video where its last checkpoint left it, whether the next call runs one
worker or several.

Cancel: setting ``cancel`` stops every worker after its current frame (each checkpoints its
video as cancelled) and no further video is started. A worker whose parent process has
died (the program was killed) stops the same way at its next frame, so no orphan keeps
writing.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ReidSearchError
from core.index_settings import IndexSettings
from core.types import IndexEvent, IndexOutcome, IndexProgress, IndexStarted

THREADS_PER_WORKER = 2
"""ONNX Runtime threads each worker gets when the number of workers is chosen automatically."""

_POLL_S = 0.1


def default_workers(videos: int, cores: int | None = None) -> int:
    """Workers for ``videos`` videos: ``cores // THREADS_PER_WORKER`` (at least 1, at most one per video).

    On 2 cores that is 1 worker with both cores (measured faster than 2 workers of one core
    each: see the README's Performance section).
    """
    cores = cores or os.cpu_count() or 1
    return max(1, min(int(videos), cores // THREADS_PER_WORKER))


def video_events(path: str, number: int, count: int, index: Callable[[], Iterator[IndexProgress]],
                 ) -> Iterator[IndexEvent]:
    """One video's events: started, its progress items, then how it ended (a failure does not raise).

    Args:
        path: The video as given.
        number: Its position in the batch, from 1.
        count: Videos in the batch.
        index: Starts indexing it (``core.pipeline.index_video`` with the models bound).
    """
    yield IndexStarted(path, number, count)
    t0 = time.perf_counter()
    last: IndexProgress | None = None
    try:
        for last in index():
            yield last
    except ReidSearchError as err:
        yield IndexOutcome(path, "failed", last, time.perf_counter() - t0, str(err))
        return
    elapsed = time.perf_counter() - t0
    if last is not None and last.skipped:
        yield IndexOutcome(path, "skipped", last, elapsed)
    elif last is not None and last.done:
        yield IndexOutcome(path, "done", last, elapsed, last.warning)
    else:
        yield IndexOutcome(path, "cancelled", last, elapsed)


def index_sequential(videos: Sequence[str], index: Callable[[str], Iterator[IndexProgress]],
                     cancel: threading.Event | None) -> Iterator[IndexEvent]:
    """The videos one after the other in this process (after a cancel no further video starts)."""
    for number, path in enumerate(videos, 1):
        if cancel is not None and cancel.is_set():
            yield IndexOutcome(path, "cancelled", None, 0.0)
            return
        for event in video_events(path, number, len(videos), functools.partial(index, path)):
            yield event
            if isinstance(event, IndexOutcome) and event.status == "cancelled":
                return


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to build its own models and library (picklable).

    Attributes:
        db_path: The library database.
        detector: Detector ONNX file (the precision already chosen).
        person_classes: The detector's person classes.
        reid: ReID ONNX file.
        reid_preprocess: The ReID model's manifest preprocessing, for a model without metadata.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        tracker: Tracker registry name.
        tracker_kwargs: Its settings.
        settings: The indexing settings.
        threads: ONNX Runtime threads per model in the worker.
        images: How folders of images are read (``core.photo_index.media_kind``).
        image_kinds: ``{resolved folder: kind}`` read otherwise (``core.engine.Engine.read_as``).
        detect_size: Longest side of the detector's input (``None``: the model's own).
    """

    db_path: str
    detector: str
    person_classes: tuple[str, ...]
    reid: str
    reid_preprocess: dict[str, Any] | None
    device: str
    tracker: str
    tracker_kwargs: dict[str, Any] = field(default_factory=dict)
    settings: IndexSettings = field(default_factory=IndexSettings)
    threads: int = 1
    images: str = "auto"
    image_kinds: dict[str, str] = field(default_factory=dict)
    detect_size: int | None = None


class _Stop:
    """A worker's cancel: the shared event is set, or the process that started it has died."""

    def __init__(self, event: Any, parent: int) -> None:
        self.event, self.parent = event, parent

    def is_set(self) -> bool:
        if self.event.is_set():
            return True
        if os.getppid() != self.parent:
            self.event.set()
            return True
        return False


def _worker(spec: WorkerSpec, videos: Sequence[str], taken: Any, events: Any, stop_event: Any,
            parent: int) -> None:
    """Body of a worker process (see the module notes); ends with ``("exit", None)`` on ``events``."""
    from core.detection import YoloOnnxDetector
    from core.photo_index import index_media
    from core.reid import OnnxEmbedder
    from core.store import Store
    from core.tracking import make_tracker

    stop = _Stop(stop_event, parent)
    store = None
    try:
        detector = YoloOnnxDetector(spec.detector, person_classes=spec.person_classes, device=spec.device,
                                    threads=spec.threads, imgsz=spec.detect_size)
        embedder = OnnxEmbedder(spec.reid, preprocess=spec.reid_preprocess, device=spec.device,
                                threads=spec.threads)
        store = Store(spec.db_path)
        tracker_factory = functools.partial(make_tracker, spec.tracker, **spec.tracker_kwargs)

        def index(path: str) -> Iterator[IndexProgress]:
            return index_media(path, store=store, detector=detector, embedder=embedder,
                               tracker_factory=tracker_factory, settings=spec.settings,
                               images=spec.image_kinds.get(str(Path(path).resolve()), spec.images),
                               cancel=stop)

        while not stop.is_set():
            with taken.get_lock():
                number = taken.value
                taken.value += 1
            if number >= len(videos):
                break
            path = videos[number]
            for event in video_events(path, number + 1, len(videos), functools.partial(index, path)):
                events.put(event)
    except ReidSearchError as err:
        events.put(("error", str(err)))
    except BaseException:  # noqa: BLE001 - a bug: its traceback goes to the parent, which raises
        events.put(("crash", traceback.format_exc()))
    finally:
        if store is not None:
            store.close()
        events.put(("exit", None))


def index_parallel(spec: WorkerSpec, videos: Sequence[str], workers: int,
                   cancel: threading.Event | None) -> Iterator[IndexEvent]:
    """Index ``videos`` with ``workers`` processes (see the module notes).

    Raises:
        ReidSearchError: A worker could not load the models or open the library (the same
            sentence the engine would have raised in this process).
        RuntimeError: A worker crashed (a bug); its traceback is in the message.
    """
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    stop = ctx.Event()
    taken = ctx.Value("i", 0)
    procs = [ctx.Process(target=_worker, args=(spec, list(videos), taken, events, stop, os.getpid()),
                         name=f"reid-index-{i + 1}", daemon=True) for i in range(workers)]
    for proc in procs:
        proc.start()
    running = len(procs)
    try:
        while running:
            if cancel is not None and cancel.is_set():
                stop.set()
            try:
                event = events.get(timeout=_POLL_S)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and events.empty():
                    break  # killed without saying goodbye (out of memory): their checkpoints stay
                continue
            if isinstance(event, tuple):
                kind, text = event
                if kind == "exit":
                    running -= 1
                elif kind == "error":
                    stop.set()
                    raise ReidSearchError(text)
                else:
                    stop.set()
                    raise RuntimeError(f"an indexing worker crashed:\n{text}")
                continue
            yield event
    finally:
        stop.set()
        deadline = time.monotonic() + 60
        for proc in procs:
            while proc.is_alive() and time.monotonic() < deadline:
                _drain(events)
                proc.join(_POLL_S)
            if proc.is_alive():
                proc.terminate()
        _drain(events)
        events.close()


def _drain(events: Any) -> None:
    try:
        while True:
            events.get_nowait()
    except (queue.Empty, OSError, ValueError):
        pass


def index_videos(videos: Sequence[str], *, workers: int, spec: Callable[[int], WorkerSpec],
                 index: Callable[[str], Iterator[IndexProgress]],
                 cancel: threading.Event | None) -> Iterator[IndexEvent]:
    """Index ``videos`` with ``workers`` processes, or in this process when one is enough.

    Args:
        videos: The videos, as given.
        workers: Processes to use (1: this process, with ``index``).
        spec: Makes the worker spec for a given number of ONNX Runtime threads per worker.
        index: Indexes one video in this process (the engine's loaded models).
        cancel: Stops everything after the current frame.
    """
    workers = max(1, min(int(workers), len(videos)))
    if workers == 1:
        yield from index_sequential(videos, index, cancel)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    yield from index_parallel(spec(threads), videos, workers, cancel)
