"""The library's tables as SQLAlchemy ORM classes: the one description of the latest schema.

Each class is one table; its docstring says what a row is. ``track_pk`` is the
database id of a ``tracks`` row; ``track_id`` is the tracker's id, unique within
one run only. ``embeddings.id`` is ``AUTOINCREMENT`` and never reused, so
``(count, max id)`` of the embeddings of a ReID model changes whenever that set
changes: :mod:`core.index` relies on it to detect a stale FAISS file.

Only :mod:`core.store` uses these classes; everything else gets records
(:mod:`core.store.records`) from :class:`core.store.Store`. The tables are built
by the migrations (:mod:`core.store.migrations`), never by ``create_all``; a
test checks that both give the same columns.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RUN_STATUSES = ("running", "cancelled", "done", "failed")
"""Possible values of ``index_runs.status``."""

MARKS = ("confirmed", "rejected")
"""Possible values of ``marks.mark``: the user said a hit is (not) the person searched for."""


class Base(DeclarativeBase):
    """Declarative base of the library tables."""


class SchemaVersionTable(Base):
    """One applied migration."""

    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)


VIDEO_KINDS = ("video", "photos")
"""Values of ``videos.kind``: a video file or an image sequence (``video``), or a photo collection."""


class VideoTable(Base):
    """A video file, image sequence or photo collection (``kind``), known by its content's fingerprint."""

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
    kind: Mapped[str] = mapped_column(Text, default="video")


class PhotoTable(Base):
    """One photo of a photo collection: its rank (the ``frame`` of its sightings), file, time and size.

    ``path`` is relative to the collection's ``videos.path`` (``""`` when the collection is one
    image file); ``taken`` the EXIF ``DateTimeOriginal`` as ISO text (``NULL`` without one);
    ``width``/``height`` the upright photo's size.
    """

    __tablename__ = "photos"
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    frame: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    taken: Mapped[str | None] = mapped_column(Text, nullable=True)
    time_s: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)


class RunTable(Base):
    """One indexing run of a video with given models and settings (unique per video and settings)."""

    __tablename__ = "index_runs"
    __table_args__ = (
        UniqueConstraint("video_id", "settings_key", name="uq_run_video_settings"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in RUN_STATUSES)})", name="ck_run_status"),
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


class TrackTable(Base):
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


class SightingTable(Base):
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


class EmbeddingTable(Base):
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


class QueryTable(Base):
    """A saved search (photos, videos and ReID model as JSON / text).

    ``vector`` is the query vector made from the photos (float32 bytes; ``NULL`` in searches
    saved before schema 3), so the search can be re-ranked without the photos;
    ``like_tracks`` the ``track_pk`` list whose embeddings made it ("find similar").
    """

    __tablename__ = "queries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[str] = mapped_column(Text)
    photos: Mapped[str] = mapped_column(Text)
    video_ids: Mapped[str] = mapped_column(Text)
    threshold: Mapped[float] = mapped_column(Float)
    reid_sha256: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, default="[]")
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    like_tracks: Mapped[str] = mapped_column(Text, default="[]")


class HitTable(Base):
    """One hit of a saved search: a person in one video (box and segments as JSON).

    ``track_pk`` is the best-matching track, ``track_pks`` every track of the person (JSON;
    ``[]`` in hits saved before schema 3, which were one track each).
    """

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
    track_pks: Mapped[str] = mapped_column(Text, default="[]")


class LinkingTable(Base):
    """The tracks of one finished run linked into people (``core.linking``): when and with what settings."""

    __tablename__ = "linkings"
    run_id: Mapped[int] = mapped_column(ForeignKey("index_runs.id", ondelete="CASCADE"), primary_key=True)
    created: Mapped[str] = mapped_column(Text)
    settings: Mapped[str] = mapped_column(Text)
    people: Mapped[int] = mapped_column(Integer)
    elapsed_s: Mapped[float] = mapped_column(Float)


class TrackPersonTable(Base):
    """The person a track belongs to: tracks of one run with the same ``person`` are one person.

    ``person`` is the smallest tracker id among the person's tracks. Every track of a linked
    run has a row (a person seen once is a group of one).
    """

    __tablename__ = "track_people"
    __table_args__ = (Index("ix_track_people_run", "run_id", "person"),)
    track_pk: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("index_runs.id", ondelete="CASCADE"))
    person: Mapped[int] = mapped_column(Integer)


class MarkTable(Base):
    """The user's mark on a track for one saved search: the person searched for, or not."""

    __tablename__ = "marks"
    __table_args__ = (
        UniqueConstraint("query_id", "track_pk", name="uq_mark_query_track"),
        CheckConstraint(f"mark IN ({', '.join(repr(m) for m in MARKS)})", name="ck_mark"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"))
    track_pk: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    mark: Mapped[str] = mapped_column(Text)
    created: Mapped[str] = mapped_column(Text)
