"""The part of :class:`core.store.Store` for videos and indexing runs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from core.errors import StoreError
from core.store.database import Database
from core.store.migrations import now
from core.store.records import (
    NewTrack,
    PhotoRecord,
    RunRecord,
    VideoRecord,
    photo_file,
    run_from_row,
    video_from_row,
)
from core.store.tables import (
    RUN_STATUSES,
    VIDEO_KINDS,
    LinkingTable,
    PhotoTable,
    RunTable,
    TrackTable,
    VideoTable,
)
from core.store.tracks import write_tracks

_RUN_COLUMNS = [c for c in RunTable.__table__.columns if c.name != "state"]


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")


class VideoStore(Database):
    """Videos and their indexing runs."""

    # -- videos -------------------------------------------------------------------------------

    def upsert_video(self, path: str | Path, fingerprint: str, *, fps: float, frame_count: int,
                     width: int, height: int, kind: str = "video") -> VideoRecord:
        """Add a video, or find it by fingerprint and update its path (moved or renamed file).

        Args:
            path: Where the file is now.
            fingerprint: Content fingerprint (``core.video.fingerprint``).
            fps: Frames per second.
            frame_count: Frames in the file.
            width: Frame width.
            height: Frame height.
            kind: ``"video"`` or ``"photos"`` (:data:`~core.store.tables.VIDEO_KINDS`).

        Returns:
            The video's record, with the new path.
        """
        if kind not in VIDEO_KINDS:
            raise ValueError(f"kind must be one of {', '.join(VIDEO_KINDS)}, got {kind!r}")
        path = str(Path(path).expanduser().resolve())
        with self._session(write=True) as session:
            row = session.scalars(select(VideoTable).where(VideoTable.fingerprint == fingerprint)).first()
            if row is None:
                row = VideoTable(path=path, fingerprint=fingerprint, fps=float(fps),
                                 frame_count=int(frame_count),
                                 duration_s=float(frame_count) / fps if fps > 0 else 0.0,
                                 width=int(width), height=int(height), added=now(), kind=kind)
                session.add(row)
                session.flush()
            elif row.path != path:
                row.path = path
            if row.frame_count < frame_count:
                row.frame_count = int(frame_count)
                row.duration_s = float(frame_count) / row.fps if row.fps > 0 else 0.0
            return video_from_row(row)

    def get_video(self, video_id: int) -> VideoRecord:
        """Return a video by id.

        Raises:
            StoreError: No such video.
        """
        with self._session() as session:
            row = session.get(VideoTable, int(video_id))
            if row is None:
                raise StoreError(f"video {video_id} is not in the library {self.path}.")
            return video_from_row(row)

    def video_by_path(self, path: str | Path) -> VideoRecord | None:
        """Return the video last seen at ``path`` (absolute, resolved), or ``None``."""
        path = str(Path(path).expanduser().resolve())
        with self._session() as session:
            query = select(VideoTable).where(VideoTable.path == path).order_by(VideoTable.id.desc())
            row = session.scalars(query).first()
            return video_from_row(row) if row else None

    def video_by_fingerprint(self, fingerprint: str) -> VideoRecord | None:
        """Return the video with this content fingerprint, or ``None``."""
        with self._session() as session:
            row = session.scalars(select(VideoTable).where(VideoTable.fingerprint == fingerprint)).first()
            return video_from_row(row) if row else None

    def list_videos(self) -> list[VideoRecord]:
        """All videos, in the order they were added."""
        with self._session() as session:
            return [video_from_row(r) for r in session.scalars(select(VideoTable).order_by(VideoTable.id))]

    # -- photo collections ----------------------------------------------------------------

    def save_photos(self, video_id: int, photos: Sequence[PhotoRecord]) -> None:
        """Record the photos of a photo collection (replacing what was recorded), ``path`` relative to it."""
        with self._session(write=True) as session:
            session.execute(delete(PhotoTable).where(PhotoTable.video_id == int(video_id)))
            if photos:
                session.execute(insert(PhotoTable), [
                    {"video_id": int(video_id), "frame": int(p.frame), "path": p.path, "taken": p.taken,
                     "time_s": float(p.time_s), "width": int(p.width), "height": int(p.height)}
                    for p in photos])

    def photos(self, video_id: int) -> list[PhotoRecord]:
        """The photos of a photo collection in order, with absolute paths (empty for a video)."""
        with self._session() as session:
            video = session.get(VideoTable, int(video_id))
            if video is None:
                return []
            rows = session.scalars(select(PhotoTable).where(PhotoTable.video_id == video.id)
                                   .order_by(PhotoTable.frame)).all()
            return [PhotoRecord(frame=r.frame, path=photo_file(video.path, r.path), taken=r.taken,
                                time_s=r.time_s, width=r.width, height=r.height) for r in rows]

    def photo_paths(self, frames: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, str]]:
        """``{(video_id, frame): (absolute photo file, EXIF time or "")}`` of the pairs that are photos."""
        wanted = {(int(v), int(f)) for v, f in frames}
        if not wanted:
            return {}
        out: dict[tuple[int, int], tuple[str, str]] = {}
        with self._session() as session:
            for video_id in sorted({v for v, _ in wanted}):
                columns = (PhotoTable.frame, PhotoTable.path, PhotoTable.taken, VideoTable.path)
                rows = session.execute(select(*columns)
                                       .join(VideoTable, VideoTable.id == PhotoTable.video_id)
                                       .where(PhotoTable.video_id == video_id,
                                              PhotoTable.frame.in_([f for v, f in wanted if v == video_id])))
                for frame, rel, taken, root in rows:
                    out[(video_id, int(frame))] = (photo_file(root, rel), taken or "")
        return out

    def delete_video(self, video_id: int) -> None:
        """Remove a video with its runs, tracks, sightings, embeddings and hits."""
        with self._session(write=True) as session:
            session.execute(delete(VideoTable).where(VideoTable.id == int(video_id)))

    # -- runs ---------------------------------------------------------------------------------

    def create_run(self, video_id: int, *, detector_name: str, detector_sha256: str, reid_name: str,
                   reid_sha256: str, embedding_dim: int, settings: Mapping[str, Any], settings_key: str,
                   frames_total: int) -> RunRecord:
        """Start a new run (status ``running``, nothing done).

        Raises:
            StoreError: A run with this ``settings_key`` already exists for the video.
        """
        with self._session(write=True) as session:
            if session.scalar(select(RunTable.id).where(RunTable.video_id == video_id,
                                                  RunTable.settings_key == settings_key)) is not None:
                raise StoreError(f"video {video_id} already has a run with settings {settings_key[:12]}.")
            row = RunTable(video_id=int(video_id), detector_name=detector_name,
                           detector_sha256=detector_sha256, reid_name=reid_name, reid_sha256=reid_sha256,
                           embedding_dim=int(embedding_dim),
                           settings=json.dumps(dict(settings), sort_keys=True), settings_key=settings_key,
                           status="running", frames_done=0, frames_total=int(frames_total), tracks_done=0,
                           started=now())
            session.add(row)
            session.flush()
            return run_from_row(row)

    def get_run(self, run_id: int) -> RunRecord:
        """Return a run by id.

        Raises:
            StoreError: No such run.
        """
        with self._session() as session:
            row = session.execute(select(*_RUN_COLUMNS).where(RunTable.id == int(run_id))).first()
            if row is None:
                raise StoreError(f"indexing run {run_id} is not in the library {self.path}.")
            return run_from_row(row)

    def find_run(self, video_id: int, settings_key: str) -> RunRecord | None:
        """Return the video's run with these models and settings, or ``None``."""
        with self._session() as session:
            row = session.execute(select(*_RUN_COLUMNS).where(RunTable.video_id == int(video_id),
                                                        RunTable.settings_key == settings_key)).first()
            return run_from_row(row) if row else None

    def list_runs(self, video_id: int | None = None, *, status: str | None = None,
                  reid_sha256: str | None = None) -> list[RunRecord]:
        """Runs, oldest first, optionally of one video / with one status / one ReID model."""
        query = select(*_RUN_COLUMNS).order_by(RunTable.id)
        if video_id is not None:
            query = query.where(RunTable.video_id == int(video_id))
        if status is not None:
            query = query.where(RunTable.status == status)
        if reid_sha256 is not None:
            query = query.where(RunTable.reid_sha256 == reid_sha256)
        with self._session() as session:
            return [run_from_row(r) for r in session.execute(query)]

    def latest_run(self, video_id: int, *, status: str | None = "done",
                   reid_sha256: str | None = None) -> RunRecord | None:
        """The newest run of a video (by default the newest finished one), or ``None``."""
        runs = self.list_runs(video_id, status=status, reid_sha256=reid_sha256)
        return runs[-1] if runs else None

    def load_run_state(self, run_id: int) -> bytes | None:
        """The resume state saved with the run's last checkpoint (``None`` if none)."""
        with self._session() as session:
            return session.scalar(select(RunTable.state).where(RunTable.id == int(run_id)))

    def checkpoint(self, run_id: int, *, frames_done: int, tracks: Sequence[NewTrack] = (),
                   state: bytes | None = None, status: str = "running", error: str | None = None,
                   frames_total: int | None = None) -> RunRecord:
        """Write finished tracks and the run's progress in one transaction.

        Either everything (tracks with all their sightings and embeddings, ``frames_done``,
        the resume ``state``, the status) is committed, or nothing is.

        Args:
            run_id: The run.
            frames_done: Frames covered (last processed frame + 1).
            tracks: Tracks that ended since the last checkpoint.
            state: Resume state (opaque bytes, ``None`` to clear it).
            status: New status (``running`` while going on).
            error: Error sentence of a failed run.
            frames_total: New frame total (e.g. the real count found at the end).

        Returns:
            The updated run.
        """
        _check_status(status)
        with self._session(write=True) as session:
            run = session.get(RunTable, int(run_id))
            if run is None:
                raise StoreError(f"indexing run {run_id} is not in the library {self.path}.")
            write_tracks(session, run.id, run.embedding_dim, tracks)
            run.frames_done = int(frames_done)
            run.state = state
            run.status = status
            run.error = error
            run.tracks_done += len(tracks)
            if frames_total is not None:
                run.frames_total = int(frames_total)
            run.finished = now() if status in ("done", "failed", "cancelled") else None
            session.flush()
            return run_from_row(run)

    def set_run_status(self, run_id: int, status: str, error: str | None = None) -> None:
        """Change a run's status (and error sentence) without touching its data."""
        _check_status(status)
        with self._session(write=True) as session:
            session.execute(update(RunTable).where(RunTable.id == int(run_id)).values(
                status=status, error=error, finished=now() if status != "running" else None))

    def reset_run(self, run_id: int) -> None:
        """Forget a run's tracks (and its people) and resume state: it starts again at frame 0."""
        with self._session(write=True) as session:
            session.execute(delete(LinkingTable).where(LinkingTable.run_id == int(run_id)))
            session.execute(delete(TrackTable).where(TrackTable.run_id == int(run_id)))
            session.execute(update(RunTable).where(RunTable.id == int(run_id)).values(
                frames_done=0, tracks_done=0, state=None, status="running", error=None, finished=None))

    def delete_run(self, run_id: int) -> None:
        """Remove a run with its tracks, sightings, embeddings and hits."""
        with self._session(write=True) as session:
            session.execute(delete(RunTable).where(RunTable.id == int(run_id)))
