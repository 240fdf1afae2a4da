"""Indexing a photo collection: every person in every photo, detected and embedded on their own.

:func:`index_photos` is the photo counterpart of :func:`core.pipeline.index_video` (a generator
of :class:`core.types.IndexProgress`, one run per collection and settings key, resumable,
cancellable), and :func:`index_media` chooses between the two for whatever the user named.

Flow. Photos are decoded upright and shrunk (:func:`core.photos.load_photo`) and letterboxed
for the detector by a background thread (:class:`core.prefetch.Prefetcher`, at most
``prefetch`` photos ahead, so memory stays bounded whatever the photos' size), detected
``det_batch`` at a time; every detected person's crop (no larger than the embedder's input)
is embedded, ``embed_batch`` crops per call. No tracker, no stride, no motion gate, nothing
skipped: each detection is stored as a *track of one sighting* (its photo's rank as
``frame``, the photo's ``time_s``, its box in the upright photo's pixels, the detector's
score) with its one embedding, so the store, FAISS, search and hits work unchanged. Track ids
are 1, 2, 3 ... in photo order. Linking does not join them (``core.linking``: a photo run's
people are its detections), so a hit is one person in one photo.

The collection's record (``videos.kind == "photos"``, fps 1) keeps each photo's file, time and
size (:meth:`core.store.Store.save_photos`); the run's settings say ``kind: "photos"``.

Resume: photos are independent, so no tracker state is kept. A checkpoint (every
``commit_every`` photos, on cancel, at the end) writes the detections of the photos done since
the last one and ``frames_done`` = photos done; a resumed run starts at the next photo (same
photos in the same batches: the result equals an uninterrupted run). Cancel is checked between
photos; an unfinished batch is dropped and read again on resume.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from core.crops import copy_crop, crop_quality
from core.errors import ReidSearchError
from core.index_settings import IndexSettings, photo_run_settings
from core.media import IMAGE_EXTENSIONS
from core.photos import IMAGE_KINDS, PHOTO_MAX_SIDE, PhotoCollection, classify_folder, load_photo
from core.pipeline import index_video
from core.prefetch import Inline, Prefetcher, Prepared
from core.run_lock import open_run, record_failure, take_run_lock
from core.store import NewTrack, PhotoRecord, RunRecord, Store
from core.types import Detector, Embedder, Frame, IndexProgress, Tracker

__all__ = ["index_media", "index_photos", "media_kind"]

_STAGES = ("decode", "detect", "embed", "write")


def media_kind(path: str | Path, images: str = "auto") -> tuple[str, str | None]:
    """How ``path`` is indexed: ``("video" | "sequence" | "photos", sentence for the user or None)``.

    A video file is a video; a folder of images or an image file is a sequence or photos as
    ``images`` says (:data:`core.photos.IMAGE_KINDS`; ``"auto"``: :func:`core.photos.classify_folder`).
    An image file is always photos.

    Raises:
        ValueError: ``images`` is not one of :data:`core.photos.IMAGE_KINDS`.
        VideoError: The folder holds no image.
    """
    if images not in IMAGE_KINDS:
        raise ValueError(f"images must be one of {', '.join(IMAGE_KINDS)}, got {images!r}")
    path = Path(path)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return "photos", None
    if not path.is_dir():
        return "video", None
    if images != "auto":
        word = "a photo collection" if images == "photos" else "a sequence of video frames"
        return images, f"{path}: read as {word} (--images {images})."
    found = classify_folder(path)
    return found.kind, found.sentence(path)


def index_media(path: str | Path, *, store: Store, detector: Detector, embedder: Embedder,
                tracker_factory: Callable[[], Tracker], settings: IndexSettings | None = None,
                images: str = "auto", cancel: threading.Event | None = None) -> Iterator[IndexProgress]:
    """Index a video, an image sequence or a photo collection (:func:`media_kind`), resuming a run.

    The first progress item's ``note`` says how a folder was read. Arguments as for
    :func:`core.pipeline.index_video`, plus ``images`` (:data:`core.photos.IMAGE_KINDS`).
    """
    kind, sentence = media_kind(path, images)
    if kind == "photos":
        items = index_photos(path, store=store, detector=detector, embedder=embedder, settings=settings,
                             cancel=cancel)
    else:
        items = index_video(path, store=store, detector=detector, embedder=embedder,
                            tracker_factory=tracker_factory, settings=settings, cancel=cancel)
    first = True
    for item in items:
        if first and sentence:
            note = sentence if item.note is None else f"{sentence} {item.note}"
            item = dataclasses.replace(item, note=note)
        first = False
        yield item


def index_photos(path: str | Path, *, store: Store, detector: Detector, embedder: Embedder,
                 settings: IndexSettings | None = None,
                 cancel: threading.Event | None = None) -> Iterator[IndexProgress]:
    """Index a photo collection (a folder, sub-folders included, or one image) into the store.

    Yields:
        Progress after every batch of photos (``frames_*`` count photos, ``fps`` is photos per
        second); the last item has ``done=True``, or ``skipped=True`` (single item) when the
        collection was already indexed with these models and settings.

    Raises:
        VideoError: Nothing readable there (nothing is written then).
        BusyError: The same run is being indexed elsewhere right now.
        ReidSearchError: Other errors (the run is marked failed; the next call resumes).
    """
    settings = settings or IndexSettings()
    photos = PhotoCollection.open(path)
    first = photos.photos[0]
    video = store.upsert_video(photos.root, photos.fingerprint(), fps=1.0, frame_count=len(photos),
                               width=first.width, height=first.height, kind="photos")
    store.save_photos(video.id, [PhotoRecord(frame=p.index, path=p.rel, taken=p.taken.isoformat()
                                             if p.taken else None, time_s=p.time_s, width=p.width,
                                             height=p.height) for p in photos.photos])
    recorded, key = photo_run_settings(detector, embedder, settings, max_side=PHOTO_MAX_SIDE)
    lock = take_run_lock(store, video.id, key, str(photos.root))
    try:
        run = store.find_run(video.id, key)
        if run is not None and run.status == "done":
            yield IndexProgress(video_path=str(photos.root), frames_done=run.frames_done,
                                frames_total=run.frames_total, fps=0.0, eta_s=0.0, tracks=run.tracks_done,
                                done=True, skipped=True, photos=True)
            return
        run = open_run(store, video.id, key, recorded, detector, embedder, len(photos))
        stored = run.settings  # a resumed run keeps its batches and checkpoint spacing
        exec_settings = dataclasses.replace(settings, **{f: stored[f] for f in ("det_batch", "commit_every")
                                                         if f in stored})
        yield from _PhotoIndexer(photos, store, run, detector, embedder, exec_settings).loop(cancel)
    finally:
        lock.release()


class _PhotoIndexer:
    """One pass over a collection for one run."""

    def __init__(self, photos: PhotoCollection, store: Store, run: RunRecord, detector: Detector,
                 embedder: Embedder, settings: IndexSettings) -> None:
        self.photos, self.store, self.run = photos, store, run
        self.detector, self.embedder, self.settings = detector, embedder, settings
        size = getattr(embedder, "input_size", None)
        self.input_size = (int(size[0]), int(size[1])) if size is not None else None
        self._prepare_image = getattr(detector, "prepare", None)
        self._detect_prepared = getattr(detector, "detect_prepared", None)
        self.start = self.done = int(run.frames_done)
        self.next_id = int(run.tracks_done) + 1
        self.pending: list[NewTrack] = []
        self.spent = dict.fromkeys(_STAGES, 0.0)
        self.t0 = time.perf_counter()
        self.skipped_photos: list[str] = list(photos.unreadable)
        self._scales: dict[int, float] = {}

    def _frames(self) -> Iterator[Frame]:
        """Runs in the decoding thread: each photo upright and shrunk (a photo that fails is left out)."""
        for photo in self.photos.photos[self.start:]:
            try:
                image, scale = load_photo(photo)
            except ReidSearchError as err:
                self.skipped_photos.append(str(err))
                image, scale = np.zeros((0, 0, 3), np.uint8), 1.0
            self._scales[photo.index] = scale  # read by the consumer after the queue hands the frame over
            yield Frame(index=photo.index, time_s=photo.time_s, image=image)

    def _prepare(self, frame: Frame) -> Prepared:
        ok = frame.image.size > 0
        net = self._prepare_image(frame.image) if ok and self._prepare_image is not None else None
        return Prepared(frame, net)

    def _add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.spent[stage] += now - since
        return now

    def _process(self, batch: list[Prepared]) -> None:
        t = time.perf_counter()
        shown = [item for item in batch if item.frame.image.size > 0]
        images = [item.frame.image for item in shown]
        if not shown:
            found = []
        elif self._detect_prepared is not None and all(item.net_input is not None for item in shown):
            found = self._detect_prepared(images, [item.net_input for item in shown])
        else:
            found = self.detector.detect(images)
        t = self._add("detect", t)
        crops, made = [], []
        for item, dets in zip(shown, found, strict=True):
            photo = self.photos.photos[item.frame.index]
            image, scale = item.frame.image, self._scales.pop(item.frame.index)
            hh, ww = image.shape[:2]
            for i in range(len(dets)):
                box = np.clip(dets.boxes[i], [0, 0, 0, 0], [ww, hh, ww, hh])
                if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                    continue  # outside the photo
                others = np.delete(dets.boxes, i, axis=0)
                # quality as the pipeline measures it, on the photo's own pixels
                quality = crop_quality(box / scale, float(dets.scores[i]), others / scale, photo.width,
                                       photo.height, self.settings)
                crops.append(copy_crop(image, box, self.input_size))
                made.append((photo, box / scale, float(dets.scores[i]), max(quality, 1e-3)))
        step = self.settings.embed_batch
        vectors = [self.embedder.embed_crops(crops[i:i + step]) for i in range(0, len(crops), step)]
        self._add("embed", t)
        for (photo, box, score, quality), vec in zip(made, np.concatenate(vectors) if vectors else [],
                                                     strict=True):
            self.pending.append(NewTrack(track_id=self.next_id, frames=[photo.index], times_s=[photo.time_s],
                                         boxes=[box], scores=[score], emb_frames=[photo.index],
                                         vectors=vec[None, :], quality=[quality]))
            self.next_id += 1
        self.done = batch[-1].frame.index + 1

    def _checkpoint(self, status: str) -> None:
        t = time.perf_counter()
        self.run = self.store.checkpoint(self.run.id, frames_done=self.done, tracks=self.pending, state=None,
                                         status=status, frames_total=len(self.photos))
        self.pending = []
        self._add("write", t)

    def _progress(self, *, done: bool = False) -> IndexProgress:
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        left = len(self.photos) - self.done
        eta = 0.0 if done else (left / rate if rate > 0 else None)
        warning = None
        if done and self.skipped_photos:
            n = len(self.skipped_photos)
            warning = (f"{self.photos.root}: {n} photo{'s' if n > 1 else ''} could not be read and "
                       f"{'were' if n > 1 else 'was'} left out: {'; '.join(self.skipped_photos[:3])}"
                       f"{' ...' if n > 3 else ''}")
        return IndexProgress(video_path=str(self.photos.root), frames_done=self.done,
                             frames_total=len(self.photos), fps=rate, eta_s=eta,
                             stage_s=tuple((s, round(v, 6)) for s, v in self.spent.items()),
                             tracks=self.run.tracks_done + len(self.pending), done=done, warning=warning,
                             processed=self.done - self.start, detected=self.done - self.start, photos=True)

    def loop(self, cancel: threading.Event | None) -> Iterator[IndexProgress]:
        settings = self.settings
        if self.run.status != "running":
            self.store.set_run_status(self.run.id, "running")
        frames = (Prefetcher(self._frames(), self._prepare, settings.prefetch) if settings.prefetch
                  else Inline(self._frames(), self._prepare))
        batch: list[Prepared] = []
        ended = False
        try:
            while True:
                t = time.perf_counter()
                item = next(frames, None)
                self._add("decode", t)
                if cancel is not None and cancel.is_set():
                    self._checkpoint("cancelled")
                    ended = True
                    yield self._progress()
                    return
                if item is not None:
                    batch.append(item)
                    if len(batch) < settings.det_batch and (item.frame.index + 1) % settings.det_batch:
                        continue  # batches are counted from the first photo, so a resumed run has the same
                if batch:
                    self._process(batch)
                    batch = []
                    if self.done % settings.commit_every == 0:
                        self._checkpoint("running")
                if item is None:
                    self._checkpoint("done")
                    ended = True
                    yield self._progress(done=True)
                    return
                yield self._progress()
        except GeneratorExit:
            if not ended:
                self._checkpoint("cancelled")
            raise
        except Exception as err:
            record_failure(self.store, self.run.id, err)  # a library error itself writes nothing
            raise
        finally:
            frames.close()
