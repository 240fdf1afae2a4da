"""The library database: videos, indexing runs, tracks, sightings, embeddings, queries, hits.

SQLite through the SQLAlchemy 2.x ORM, in WAL mode (readers never wait for the
indexing writer), ``foreign_keys=ON`` (deleting a video removes its runs, tracks,
sightings, embeddings and hits), ``synchronous=NORMAL`` (a power cut may lose the
last commit, never corrupt the file). One :class:`Store` (one SQLAlchemy engine) is
shared by all threads of a process; each thread opens its own short session with
:meth:`Store.session` or, more usually, calls the typed helpers below, which open and
close their own session and return frozen dataclasses and read-only numpy arrays.

Schema (version :data:`SCHEMA_VERSION`)::

    schema_version(version PK, applied, description)     one row per applied migration
    videos(id, path, fingerprint UNIQUE, fps, frame_count, duration_s, width, height, added)
    index_runs(id, video_id, detector_name, detector_sha256, reid_name, reid_sha256,
               embedding_dim, settings JSON, settings_key, status, frames_done,
               frames_total, tracks_done, started, finished, error, state BLOB)
               UNIQUE(video_id, settings_key); status in running|cancelled|done|failed
    tracks(id, run_id, track_id, first_frame, last_frame, first_s, last_s, n_sightings)
               UNIQUE(run_id, track_id)
    sightings(id, track_pk, run_id, frame, time_s, x1, y1, x2, y2, score)
               INDEX(run_id, frame), INDEX(track_pk, frame)
    embeddings(id AUTOINCREMENT, track_pk, run_id, frame, vector BLOB float32, quality)
    queries(id, created, photos JSON, video_ids JSON, threshold, reid_sha256, notes JSON)
    hits(id, query_id, track_pk, score, best_frame, best_time_s, best_box JSON, segments JSON)

``track_pk`` is the database id of a ``tracks`` row; ``track_id`` is the tracker's
id, unique within one run only. ``embeddings.id`` never gets reused (AUTOINCREMENT),
so ``(count, max id)`` of the embeddings of a ReID model changes whenever that set
changes: :mod:`core.index` relies on it to detect a stale FAISS file.

Migrations: :data:`MIGRATIONS` maps each schema version to the function that upgrades
a database from the version before; opening an older library applies the missing
ones in order inside one transaction. A new database is built by the same path
(0 -> 1 -> 2 ...), so the migrations are exercised every time a library is created.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    CheckConstraint,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    exc,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.errors import StoreError
from core.types import Hit, Segment

SCHEMA_VERSION = 2
"""Schema version this code writes and reads."""

RUN_STATUSES = ("running", "cancelled", "done", "failed")
"""Possible values of ``index_runs.status``."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _readonly(arr: np.ndarray) -> np.ndarray:
    """Return a read-only C-contiguous copy of ``arr`` (no copy when it is already read-only)."""
    if arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, order="C", copy=True)
        arr.flags.writeable = False
    return arr


# --------------------------------------------------------------------------- ORM (latest schema)


class Base(DeclarativeBase):
    """Declarative base of the library tables."""


class SchemaVersionRow(Base):
    """One applied migration."""

    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)


