"""The library database: videos, indexing runs, tracks, sightings, embeddings, saved queries, hits.

SQLite through the SQLAlchemy 2.x ORM. One :class:`Store` (one engine) is shared
by all threads of a process; its methods open and close their own short session
and return frozen dataclasses and read-only numpy arrays, so nothing outside this
package sees a table, a session or SQL.

The package:

* :mod:`core.store.tables`: the ORM classes, the one description of the latest
  schema (:data:`SCHEMA_VERSION`), one class per table.
* :mod:`core.store.migrations`: :data:`MIGRATIONS`, the frozen DDL of each schema
  version; opening an older library applies the missing steps in one transaction.
* :mod:`core.store.records`: the records the store returns and takes, with their
  row converters.
* :mod:`core.store.database`: the connection (WAL, foreign keys, sessions, error
  sentences) and :func:`~core.store.database.select_in` for long id lists.
* :mod:`core.store.videos`, :mod:`core.store.tracks`, :mod:`core.store.people`,
  :mod:`core.store.queries`: the :class:`Store` methods, by table group.
* :mod:`core.store.health` (the check when a library is opened), :mod:`core.store.access`
  (read-only opening) and :mod:`core.store.repair` (salvage of a damaged library into a new one;
  :mod:`core.repair` swaps the files and rebuilds the FAISS index).
"""

from __future__ import annotations

from core.store.database import Database
from core.store.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from core.store.people import PeopleStore
from core.store.queries import QueryStore, hit_mark, mark_rank
from core.store.records import (
    LinkingRecord,
    NewTrack,
    PhotoRecord,
    QueryRecord,
    QuerySummary,
    RunRecord,
    Sightings,
    StoredEmbeddings,
    TrackRecord,
    VideoRecord,
)
from core.store.tables import MARKS, RUN_STATUSES, VIDEO_KINDS, Base
from core.store.tracks import TrackStore
from core.store.videos import VideoStore

__all__ = [
    "MARKS", "MIGRATIONS", "RUN_STATUSES", "SCHEMA_VERSION", "VIDEO_KINDS", "Base", "Database",
    "LinkingRecord", "Migration", "NewTrack", "PhotoRecord", "QueryRecord", "QuerySummary", "RunRecord",
    "Sightings", "Store", "StoredEmbeddings", "TrackRecord", "VideoRecord", "hit_mark", "mark_rank",
]


class Store(VideoStore, TrackStore, PeopleStore, QueryStore):
    """The library database (thread-safe: one engine, one short session per call).

    Videos and runs: :class:`~core.store.videos.VideoStore`; tracks, sightings and
    embeddings: :class:`~core.store.tracks.TrackStore`; people (linked tracks):
    :class:`~core.store.people.PeopleStore`; saved searches and marks:
    :class:`~core.store.queries.QueryStore`; the connection: :class:`~core.store.database.Database`.

    Args:
        db_path: SQLite file; created (with its folder) when missing, migrated when older.

    Raises:
        DamagedLibraryError: The file is damaged (``python -m core repair`` salvages it).
        StoreError: The file is not an SQLite database, belongs to another program, or
            was written by a newer version of this program.
    """
