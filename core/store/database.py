"""The connection to one library file: engine, pragmas, sessions, error sentences, chunked ``IN`` queries.

SQLite in WAL mode (readers never wait for the indexing writer), ``foreign_keys=ON``
(deleting a video removes its runs, tracks, sightings, embeddings and hits),
``synchronous=NORMAL`` (a power cut may lose the last commit, never corrupt the
file), ``busy_timeout`` 30 s. One engine is shared by all threads of a process;
each call opens its own short session. SQLAlchemy issues ``BEGIN`` itself (the
``begin`` hook), so DDL is transactional too and writers can take the write lock
up front (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, Engine, Row, Select, create_engine, event, exc
from sqlalchemy.orm import Session

from core.errors import StoreError
from core.store.migrations import SCHEMA_VERSION, current_version, migrate

_D = TypeVar("_D", bound="Database")

IN_CHUNK = 900
"""Most ids in one ``IN (...)`` list (SQLite builds before 3.32 allow 999 parameters per statement)."""


def select_in(session: Session, query: Select[Any], column: Any,
              ids: Iterable[int] | np.ndarray) -> list[Row[Any]]:
    """Run ``query`` for the rows whose ``column`` is one of ``ids``, :data:`IN_CHUNK` ids per statement.

    Args:
        session: Open session.
        query: A select without the id condition (its ``order_by`` holds within each chunk).
        column: The column matched against ``ids``.
        ids: Integer ids (any order, repeats allowed); chunks go in increasing id order.

    Returns:
        The rows of all chunks, chunk after chunk.
    """
    values = ids.ravel().tolist() if isinstance(ids, np.ndarray) else ids
    keys = sorted({int(i) for i in values})
    rows: list[Row[Any]] = []
    for a in range(0, len(keys), IN_CHUNK):
        rows += session.execute(query.where(column.in_(keys[a:a + IN_CHUNK]))).all()
    return rows


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


class Database:
    """An open library file (the base of :class:`core.store.Store`; thread-safe).

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
        try:
            self._migrate()
        except StoreError:
            self._engine.dispose()
            raise
        except (exc.DatabaseError, sqlite3.DatabaseError) as err:
            self._engine.dispose()
            raise self._error(err) from err

    def _error(self, err: BaseException) -> StoreError:
        """One sentence naming the file for a database error."""
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
    def _session(self, *, write: bool = False) -> Iterator[Session]:
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

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Bring the schema to ``target`` in one transaction (tests add a step and use a higher target)."""
        with self._write_engine.connect() as conn, conn.begin():
            migrate(conn, self.path, target)

    @property
    def schema_version(self) -> int:
        """Schema version of the open database."""
        with self._engine.connect() as conn:
            return current_version(conn, self.path)

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
