"""Schema migrations: frozen DDL for each schema version, applied in order in one transaction.

:data:`MIGRATIONS` maps each schema version to the step that upgrades a database
from the version before. A step's DDL is frozen once released (libraries of that
version exist): a schema change is a new step, never an edit of an old one. The
latest schema is described by the ORM classes of :mod:`core.store.tables`; a test
checks that migrating from nothing gives the same columns as ``create_all``.

Opening an older library applies the missing steps in order inside one
transaction (a failed step leaves the library as it was). A new database is built
by the same path (0 -> 1 -> 2 ...), so the steps run every time a library is created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, insert

from core.errors import StoreError
from core.store.tables import SchemaVersionTable


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


def _migrate_3(conn: Connection) -> None:
    _run_script(conn, """
    CREATE TABLE linkings (
        run_id INTEGER NOT NULL PRIMARY KEY REFERENCES index_runs (id) ON DELETE CASCADE,
        created TEXT NOT NULL,
        settings TEXT NOT NULL,
        people INTEGER NOT NULL,
        elapsed_s FLOAT NOT NULL);
    CREATE TABLE track_people (
        track_pk INTEGER NOT NULL PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
        run_id INTEGER NOT NULL REFERENCES index_runs (id) ON DELETE CASCADE,
        person INTEGER NOT NULL);
    CREATE INDEX ix_track_people_run ON track_people (run_id, person);
    CREATE TABLE marks (
        id INTEGER NOT NULL PRIMARY KEY,
        query_id INTEGER NOT NULL REFERENCES queries (id) ON DELETE CASCADE,
        track_pk INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
        mark TEXT NOT NULL,
        created TEXT NOT NULL,
        CONSTRAINT uq_mark_query_track UNIQUE (query_id, track_pk),
        CONSTRAINT ck_mark CHECK (mark IN ('confirmed', 'rejected')));
    ALTER TABLE queries ADD COLUMN vector BLOB;
    ALTER TABLE queries ADD COLUMN like_tracks TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE hits ADD COLUMN track_pks TEXT NOT NULL DEFAULT '[]'
    """)


def _migrate_4(conn: Connection) -> None:
    _run_script(conn, """
    ALTER TABLE videos ADD COLUMN kind TEXT NOT NULL DEFAULT 'video';
    CREATE TABLE photos (
        video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
        frame INTEGER NOT NULL,
        path TEXT NOT NULL,
        taken TEXT,
        time_s FLOAT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        PRIMARY KEY (video_id, frame))
    """)


MIGRATIONS: dict[int, Migration] = {
    1: Migration("videos, index runs, tracks, sightings, embeddings, queries, hits", _migrate_1),
    2: Migration("resume checkpoints (index_runs.state, tracks_done) and query notes", _migrate_2),
    3: Migration("people (linkings, track_people), marks, query vectors, the tracks of a hit", _migrate_3),
    4: Migration("photo collections (videos.kind, photos: each photo's file, time and size)", _migrate_4),
}
"""Schema version -> the step that upgrades a database from the version before."""

SCHEMA_VERSION = max(MIGRATIONS)
"""Schema version this code writes and reads (the last migration)."""


def now() -> str:
    """The current UTC time as ISO text (seconds), as the library stores times."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _table_names(conn: Connection) -> set[str]:
    rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").all()
    return {r[0] for r in rows} - {"sqlite_sequence"}


def current_version(conn: Connection, path: Path) -> int:
    """Schema version of the database on ``conn`` (0 for an empty file).

    Raises:
        StoreError: The database holds tables of another program.
    """
    tables = _table_names(conn)
    if "schema_version" not in tables:
        if tables:
            names = ", ".join(sorted(tables)[:5])
            raise StoreError(f"{path} is an SQLite database of another program "
                             f"(tables {names}), not a ReID Video Search library.")
        return 0
    return int(conn.exec_driver_sql("SELECT COALESCE(MAX(version), 0) FROM schema_version").scalar())


def migrate(conn: Connection, path: Path, target: int | None = None) -> None:
    """Bring the schema on ``conn`` (inside the caller's transaction) to version ``target``.

    Args:
        conn: Connection in a write transaction.
        path: The database file, for error messages.
        target: Version to reach (default: :data:`SCHEMA_VERSION`; tests use a higher one with an
            extra step).

    Raises:
        StoreError: The database is newer than this program or belongs to another program.
    """
    target = SCHEMA_VERSION if target is None else target
    version = current_version(conn, path)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer version of ReID Video Search (library schema "
            f"{version}, this version reads up to {SCHEMA_VERSION}); update the program or use "
            "another database file.")
    if version == 0:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL "
                             "PRIMARY KEY, applied TEXT NOT NULL, description TEXT NOT NULL)")
    for step in range(version + 1, target + 1):
        MIGRATIONS[step].apply(conn)
        conn.execute(insert(SchemaVersionTable).values(
            version=step, applied=now(), description=MIGRATIONS[step].description))
