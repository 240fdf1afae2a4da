"""The library as a user sees it: videos, which indexing run of each counts, saved searches.

:class:`Library` needs no model: it reads the database (:class:`core.store.Store`) only,
so ``python -m core list`` and ``show`` answer at once, and the engine
(:class:`core.engine.Engine`) builds on it for everything that does not run a model.

Which indexing run of a video counts (:meth:`Library.run_for`), given the models and
settings in use (a *settings key* and a ReID model digest, as the engine has them):

1. the run made with exactly these models and settings, when it is finished;
2. else the newest finished run made with the same ReID model (another detector, stride
   or tracker setting: its embeddings are comparable);
3. else the current settings' unfinished run when it has tracks (searched with a note
   saying the video is only partly indexed).

A video indexed only with another ReID model cannot be searched with this one. Without
models (``settings_key`` and ``reid_sha256`` both ``None``) the newest finished run
counts, else the newest run of any status.

People: :meth:`Library.link` links the tracks of finished runs into people
(``core.linking``; the engine does it after indexing and before searching a run that has
no people yet, ``python -m core link`` for a whole library).

A result explains itself (:meth:`SearchResult.explain`): how many people reach the
threshold, or, when none does, the best score found and what to do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import StoreError
from core.linking import DEFAULT_LINK_SETTINGS, LinkSettings, link_run, needs_linking
from core.search import SearchTarget
from core.store import LinkingRecord, QueryRecord, RunRecord, Sightings, Store, VideoRecord
from core.text import format_time, plural
from core.types import Hit
from core.video import fingerprint

VideoRef = str | Path | int
"""A video: its path (as indexed, or a moved copy of the same content) or its database id."""

HitRef = Hit | tuple[VideoRef, int] | int
"""A hit of a saved search: the hit itself, ``(video, track id)`` of one of its tracks, or a track id
alone when the search covered one video."""

VIDEO_STATUSES = ("indexed", "partial", "not indexed")
"""Values of :attr:`VideoInfo.status`."""


@dataclass(frozen=True)
class VideoInfo:
    """A video of the library as the models in use see it.

    Attributes:
        id: Database id.
        path: Path as last seen.
        fingerprint: Content fingerprint.
        fps: Frames per second.
        frame_count: Frames in the video.
        duration_s: Length in seconds.
        width: Frame width in pixels.
        height: Frame height in pixels.
        indexed: A finished run exists with the models and settings in use (without models:
            any finished run).
        tracks: Tracks of the newest finished run (0 if none).
        status: One of :data:`VIDEO_STATUSES`: ``"partial"`` means an unfinished run with the
            settings in use has started.
        run: The run this description is about (the finished one counted in ``tracks``, else
            the unfinished one), ``None`` when the video has none.
        kind: ``"video"`` or ``"photos"`` (a photo collection: ``tracks`` counts people found).
    """

    id: int
    path: str
    fingerprint: str
    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    indexed: bool
    tracks: int
    status: str
    run: RunRecord | None = None
    kind: str = "video"


@dataclass(frozen=True)
class QueryInfo:
    """A saved search, without its hits.

    Attributes:
        id: Query id (for :meth:`Library.load_query`).
        created: ISO time.
        photos: Photo paths (``"<array i>"`` for in-memory photos).
        video_ids: Videos searched.
        hits: Stored candidates (people, rejected ones included).
        similar: True for a "find similar" search (``photos`` then holds its label,
            ``"<similar to VIDEO track N>"``).
    """

    id: int
    created: str
    photos: tuple[str, ...]
    video_ids: tuple[int, ...]
    hits: int
    similar: bool = False


@dataclass(frozen=True)
class SearchResult:
    """Result of a search (new or reopened).

    Attributes:
        query_id: Id of the stored query (``None``: not stored, the library is read-only).
        hits: One per person: the confirmed ones first, then every other candidate best first (up
            to the search's ``top_k``, with no score floor), so a threshold slider can re-filter
            without searching again. Rejected hits are never among them.
        threshold: The threshold asked for.
        notes: What was done with the photos and videos, one sentence each.
        elapsed_s: Seconds the search (or the reopening) took.
        photos: The query's photo paths (``"<array i>"`` for in-memory photos,
            ``"<similar to VIDEO track N>"`` for a "find similar" search).
        created: ISO time the search was made.
        rejected: The hits the user rejected for this query, best first.
    """

    query_id: int | None
    hits: tuple[Hit, ...]
    threshold: float
    notes: tuple[str, ...]
    elapsed_s: float
    photos: tuple[str, ...] = ()
    created: str = ""
    rejected: tuple[Hit, ...] = ()

    def above(self, threshold: float) -> tuple[Hit, ...]:
        """The confirmed hits, then the others with ``score >= threshold``, best first."""
        return tuple(h for h in self.hits if h.mark == "confirmed" or h.score >= threshold)

    def explain(self, threshold: float | None = None) -> str:
        """One sentence on the result at ``threshold`` (default: the search's).

        What was found, or, when nobody reaches the threshold, the best score found and what to do.
        """
        t = self.threshold if threshold is None else float(threshold)
        shown = self.above(t)
        confirmed = sum(h.mark == "confirmed" for h in shown)
        rejected = f" ({plural(len(self.rejected), 'rejected hit')} left out)" if self.rejected else ""
        if shown:
            best = max(h.score for h in shown)
            mine = f"{confirmed} confirmed, " if confirmed else ""
            return (f"{plural(len(shown), 'person', 'people')} found at or above similarity {t:.2f} "
                    f"({mine}best {best:.2f}){rejected}.")
        if not self.hits:
            return (f"Nobody was found: the searched videos hold no candidate{rejected}. Index the videos "
                    "where the person should be, or search every video of the library.")
        best = self.hits[0]
        where = f"{Path(best.video_path).name} at {format_time(best.best_time_s)}, track {best.track_id}"
        lower = max(math.floor(best.score * 100 + 1e-6) / 100, 0.0)
        return (f"Nobody reaches similarity {t:.2f}: the best candidate scores {best.score:.2f} "
                f"({where}){rejected}. "
                f"Lower the threshold to {lower:.2f} to review the candidates, or add another photo of the "
                "person (another view, a closer crop).")


@dataclass(frozen=True)
class RunChoice:
    """The run of a video that counts (:meth:`Library.run_for`).

    Attributes:
        run: The run, or ``None`` when the video has no usable one.
        note: A sentence when the run is only partly indexed, else ``None``.
    """

    run: RunRecord | None
    note: str | None = None


@dataclass(frozen=True)
class HitTrack:
    """The track behind a hit (:meth:`Library.hit_track`).

    Attributes:
        run: The indexing run the track belongs to (its models and settings).
        sightings: Every stored box of the track, by frame.
    """

    run: RunRecord
    sightings: Sightings


class Library:
    """Videos, runs and saved searches of one library database (no models needed).

    Args:
        store: The open database (the caller closes it, or uses :meth:`open`).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, db_path: str | Path) -> Library:
        """Open (or create) the database at ``db_path``.

        Raises:
            StoreError: The file is not a library this version can read.
        """
        return cls(Store(db_path))

    @property
    def path(self) -> Path:
        """The database file."""
        return self.store.path

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- videos and runs ------------------------------------------------------------------------

    def find_video(self, video: VideoRef) -> VideoRecord:
        """A video of the library by id, by path, or by the content of the file at that path.

        Raises:
            StoreError: The video is not in the library (the sentence says how to index it).
        """
        if isinstance(video, (int, np.integer)) and not isinstance(video, bool):
            return self.store.get_video(int(video))
        path = Path(video)
        record = self.store.video_by_path(path)
        if record is None and path.is_file():
            try:
                record = self.store.video_by_fingerprint(fingerprint(path))
            except OSError:
                record = None
        if record is None:
            raise StoreError(f"{video}: this video is not in the library {self.path}; index it first "
                             f"(python -m core index {video}).")
        return record

    def run_for(self, video: VideoRecord, *, settings_key: str | None = None,
                reid_sha256: str | None = None) -> RunChoice:
        """The run of ``video`` that counts for these models and settings (see the module notes)."""
        if settings_key is None and reid_sha256 is None:
            runs = self.store.list_runs(video.id)
            done = [r for r in runs if r.status == "done"]
            return RunChoice(done[-1] if done else runs[-1] if runs else None)
        current = self.store.find_run(video.id, settings_key) if settings_key is not None else None
        if current is not None and current.status == "done":
            return RunChoice(current)
        done = self.store.latest_run(video.id, status="done", reid_sha256=reid_sha256)
        if done is not None:
            return RunChoice(done)
        if current is not None and current.tracks_done > 0:
            total = current.frames_total or video.frame_count
            return RunChoice(current, f"{video.path}: only partly indexed ({current.frames_done} of {total} "
                                      "frames); searched what is indexed so far.")
        return RunChoice(None)

    def video_info(self, video: VideoRecord, *, settings_key: str | None = None) -> VideoInfo:
        """Describe a video for the settings key in use (``None``: without models, see the module notes)."""
        if settings_key is None:
            run = self.run_for(video).run
            indexed = run is not None and run.status == "done"
            status = "indexed" if indexed else "partial" if run is not None else "not indexed"
            finished = run if indexed else None
        else:
            current = self.store.find_run(video.id, settings_key)
            indexed = current is not None and current.status == "done"
            status = "indexed" if indexed else "partial" if current is not None else "not indexed"
            finished = current if indexed else self.store.latest_run(video.id, status="done")
            run = finished or current
        return VideoInfo(id=video.id, path=video.path, fingerprint=video.fingerprint, fps=video.fps,
                         frame_count=video.frame_count, duration_s=video.duration_s, width=video.width,
                         height=video.height, indexed=indexed,
                         tracks=finished.tracks_done if finished else 0, status=status, run=run,
                         kind=video.kind)

    def videos(self, *, settings_key: str | None = None) -> list[VideoInfo]:
        """Every video of the library, in the order added (see :meth:`video_info`)."""
        return [self.video_info(v, settings_key=settings_key) for v in self.store.list_videos()]

    # -- people -----------------------------------------------------------------------------------

    def search_targets(self, videos: Sequence[VideoRef] | VideoRef | None, *, reid_name: str,
                       ) -> tuple[list[SearchTarget], list[str]]:
        """The runs a search of ``videos`` reads (``None``: every video with a run that counts).

        Args:
            videos: Paths or ids, or ``None``.
            reid_name: The ReID model's file name, for the sentences.

        Returns:
            ``(targets, notes)``: one target per video, and a sentence per video whose run is not
            the latest (see :meth:`run_for`).

        Raises:
            StoreError: A video is unknown or not indexed with this ReID model, or nothing is indexed.
        """
        if videos is None:
            records, explicit = self.store.list_videos(), False
        else:
            if isinstance(videos, (str, Path, int)):
                videos = [videos]
            records, explicit = [self.find_video(v) for v in videos], True
        notes: list[str] = []
        targets: list[SearchTarget] = []
        for video in records:
            choice = self.run_for(video)
            if choice.run is None:
                if explicit:
                    other = self.store.latest_run(video.id, status="done")
                    why = (f"it was indexed with another ReID model ({other.reid_name}); index it again with "
                           f"{reid_name}" if other is not None else "it is not indexed yet")
                    raise StoreError(f"{video.path}: cannot be searched: {why} (python -m core index "
                                     f"{video.path}).")
                continue
            if choice.note:
                notes.append(choice.note)
            targets.append(SearchTarget(choice.run.id, video, int(choice.run.settings.get("stride", 1))))
        if not targets:
            raise StoreError(f"no video of the library {self.path} is indexed with the ReID model "
                             f"{reid_name}; index one first (python -m core index VIDEO).")
        return targets, notes

    def link(self, videos: list[VideoRef] | None = None, *, force: bool = False,
             settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> list[tuple[VideoRecord, LinkingRecord]]:
        """Link the tracks of the finished runs of these videos (``None``: all) into people.

        Args:
            videos: Videos (paths or ids).
            force: Link again runs already linked with these settings.
            settings: The linking rules.

        Returns:
            ``(video, linking)`` of every run linked now, in the order of the videos.

        Raises:
            StoreError: A video is not in the library.
        """
        records = self.store.list_videos() if videos is None else [self.find_video(v) for v in videos]
        out = []
        for video in records:
            runs = [r.id for r in self.store.list_runs(video.id, status="done")]
            for run_id in runs if force else needs_linking(self.store, runs, settings):
                out.append((video, link_run(self.store, run_id, settings)))
        return out

    # -- saved searches ---------------------------------------------------------------------------

    def queries(self, video: VideoRef | None = None) -> list[QueryInfo]:
        """Saved searches, newest first (only those that searched ``video`` when given)."""
        video_id = None if video is None else self.find_video(video).id
        return [QueryInfo(id=q.id, created=q.created, photos=q.photos, video_ids=q.video_ids, hits=q.hits,
                          similar=bool(q.like_tracks)) for q in self.store.list_queries(video_id)]

    def load_query(self, query_id: int) -> SearchResult:
        """Reopen a saved search: its hits as last ranked, with their marks (no photo, model or video used).

        Raises:
            StoreError: No such query.
        """
        t0 = time.perf_counter()
        record = self.store.load_query(int(query_id))
        summary = record.summary
        return SearchResult(query_id=summary.id, hits=tuple(h for h in record.hits if h.mark != "rejected"),
                            threshold=summary.threshold, notes=summary.notes,
                            elapsed_s=time.perf_counter() - t0,
                            photos=summary.photos, created=summary.created,
                            rejected=tuple(h for h in record.hits if h.mark == "rejected"))

    def hit_tracks(self, record: QueryRecord, ref: HitRef) -> tuple[int, ...]:
        """Every ``track_pk`` of the saved hit ``ref`` names.

        Raises:
            StoreError: ``ref`` is none of the query's hits.
        """
        if isinstance(ref, Hit):
            video_id, track_id = ref.video_id, ref.track_id
        elif isinstance(ref, tuple):
            video_id, track_id = self.find_video(ref[0]).id, int(ref[1])
        else:
            if len(record.summary.video_ids) != 1:
                raise StoreError(f"query {record.id} searched several videos: name the video of track {ref} "
                                 "(VIDEO:TRACK).")
            video_id, track_id = record.summary.video_ids[0], int(ref)
        for hit, pks in zip(record.hits, record.hit_tracks, strict=True):
            if hit.video_id == video_id and int(track_id) in hit.track_ids:
                return pks
        raise StoreError(f"query {record.id} has no hit with track {track_id} of video {video_id} "
                         f"(python -m core show {record.id} lists its hits).")

    # -- the track behind a hit -----------------------------------------------------------------

    def hit_track(self, hit: Hit) -> HitTrack:
        """The indexing run and every stored box of the person a hit is about (for clips and evidence).

        A hit names its video and its best track's id within a run; the run is the one (newest
        first) whose track of that id was seen at the hit's best frame, at its best box. The boxes
        are those of every track of the hit (``hit.track_ids``: the person's linked tracks), which
        never overlap in time.

        Raises:
            StoreError: The video, its run or the track is no longer in the library.
        """
        record = self.store.get_video(int(hit.video_id))
        for run in reversed(self.store.list_runs(record.id)):
            track = next((t for t in self.store.tracks(run.id) if t.track_id == int(hit.track_id)), None)
            if track is None:
                continue
            seen = self.store.sightings(track.pk)
            at = np.flatnonzero(seen.frames == int(hit.best_frame))
            if len(at) and np.allclose(seen.boxes[at[0]], hit.best_box, atol=0.5):
                return HitTrack(run=run, sightings=self._person_sightings(run.id, hit, seen))
        raise StoreError(f"{record.path}: track {hit.track_id} of this hit is no longer in the library "
                         f"{self.path} (the video was indexed again?); search again.")

    def _person_sightings(self, run_id: int, hit: Hit, best: Sightings) -> Sightings:
        """The boxes of all of ``hit``'s tracks in the run, by frame (``best``: its best track's)."""
        wanted = {int(t) for t in hit.track_ids} - {int(hit.track_id)}
        pks = [t.pk for t in self.store.tracks(run_id) if t.track_id in wanted]
        if not pks:
            return best
        parts = [best, *self.store.sightings_of(pks).values()]
        order = np.argsort(np.concatenate([p.frames for p in parts]), kind="stable")

        def joined(name: str) -> np.ndarray:
            out = np.concatenate([getattr(p, name) for p in parts])[order]
            out.flags.writeable = False
            return out

        return Sightings(**{name: joined(name) for name in
                            ("track_pks", "track_ids", "frames", "times_s", "boxes", "scores")})