class VideoRow(Base):
    """A video file, known by the fingerprint of its content."""

    __tablename__ = "videos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, index=True)
    fingerprint: Mapped[str] = mapped_column(Text, unique=True)
    fps: Mapped[float] = mapped_column(Float)
    frame_count: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    added: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    """One indexing run of a video with given models and settings."""

    __tablename__ = "index_runs"
    __table_args__ = (
        UniqueConstraint("video_id", "settings_key", name="uq_run_video_settings"),
        CheckConstraint("status IN ('running', 'cancelled', 'done', 'failed')", name="ck_run_status"),
        Index("ix_index_runs_reid", "reid_sha256"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    detector_name: Mapped[str] = mapped_column(Text)
    detector_sha256: Mapped[str] = mapped_column(Text)
    reid_name: Mapped[str] = mapped_column(Text)
    reid_sha256: Mapped[str] = mapped_column(Text)
    embedding_dim: Mapped[int] = mapped_column(Integer)
    settings: Mapped[str] = mapped_column(Text)
    settings_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[str] = mapped_column(Text)
    finished: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    tracks_done: Mapped[int] = mapped_column(Integer, default=0)


class TrackRow(Base):
    """A finished track (written whole, never partially)."""

    __tablename__ = "tracks"
    __table_args__ = (UniqueConstraint("run_id", "track_id", name="uq_track_run_tid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("index_runs.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(Integer)
    first_frame: Mapped[int] = mapped_column(Integer)
    last_frame: Mapped[int] = mapped_column(Integer)
    first_s: Mapped[float] = mapped_column(Float)
    last_s: Mapped[float] = mapped_column(Float)
    n_sightings: Mapped[int] = mapped_column(Integer)


class SightingRow(Base):
    """A track's box in one processed frame."""

    __tablename__ = "sightings"
    __table_args__ = (
        Index("ix_sightings_run_frame", "run_id", "frame"),
        Index("ix_sightings_track", "track_pk", "frame"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_pk: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("index_runs.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer)
    time_s: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)


class EmbeddingRow(Base):
    """One ReID vector of a track (float32 bytes, L2-normalised)."""

    __tablename__ = "embeddings"
    __table_args__ = (
        Index("ix_embeddings_run", "run_id"),
        Index("ix_embeddings_track", "track_pk"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    track_pk: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("index_runs.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float] = mapped_column(Float)


class QueryRow(Base):
    """A saved search."""

    __tablename__ = "queries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[str] = mapped_column(Text)
    photos: Mapped[str] = mapped_column(Text)
    video_ids: Mapped[str] = mapped_column(Text)
    threshold: Mapped[float] = mapped_column(Float)
    reid_sha256: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, default="[]")


class HitRow(Base):
    """One matching track of a saved search."""

    __tablename__ = "hits"
    __table_args__ = (Index("ix_hits_query", "query_id"), Index("ix_hits_track", "track_pk"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"))
    track_pk: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    best_frame: Mapped[int] = mapped_column(Integer)
    best_time_s: Mapped[float] = mapped_column(Float)
    best_box: Mapped[str] = mapped_column(Text)
    segments: Mapped[str] = mapped_column(Text)


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True)
class Migration:
    """One schema step.

    Attributes:
        description: What the step changes, recorded in ``schema_version``.
        apply: Function run inside the migration transaction on the raw connection.
    """

    description: str
    apply: Callable[[Connection], None]


def _run_script(conn: Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.exec_driver_sql(statement)


def _migrate_1(conn: Connection) -> None:
    _run_script(conn, """
    CREATE TABLE videos (
        id INTEGER NOT NULL PRIMARY KEY,
        path TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        fps FLOAT NOT NULL,
        frame_count INTEGER NOT NULL,
        duration_s FLOAT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        added TEXT NOT NULL);
    CREATE INDEX ix_videos_path ON videos (path);
    CREATE TABLE index_runs (
        id INTEGER NOT NULL PRIMARY KEY,
        video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
        detector_name TEXT NOT NULL,
        detector_sha256 TEXT NOT NULL,
        reid_name TEXT NOT NULL,
        reid_sha256 TEXT NOT NULL,
        embedding_dim INTEGER NOT NULL,
        settings TEXT NOT NULL,
        settings_key TEXT NOT NULL,
        status TEXT NOT NULL,
        frames_done INTEGER NOT NULL,
        frames_total INTEGER NOT NULL,
        started TEXT NOT NULL,
        finished TEXT,
        error TEXT,
        CONSTRAINT uq_run_video_settings UNIQUE (video_id, settings_key),
        CONSTRAINT ck_run_status CHECK (status IN ('running', 'cancelled', 'done', 'failed')));
    CREATE INDEX ix_index_runs_reid ON index_runs (reid_sha256);
    CREATE TABLE tracks (
        id INTEGER NOT NULL PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES index_runs (id) ON DELETE CASCADE,
        track_id INTEGER NOT NULL,
        first_frame INTEGER NOT NULL,
        last_frame INTEGER NOT NULL,
        first_s FLOAT NOT NULL,
        last_s FLOAT NOT NULL,
        n_sightings INTEGER NOT NULL,
        CONSTRAINT uq_track_run_tid UNIQUE (run_id, track_id));
    CREATE TABLE sightings (
        id INTEGER NOT NULL PRIMARY KEY,
        track_pk INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
        run_id INTEGER NOT NULL REFERENCES index_runs (id) ON DELETE CASCADE,
        frame INTEGER NOT NULL,
        time_s FLOAT NOT NULL,
        x1 FLOAT NOT NULL,
        y1 FLOAT NOT NULL,
        x2 FLOAT NOT NULL,
        y2 FLOAT NOT NULL,
        score FLOAT NOT NULL);
    CREATE INDEX ix_sightings_run_frame ON sightings (run_id, frame);
    CREATE INDEX ix_sightings_track ON sightings (track_pk, frame);
    CREATE TABLE embeddings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        track_pk INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
        run_id INTEGER NOT NULL REFERENCES index_runs (id) ON DELETE CASCADE,
        frame INTEGER NOT NULL,
        vector BLOB NOT NULL,
        quality FLOAT NOT NULL);
    CREATE INDEX ix_embeddings_run ON embeddings (run_id);
    CREATE INDEX ix_embeddings_track ON embeddings (track_pk);
    CREATE TABLE queries (
        id INTEGER NOT NULL PRIMARY KEY,
        created TEXT NOT NULL,
        photos TEXT NOT NULL,
        video_ids TEXT NOT NULL,
        threshold FLOAT NOT NULL,
        reid_sha256 TEXT NOT NULL);
    CREATE TABLE hits (
        id INTEGER NOT NULL PRIMARY KEY,
        query_id INTEGER NOT NULL REFERENCES queries (id) ON DELETE CASCADE,
        track_pk INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
        score FLOAT NOT NULL,
        best_frame INTEGER NOT NULL,
        best_time_s FLOAT NOT NULL,
        best_box TEXT NOT NULL,
        segments TEXT NOT NULL);
    CREATE INDEX ix_hits_query ON hits (query_id);
    CREATE INDEX ix_hits_track ON hits (track_pk)
    """)


def _migrate_2(conn: Connection) -> None:
    _run_script(conn, """
    ALTER TABLE index_runs ADD COLUMN state BLOB;
    ALTER TABLE index_runs ADD COLUMN tracks_done INTEGER NOT NULL DEFAULT 0;
    UPDATE index_runs SET tracks_done = (SELECT COUNT(*) FROM tracks WHERE tracks.run_id = index_runs.id);
    ALTER TABLE queries ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'
    """)


MIGRATIONS: dict[int, Migration] = {
    1: Migration("videos, index runs, tracks, sightings, embeddings, queries, hits", _migrate_1),
    2: Migration("resume checkpoints (index_runs.state, tracks_done) and query notes", _migrate_2),
}
"""Schema version -> the step that upgrades a database from the version before."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class VideoRecord:
    """A video of the library.

    Attributes:
        id: Database id.
        path: Path of the file as last seen (updated when a moved file is indexed again).
        fingerprint: Content fingerprint (``core.video.fingerprint``).
        fps: Frames per second.
        frame_count: Frames in the file.
        duration_s: Length in seconds.
        width: Frame width in pixels.
        height: Frame height in pixels.
        added: ISO time the video was first added.
    """

    id: int
    path: str
    fingerprint: str
    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    added: str


@dataclass(frozen=True)
class RunRecord:
    """An indexing run (without its resume state blob, see :meth:`Store.load_run_state`).

    Attributes:
        id: Database id.
        video_id: The video indexed.
        detector_name: Detector model name.
        detector_sha256: Detector model file digest.
        reid_name: ReID model name.
        reid_sha256: ReID model file digest (embeddings of different models never mix).
        embedding_dim: D of the embeddings.
        settings_json: The indexing settings as JSON text (see :attr:`settings`).
        settings_key: Hash of models + settings; unique per video.
        status: ``running``, ``cancelled``, ``done`` or ``failed``.
        frames_done: Frames covered by the last commit (last processed frame + 1).
        frames_total: Frames in the video.
        tracks_done: Tracks written so far.
        started: ISO time the run was created.
        finished: ISO time it ended (``None`` while running or interrupted).
        error: Error sentence of a failed run.
    """

    id: int
    video_id: int
    detector_name: str
    detector_sha256: str
    reid_name: str
    reid_sha256: str
    embedding_dim: int
    settings_json: str
    settings_key: str
    status: str
    frames_done: int
    frames_total: int
    tracks_done: int
    started: str
    finished: str | None
    error: str | None

    @property
    def settings(self) -> dict[str, Any]:
        """The indexing settings (a fresh dict)."""
        return json.loads(self.settings_json)


@dataclass(frozen=True)
class TrackRecord:
    """A finished track.

    Attributes:
        pk: Database id (``track_pk`` elsewhere).
        run_id: The run that produced it.
        video_id: The run's video.
        track_id: Tracker id, unique within the run.
        first_frame: First processed frame it was seen in.
        last_frame: Last processed frame it was seen in.
        first_s: Time of ``first_frame`` in seconds.
        last_s: Time of ``last_frame`` in seconds.
        n_sightings: Number of sightings (processed frames it was matched in).
    """

    pk: int
    run_id: int
    video_id: int
    track_id: int
    first_frame: int
    last_frame: int
    first_s: float
    last_s: float
    n_sightings: int


@dataclass(frozen=True)
class Sightings:
    """Boxes of one or more tracks, sorted by (frame, track id) or by frame for one track.

    Attributes:
        track_pks: ``(N,)`` int64 database ids of the tracks.
        track_ids: ``(N,)`` int64 tracker ids.
        frames: ``(N,)`` int64 frame indices.
        times_s: ``(N,)`` float64 times in seconds.
        boxes: ``(N, 4)`` float32 xyxy pixels.
        scores: ``(N,)`` float32 detector scores.
    """

    track_pks: np.ndarray
    track_ids: np.ndarray
    frames: np.ndarray
    times_s: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class EmbeddingRows:
    """Embedding rows, ordered by embedding id.

    Attributes:
        ids: ``(M,)`` int64 embedding ids (the FAISS ids).
        track_pks: ``(M,)`` int64 track database ids.
        run_ids: ``(M,)`` int64 run ids.
        frames: ``(M,)`` int64 frame of each crop.
        quality: ``(M,)`` float32 crop quality used to choose it.
        vectors: ``(M, D)`` float32 L2-normalised vectors (``(M, 0)`` when not loaded).
    """

    ids: np.ndarray
    track_pks: np.ndarray
    run_ids: np.ndarray
    frames: np.ndarray
    quality: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class NewTrack:
    """A finished track as the pipeline writes it.

    Attributes:
        track_id: Tracker id.
        frames: ``(N,)`` int64 frames of the sightings, increasing.
        times_s: ``(N,)`` float64 times of the sightings.
        boxes: ``(N, 4)`` float32 xyxy boxes.
        scores: ``(N,)`` float32 detector scores.
        emb_frames: ``(K,)`` int64 frames of the embedded crops.
        vectors: ``(K, D)`` float32 L2-normalised embeddings.
        quality: ``(K,)`` float32 quality of the embedded crops.
    """

    track_id: int
    frames: np.ndarray
    times_s: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    emb_frames: np.ndarray
    vectors: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        conv = {"frames": np.int64, "times_s": np.float64, "boxes": np.float32, "scores": np.float32,
                "emb_frames": np.int64, "vectors": np.float32, "quality": np.float32}
        for name, dtype in conv.items():
            object.__setattr__(self, name, _readonly(np.asarray(getattr(self, name), dtype)))
        n, k = len(self.frames), len(self.emb_frames)
        if n == 0 or self.boxes.shape != (n, 4) or self.times_s.shape != (n,) or self.scores.shape != (n,):
            raise ValueError("a track needs N >= 1 sightings with (N,) frames/times/scores and (N, 4) boxes")
        if self.vectors.ndim != 2 or len(self.vectors) != k or self.quality.shape != (k,):
            raise ValueError("emb_frames, vectors (K, D) and quality must have the same K")


@dataclass(frozen=True)
class QuerySummary:
    """A saved search, without its hits.

    Attributes:
        id: Database id.
        created: ISO time.
        photos: Photo paths (or labels for in-memory photos).
        video_ids: Videos searched.
        threshold: Threshold asked for.
        reid_sha256: ReID model that made the query vectors.
        notes: Notes of the search (e.g. which person of a photo was used).
        hits: Number of stored hits.
    """

    id: int
    created: str
    photos: tuple[str, ...]
    video_ids: tuple[int, ...]
    threshold: float
    reid_sha256: str
    notes: tuple[str, ...]
    hits: int


@dataclass(frozen=True)
class QueryRecord:
    """A saved search with its hits.

    Attributes:
        summary: The query's fields.
        hits: Stored hits, best score first (``video_path`` is the video's current path).
        track_pks: ``track_pk`` of each hit, same order.
    """

    summary: QuerySummary
    hits: tuple[Hit, ...]
    track_pks: tuple[int, ...] = field(default=())

    @property
    def id(self) -> int:
        """The query id."""
        return self.summary.id


# --------------------------------------------------------------------------- the store


def _video_record(r: VideoRow) -> VideoRecord:
    return VideoRecord(r.id, r.path, r.fingerprint, r.fps, r.frame_count, r.duration_s, r.width, r.height,
                       r.added)


def _run_record(r: RunRow) -> RunRecord:
    return RunRecord(r.id, r.video_id, r.detector_name, r.detector_sha256, r.reid_name, r.reid_sha256,
                     r.embedding_dim, r.settings, r.settings_key, r.status, r.frames_done, r.frames_total,
                     r.tracks_done, r.started, r.finished, r.error)


_RUN_COLUMNS = [c for c in RunRow.__table__.columns if c.name != "state"]


def _run_from_row(row: Any) -> RunRecord:
    values = row._asdict()
    values["settings_json"] = values.pop("settings")
    return RunRecord(**values)
_TRACK_COLUMNS = [*TrackRow.__table__.columns, RunRow.video_id]
_SIGHTING_COLUMNS = [SightingRow.track_pk, TrackRow.track_id, SightingRow.frame, SightingRow.time_s,
                     SightingRow.x1, SightingRow.y1, SightingRow.x2, SightingRow.y2, SightingRow.score]


def _track_record(row: Any) -> TrackRecord:
    return TrackRecord(pk=row.id, run_id=row.run_id, video_id=row.video_id, track_id=row.track_id,
                       first_frame=row.first_frame, last_frame=row.last_frame, first_s=row.first_s,
                       last_s=row.last_s, n_sightings=row.n_sightings)


def _sightings(rows: Sequence[Any]) -> Sightings:
    n = len(rows)
    boxes = np.array([(r.x1, r.y1, r.x2, r.y2) for r in rows], np.float32).reshape(n, 4)
    return Sightings(
        track_pks=_readonly(np.array([r.track_pk for r in rows], np.int64)),
        track_ids=_readonly(np.array([r.track_id for r in rows], np.int64)),
        frames=_readonly(np.array([r.frame for r in rows], np.int64)),
        times_s=_readonly(np.array([r.time_s for r in rows], np.float64)),
        boxes=_readonly(boxes),
        scores=_readonly(np.array([r.score for r in rows], np.float32)),
    )


class Store:
    """The library database (thread-safe: one engine, one short session per call).

    Args:
        db_path: SQLite file; created (with its folder) when missing, migrated when older.

    Raises:
        StoreError: The file is not an SQLite database, belongs to another program, or
            was written by a newer version of this program.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(db_path).expanduser().resolve()
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a database file.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the folder of {self.path}: {err.strerror or err}.") from err
        self._engine: Engine = create_engine(f"sqlite:///{self.path}")
        event.listen(self._engine, "connect", _on_connect)
        event.listen(self._engine, "begin", _on_begin)
        self._write_engine = self._engine.execution_options(sqlite_begin="IMMEDIATE")
        self._lock = threading.Lock()
        try:
            self._migrate()
        except StoreError:
            self._engine.dispose()
            raise
        except (exc.DatabaseError, sqlite3.DatabaseError) as err:
            self._engine.dispose()
            raise self._error(err) from err

    # -- plumbing -----------------------------------------------------------------------------

    def _error(self, err: BaseException) -> StoreError:
        text = str(getattr(err, "orig", err) or err).strip()
        if "not a database" in text or "malformed" in text:
            return StoreError(f"{self.path} is not an SQLite database or is damaged ({text}).")
        if "locked" in text or "busy" in text:
            return StoreError(f"{self.path} is locked by another program for too long ({text}).")
        return StoreError(f"{self.path}: database error: {text}.")

    @property
    def engine(self) -> Engine:
        """The shared SQLAlchemy engine."""
        return self._engine

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """Open a session in a transaction, committed on normal exit and rolled back on error.

        Args:
            write: Take the write lock at the start (``BEGIN IMMEDIATE``) instead of on the
                first write, so two writers queue up instead of failing with "database is locked".

        Yields:
            A session for this thread only.

        Raises:
            StoreError: The database cannot be read or written.
        """
        bind = self._write_engine if write else self._engine
        try:
            with Session(bind, expire_on_commit=False) as session, session.begin():
                yield session
        except exc.IntegrityError:
            raise
        except (exc.OperationalError, exc.DatabaseError) as err:
            raise self._error(err) from err

    def close(self) -> None:
        """Close all pooled connections (the store can still be used afterwards)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _table_names(self, conn: Connection) -> set[str]:
        rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        return {r[0] for r in rows} - {"sqlite_sequence"}

    def _current_version(self, conn: Connection) -> int:
        tables = self._table_names(conn)
        if "schema_version" not in tables:
            if tables:
                names = ", ".join(sorted(tables)[:5])
                raise StoreError(f"{self.path} is an SQLite database of another program "
                                 f"(tables {names}), not a ReID Video Search library.")
            return 0
        return int(conn.exec_driver_sql("SELECT COALESCE(MAX(version), 0) FROM schema_version").scalar())

    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Bring the schema to ``target`` (tests use a lower target to build old databases)."""
        with self._write_engine.connect() as conn, conn.begin():
            version = self._current_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer version of ReID Video Search (library schema "
                    f"{version}, this version reads up to {SCHEMA_VERSION}); update the program or use "
                    "another database file.")
            if version == 0:
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL "
                                     "PRIMARY KEY, applied TEXT NOT NULL, description TEXT NOT NULL)")
            for step in range(version + 1, target + 1):
                MIGRATIONS[step].apply(conn)
                conn.execute(insert(SchemaVersionRow).values(
                    version=step, applied=_now(), description=MIGRATIONS[step].description))

    @property
    def schema_version(self) -> int:
        """Schema version of the open database."""
        with self._engine.connect() as conn:
            return self._current_version(conn)

    def integrity_check(self) -> str:
        """Run ``PRAGMA integrity_check`` and ``foreign_key_check``.

        Returns:
            ``"ok"`` or the problems found, one per line.
        """
        with self._engine.connect() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").all()]
            fks = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
        problems = [r for r in rows if r != "ok"] + [f"foreign key: {tuple(r)}" for r in fks]
        return "\n".join(problems) if problems else "ok"

    # -- videos -------------------------------------------------------------------------------

    def upsert_video(self, path: str | Path, fingerprint: str, *, fps: float, frame_count: int,
                     width: int, height: int) -> VideoRecord:
        """Add a video, or find it by fingerprint and update its path (moved or renamed file).

        Args:
            path: Where the file is now.
            fingerprint: Content fingerprint (``core.video.fingerprint``).
            fps: Frames per second.
            frame_count: Frames in the file.
            width: Frame width.
            height: Frame height.

        Returns:
            The video's record, with the new path.
        """
        path = str(Path(path).expanduser().resolve())
        with self.session(write=True) as s:
            row = s.scalars(select(VideoRow).where(VideoRow.fingerprint == fingerprint)).first()
            if row is None:
                row = VideoRow(path=path, fingerprint=fingerprint, fps=float(fps),
                               frame_count=int(frame_count),
                               duration_s=float(frame_count) / fps if fps > 0 else 0.0,
                               width=int(width), height=int(height), added=_now())
                s.add(row)
                s.flush()
            elif row.path != path:
                row.path = path
            if row.frame_count < frame_count:
                row.frame_count = int(frame_count)
                row.duration_s = float(frame_count) / row.fps if row.fps > 0 else 0.0
            return _video_record(row)

    def get_video(self, video_id: int) -> VideoRecord:
        """Return a video by id.

        Raises:
            StoreError: No such video.
        """
        with self.session() as s:
            row = s.get(VideoRow, int(video_id))
            if row is None:
                raise StoreError(f"video {video_id} is not in the library {self.path}.")
            return _video_record(row)

    def video_by_path(self, path: str | Path) -> VideoRecord | None:
        """Return the video last seen at ``path`` (absolute, resolved), or ``None``."""
        path = str(Path(path).expanduser().resolve())
        with self.session() as s:
            query = select(VideoRow).where(VideoRow.path == path).order_by(VideoRow.id.desc())
            row = s.scalars(query).first()
            return _video_record(row) if row else None

    def video_by_fingerprint(self, fingerprint: str) -> VideoRecord | None:
        """Return the video with this content fingerprint, or ``None``."""
        with self.session() as s:
            row = s.scalars(select(VideoRow).where(VideoRow.fingerprint == fingerprint)).first()
            return _video_record(row) if row else None

    def list_videos(self) -> list[VideoRecord]:
        """All videos, in the order they were added."""
        with self.session() as s:
            return [_video_record(r) for r in s.scalars(select(VideoRow).order_by(VideoRow.id))]

    def delete_video(self, video_id: int) -> None:
        """Remove a video with its runs, tracks, sightings, embeddings and hits."""
        with self.session(write=True) as s:
            s.execute(delete(VideoRow).where(VideoRow.id == int(video_id)))

    # -- runs ---------------------------------------------------------------------------------

    def create_run(self, video_id: int, *, detector_name: str, detector_sha256: str, reid_name: str,
                   reid_sha256: str, embedding_dim: int, settings: Mapping[str, Any], settings_key: str,
                   frames_total: int) -> RunRecord:
        """Start a new run (status ``running``, nothing done).

        Raises:
            StoreError: A run with this ``settings_key`` already exists for the video.
        """
        with self.session(write=True) as s:
            if s.scalar(select(RunRow.id).where(RunRow.video_id == video_id,
                                                RunRow.settings_key == settings_key)) is not None:
                raise StoreError(f"video {video_id} already has a run with settings {settings_key[:12]}.")
            row = RunRow(video_id=int(video_id), detector_name=detector_name, detector_sha256=detector_sha256,
                         reid_name=reid_name, reid_sha256=reid_sha256, embedding_dim=int(embedding_dim),
                         settings=json.dumps(dict(settings), sort_keys=True), settings_key=settings_key,
                         status="running", frames_done=0, frames_total=int(frames_total), tracks_done=0,
                         started=_now())
            s.add(row)
            s.flush()
            return _run_record(row)

    def get_run(self, run_id: int) -> RunRecord:
        """Return a run by id.

        Raises:
            StoreError: No such run.
        """
        with self.session() as s:
            row = s.execute(select(*_RUN_COLUMNS).where(RunRow.id == int(run_id))).first()
            if row is None:
                raise StoreError(f"indexing run {run_id} is not in the library {self.path}.")
            return _run_from_row(row)

    def find_run(self, video_id: int, settings_key: str) -> RunRecord | None:
        """Return the video's run with these models and settings, or ``None``."""
        with self.session() as s:
            row = s.execute(select(*_RUN_COLUMNS).where(RunRow.video_id == int(video_id),
                                                        RunRow.settings_key == settings_key)).first()
            return _run_from_row(row) if row else None

    def list_runs(self, video_id: int | None = None, *, status: str | None = None,
                  reid_sha256: str | None = None) -> list[RunRecord]:
        """Runs, oldest first, optionally of one video / with one status / one ReID model."""
        query = select(*_RUN_COLUMNS).order_by(RunRow.id)
        if video_id is not None:
            query = query.where(RunRow.video_id == int(video_id))
        if status is not None:
            query = query.where(RunRow.status == status)
        if reid_sha256 is not None:
            query = query.where(RunRow.reid_sha256 == reid_sha256)
        with self.session() as s:
            return [_run_from_row(r) for r in s.execute(query)]

    def latest_run(self, video_id: int, *, status: str | None = "done",
                   reid_sha256: str | None = None) -> RunRecord | None:
        """The newest run of a video (by default the newest finished one), or ``None``."""
        runs = self.list_runs(video_id, status=status, reid_sha256=reid_sha256)
        return runs[-1] if runs else None

    def load_run_state(self, run_id: int) -> bytes | None:
        """The resume state saved with the run's last checkpoint (``None`` if none)."""
        with self.session() as s:
            return s.scalar(select(RunRow.state).where(RunRow.id == int(run_id)))

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
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")
        with self.session(write=True) as s:
            run = s.get(RunRow, int(run_id))
            if run is None:
                raise StoreError(f"indexing run {run_id} is not in the library {self.path}.")
            self._write_tracks(s, run, tracks)
            run.frames_done = int(frames_done)
            run.state = state
            run.status = status
            run.error = error
            run.tracks_done += len(tracks)
            if frames_total is not None:
                run.frames_total = int(frames_total)
            run.finished = _now() if status in ("done", "failed", "cancelled") else None
            s.flush()
            return _run_record(run)

    @staticmethod
    def _write_tracks(s: Session, run: RunRow, tracks: Sequence[NewTrack]) -> None:
        """Insert whole tracks with three executemany statements (the caller holds the write lock).

        Track ids are given explicitly (``max(id) + 1 ...``), which is safe inside the
        ``BEGIN IMMEDIATE`` transaction, so sightings and embeddings can reference them
        without a round trip per track.
        """
        if not tracks:
            return
        for t in tracks:
            if t.vectors.size and t.vectors.shape[1] != run.embedding_dim:
                raise ValueError(f"track {t.track_id}: vectors have D={t.vectors.shape[1]}, "
                                 f"run expects {run.embedding_dim}")
        conn = s.connection()
        next_pk = int(conn.execute(select(func.coalesce(func.max(TrackRow.id), 0))).scalar()) + 1
        track_rows, sighting_rows, embedding_rows = [], [], []
        for pk, t in enumerate(tracks, start=next_pk):
            track_rows.append({"id": pk, "run_id": run.id, "track_id": int(t.track_id),
                               "first_frame": int(t.frames[0]), "last_frame": int(t.frames[-1]),
                               "first_s": float(t.times_s[0]), "last_s": float(t.times_s[-1]),
                               "n_sightings": len(t.frames)})
            sighting_rows += [
                {"track_pk": pk, "run_id": run.id, "frame": f, "time_s": ts, "x1": b[0], "y1": b[1],
                 "x2": b[2], "y2": b[3], "score": sc}
                for f, ts, b, sc in zip(t.frames.tolist(), t.times_s.tolist(), t.boxes.tolist(),
                                        t.scores.tolist(), strict=True)]
            embedding_rows += [
                {"track_pk": pk, "run_id": run.id, "frame": f,
                 "vector": np.ascontiguousarray(v, "<f4").tobytes(), "quality": q}
                for f, v, q in zip(t.emb_frames.tolist(), t.vectors, t.quality.tolist(), strict=True)]
        conn.execute(insert(TrackRow.__table__), track_rows)
        conn.execute(insert(SightingRow.__table__), sighting_rows)
        if embedding_rows:
            conn.execute(insert(EmbeddingRow.__table__), embedding_rows)

    def set_run_status(self, run_id: int, status: str, error: str | None = None) -> None:
        """Change a run's status (and error sentence) without touching its data."""
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")
        with self.session(write=True) as s:
            s.execute(update(RunRow).where(RunRow.id == int(run_id)).values(
                status=status, error=error, finished=_now() if status != "running" else None))

    def reset_run(self, run_id: int) -> None:
        """Forget a run's tracks and resume state, so it starts again from frame 0."""
        with self.session(write=True) as s:
            s.execute(delete(TrackRow).where(TrackRow.run_id == int(run_id)))
            s.execute(update(RunRow).where(RunRow.id == int(run_id)).values(
                frames_done=0, tracks_done=0, state=None, status="running", error=None, finished=None))

    def delete_run(self, run_id: int) -> None:
        """Remove a run with its tracks, sightings, embeddings and hits."""
        with self.session(write=True) as s:
            s.execute(delete(RunRow).where(RunRow.id == int(run_id)))

    # -- tracks, sightings, embeddings ---------------------------------------------------------

    def tracks(self, run_id: int) -> list[TrackRecord]:
        """The run's tracks ordered by tracker id."""
        query = (select(*_TRACK_COLUMNS).join(RunRow, RunRow.id == TrackRow.run_id)
                 .where(TrackRow.run_id == int(run_id)).order_by(TrackRow.track_id))
        with self.session() as s:
            return [_track_record(r) for r in s.execute(query)]

    def get_tracks(self, track_pks: Sequence[int] | np.ndarray) -> dict[int, TrackRecord]:
        """Tracks by database id (unknown ids are left out)."""
        pks = sorted({int(p) for p in np.asarray(track_pks).ravel()})
        out: dict[int, TrackRecord] = {}
        with self.session() as s:
            for i in range(0, len(pks), 900):
                query = (select(*_TRACK_COLUMNS).join(RunRow, RunRow.id == TrackRow.run_id)
                         .where(TrackRow.id.in_(pks[i:i + 900])))
                out.update({r.id: _track_record(r) for r in s.execute(query)})
        return out

    def sightings(self, track_pk: int) -> Sightings:
        """All boxes of one track, by frame."""
        query = (select(*_SIGHTING_COLUMNS).join(TrackRow, TrackRow.id == SightingRow.track_pk)
                 .where(SightingRow.track_pk == int(track_pk)).order_by(SightingRow.frame))
        return self._sightings_query(query)

    def sightings_in_frame(self, run_id: int, frame_lo: int, frame_hi: int | None = None) -> Sightings:
        """Every track's boxes in frames ``frame_lo..frame_hi`` (inclusive), by (frame, track id).

        Args:
            run_id: The run.
            frame_lo: First frame.
            frame_hi: Last frame (``None``: same as ``frame_lo``).
        """
        frame_hi = frame_lo if frame_hi is None else frame_hi
        query = (select(*_SIGHTING_COLUMNS).join(TrackRow, TrackRow.id == SightingRow.track_pk)
                 .where(SightingRow.run_id == int(run_id), SightingRow.frame >= int(frame_lo),
                        SightingRow.frame <= int(frame_hi))
                 .order_by(SightingRow.frame, TrackRow.track_id))
        return self._sightings_query(query)

    def _sightings_query(self, query: Any) -> Sightings:
        with self.session() as s:
            return _sightings(s.execute(query).all())

    def embedding_rows(self, run_ids: Sequence[int] | None = None, *, reid_sha256: str | None = None,
                       min_id: int | None = None, with_vectors: bool = True) -> EmbeddingRows:
        """Embedding rows ordered by id.

        Args:
            run_ids: Only these runs (``None``: all runs).
            reid_sha256: Only runs of this ReID model.
            min_id: Only ids greater than this.
            with_vectors: Load the vectors (else ``vectors`` is ``(M, 0)``).

        Returns:
            The rows; ``vectors`` is ``(M, D)`` float32.

        Raises:
            ValueError: The selected rows have different dimensions (mixed ReID models).
        """
        cols = [EmbeddingRow.id, EmbeddingRow.track_pk, EmbeddingRow.run_id, EmbeddingRow.frame,
                EmbeddingRow.quality]
        if with_vectors:
            cols.append(EmbeddingRow.vector)
        query = select(*cols).order_by(EmbeddingRow.id)
        if reid_sha256 is not None:
            query = (query.join(RunRow, RunRow.id == EmbeddingRow.run_id)
                     .where(RunRow.reid_sha256 == reid_sha256))
        if min_id is not None:
            query = query.where(EmbeddingRow.id > int(min_id))
        with self.session() as s:
            if run_ids is None:
                rows = s.execute(query).all()
            else:
                ids = sorted({int(r) for r in run_ids})
                rows = []
                for i in range(0, len(ids), 900):
                    rows += s.execute(query.where(EmbeddingRow.run_id.in_(ids[i:i + 900]))).all()
                rows.sort(key=lambda r: r.id)
        m = len(rows)
        if with_vectors and m:
            sizes = {len(r.vector) for r in rows}
            if len(sizes) != 1:
                raise ValueError("the selected embeddings have different dimensions (mixed ReID models)")
            vectors = np.frombuffer(b"".join(r.vector for r in rows), "<f4").reshape(m, sizes.pop() // 4)
            vectors = vectors.astype(np.float32)
        else:
            vectors = np.zeros((m, 0), np.float32)
        return EmbeddingRows(
            ids=_readonly(np.array([r.id for r in rows], np.int64)),
            track_pks=_readonly(np.array([r.track_pk for r in rows], np.int64)),
            run_ids=_readonly(np.array([r.run_id for r in rows], np.int64)),
            frames=_readonly(np.array([r.frame for r in rows], np.int64)),
            quality=_readonly(np.array([r.quality for r in rows], np.float32)),
            vectors=_readonly(vectors),
        )

    def track_embeddings(self, run_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of the runs' tracks, ordered by embedding id.

        Returns:
            ``(track_pks (M,) int64, vectors (M, D) float32)``.
        """
        rows = self.embedding_rows(run_ids)
        return rows.track_pks, rows.vectors

    def embedding_ids(self, run_ids: Sequence[int]) -> np.ndarray:
        """``(M,)`` int64 sorted embedding ids of the runs (the FAISS ids)."""
        return self.embedding_rows(run_ids, with_vectors=False).ids

    def embedding_stats(self, reid_sha256: str) -> tuple[int, int]:
        """``(count, max id)`` of the embeddings of one ReID model (``(0, 0)`` when none)."""
        query = (select(func.count(EmbeddingRow.id), func.coalesce(func.max(EmbeddingRow.id), 0))
                 .join(RunRow, RunRow.id == EmbeddingRow.run_id).where(RunRow.reid_sha256 == reid_sha256))
        with self.session() as s:
            count, max_id = s.execute(query).one()
        return int(count), int(max_id)

    # -- queries ------------------------------------------------------------------------------

    def save_query(self, *, photos: Sequence[str], video_ids: Sequence[int], threshold: float,
                   reid_sha256: str, hits: Sequence[tuple[int, Hit]], notes: Sequence[str] = ()) -> int:
        """Store a search and its hits.

        Args:
            photos: Photo paths (or labels such as ``"<array 0>"``).
            video_ids: Videos searched.
            threshold: Threshold asked for.
            reid_sha256: ReID model that embedded the photos.
            hits: ``(track_pk, hit)`` pairs.
            notes: Notes to keep with the search.

        Returns:
            The new query id.
        """
        with self.session(write=True) as s:
            q = QueryRow(created=_now(), photos=json.dumps([str(p) for p in photos]),
                         video_ids=json.dumps([int(v) for v in video_ids]), threshold=float(threshold),
                         reid_sha256=reid_sha256, notes=json.dumps([str(n) for n in notes]))
            s.add(q)
            s.flush()
            if hits:
                s.execute(insert(HitRow), [
                    {"query_id": q.id, "track_pk": int(pk), "score": float(h.score),
                     "best_frame": int(h.best_frame), "best_time_s": float(h.best_time_s),
                     "best_box": json.dumps([float(x) for x in h.best_box]),
                     "segments": json.dumps([[sg.start_s, sg.end_s, sg.start_frame, sg.end_frame]
                                             for sg in h.segments])}
                    for pk, h in hits])
            return q.id

    @staticmethod
    def _summary(q: QueryRow, n_hits: int) -> QuerySummary:
        return QuerySummary(id=q.id, created=q.created, photos=tuple(json.loads(q.photos)),
                            video_ids=tuple(int(v) for v in json.loads(q.video_ids)), threshold=q.threshold,
                            reid_sha256=q.reid_sha256, notes=tuple(json.loads(q.notes)), hits=n_hits)

    def load_query(self, query_id: int) -> QueryRecord:
        """A saved search with its hits, best first.

        Raises:
            StoreError: No such query.
        """
        with self.session() as s:
            q = s.get(QueryRow, int(query_id))
            if q is None:
                raise StoreError(f"query {query_id} is not in the library {self.path}.")
            rows = s.execute(
                select(HitRow, TrackRow.track_id, VideoRow.id, VideoRow.path)
                .join(TrackRow, TrackRow.id == HitRow.track_pk).join(RunRow, RunRow.id == TrackRow.run_id)
                .join(VideoRow, VideoRow.id == RunRow.video_id)
                .where(HitRow.query_id == q.id).order_by(HitRow.score.desc(), HitRow.id)).all()
            hits = []
            for h, track_id, video_id, video_path in rows:
                segments = tuple(Segment(float(a), float(b), int(c), int(d))
                                 for a, b, c, d in json.loads(h.segments))
                box = tuple(float(x) for x in json.loads(h.best_box))
                hits.append(Hit(video_id=video_id, video_path=video_path, track_id=track_id, score=h.score,
                                segments=segments, best_frame=h.best_frame, best_time_s=h.best_time_s,
                                best_box=box))  # type: ignore[arg-type]
            return QueryRecord(summary=self._summary(q, len(rows)), hits=tuple(hits),
                               track_pks=tuple(r[0].track_pk for r in rows))

    def list_queries(self, video_id: int | None = None) -> list[QuerySummary]:
        """Saved searches, newest first, optionally only those that searched ``video_id``."""
        counts = (select(HitRow.query_id, func.count(HitRow.id).label("n"))
                  .group_by(HitRow.query_id).subquery())
        query = (select(QueryRow, func.coalesce(counts.c.n, 0))
                 .outerjoin(counts, counts.c.query_id == QueryRow.id).order_by(QueryRow.id.desc()))
        with self.session() as s:
            out = [self._summary(q, n) for q, n in s.execute(query)]
        if video_id is not None:
            out = [q for q in out if int(video_id) in q.video_ids]
        return out

    def delete_query(self, query_id: int) -> None:
        """Remove a saved search and its hits."""
        with self.session(write=True) as s:
            s.execute(delete(QueryRow).where(QueryRow.id == int(query_id)))


def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Let SQLAlchemy (the "begin" hook below) issue BEGIN itself, so DDL is transactional too.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
    finally:
        cur.close()


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")
