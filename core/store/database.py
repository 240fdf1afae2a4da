"""The connection to one library file: engine, pragmas, sessions, error sentences, chunked ``IN`` queries.

SQLite in WAL mode (readers never wait for the indexing writer), ``foreign_keys=ON``
(deleting a video removes its runs, tracks, sightings, embeddings and hits),
``synchronous=NORMAL`` (a power cut may lose the last commit, never corrupt the
file), ``busy_timeout`` 30 s (``$REID_BUSY_TIMEOUT_S`` overrides). One engine is
shared by all threads of a process; each call opens its own short session.
SQLAlchemy issues ``BEGIN`` itself (the ``begin`` hook), so DDL is transactional too
and writers can take the write lock up front (``BEGIN IMMEDIATE``).

Opening a library first checks it (:mod:`core.store.health`): a damaged file raises
:class:`~core.errors.DamagedLibraryError` before anything is read or written. A
library this process cannot write (:mod:`core.store.access`) is opened read-only:
everything reads as usual, and any write raises
:class:`~core.errors.ReadOnlyLibraryError` saying why, before touching the file.
Every SQLite error becomes one sentence naming the file (:meth:`Database._error`):
damaged, read-only, busy for longer than the busy timeout, or the disk full.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, Engine, Row, Select, create_engine, event, exc
from sqlalchemy.orm import Session

from core.errors import ReadOnlyLibraryError, StoreError
from core.store import health, migrations
from core.store.access import sqlite_uri, write_block
from core.store.migrations import current_version, migrate

_D = TypeVar("_D", bound="Database")

DEFAULT_BUSY_TIMEOUT_S = 30.0
"""How long a statement waits for another program's write lock before it fails (``$REID_BUSY_TIMEOUT_S``)."""

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


def default_busy_timeout_s() -> float:
    """The busy timeout in seconds: ``$REID_BUSY_TIMEOUT_S`` or :data:`DEFAULT_BUSY_TIMEOUT_S`."""
    try:
        value = float(os.environ.get("REID_BUSY_TIMEOUT_S", DEFAULT_BUSY_TIMEOUT_S))
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT_S
    return value if value >= 0 else DEFAULT_BUSY_TIMEOUT_S


def _on_connect(dbapi_conn: sqlite3.Connection, _record: object, *, timeout_s: float,
                read_only: bool) -> None:
    # Let SQLAlchemy (the "begin" hook below) issue BEGIN itself, so DDL is transactional too.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        if not read_only:
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
        read_only: Open it read-only even if it could be written (it always is when this
            process cannot write it, see :func:`core.store.access.write_block`).
        busy_timeout_s: Seconds to wait for another program's write lock (default
            :func:`default_busy_timeout_s`).

    Attributes:
        path: The database file (absolute).
        read_only_reason: Why the library is read-only (``None`` when it can be written).
        check_s: Seconds the health check took at open (``None``: the file was unchanged
            since its last clean check, or is new).

    Raises:
        DamagedLibraryError: The file is damaged (nothing is written to it).
        StoreError: The file is not an SQLite database, belongs to another program, was
            written by a newer version of this program, or is read-only and would need an
            upgrade or does not exist yet.
    """

    def __init__(self, db_path: str | Path, *, read_only: bool = False,
                 busy_timeout_s: float | None = None) -> None:
        self.path = Path(db_path).expanduser().resolve()
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a database file.")
        self.busy_timeout_s = default_busy_timeout_s() if busy_timeout_s is None else float(busy_timeout_s)
        self.read_only_reason: str | None = write_block(self.path) or (
            "it was opened read-only" if read_only else None)
        exists = self.path.exists() and self.path.stat().st_size > 0
        if self.read_only_reason and not exists:
            raise StoreError(f"{self.path}: no library can be created here ({self.read_only_reason}).")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the folder of {self.path}: {err.strerror or err}.") from err
        uri = sqlite_uri(self.path, read_only=self.read_only_reason is not None)
        self.check_s = (health.check_library(self.path, sqlite_uri(self.path, read_only=True),
                                             timeout_s=self.busy_timeout_s) if exists else None)
        connect = functools.partial(sqlite3.connect, uri, uri=True, check_same_thread=False,
                                    timeout=self.busy_timeout_s)
        self._engine: Engine = create_engine(f"sqlite:///{self.path}", creator=connect)
        event.listen(self._engine, "connect", functools.partial(
            _on_connect, timeout_s=self.busy_timeout_s, read_only=self.read_only_reason is not None))
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

    @property
    def writable(self) -> bool:
        """Whether this process can write the library."""
        return self.read_only_reason is None

    def _read_only_error(self) -> ReadOnlyLibraryError:
        return ReadOnlyLibraryError(
            f"{self.path} is read-only ({self.read_only_reason}), so nothing can be stored in it (no "
            "indexing, no saved searches); copy it to a writable folder, or choose another library file.")

    def _error(self, err: BaseException) -> StoreError:
        """One sentence naming the file for a database error."""
        text = str(getattr(err, "orig", err) or err).strip()
        if "malformed" in text or "corrupt" in text:
            return health.damaged_error(self.path, [text])
        if "not a database" in text:
            return StoreError(f"{self.path} is not an SQLite database or is damaged ({text}).")
        if "readonly" in text or "read-only" in text:
            self.read_only_reason = self.read_only_reason or f"SQLite: {text}"
            return self._read_only_error()
        if "locked" in text or "busy" in text:
            return StoreError(f"{self.path} is busy: another program has held its write lock for more than "
                              f"{self.busy_timeout_s:g} s ({text}); try again when it has finished.")
        if "disk is full" in text or "disk I/O error" in text:
            return StoreError(f"{self.path}: cannot write to the library ({text}): the disk is full, the "
                              "file reached its size limit or the drive failed; free some space and run "
                              "the same command again, it goes on from the last saved point.")
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
            ReadOnlyLibraryError: ``write`` on a read-only library (nothing is touched).
            StoreError: The database cannot be read or written (one sentence, see :meth:`_error`).
        """
        if write and self.read_only_reason is not None:
            raise self._read_only_error()
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

    def _migrate(self, target: int | None = None) -> None:
        """Bring the schema to ``target`` (default: the latest) in one transaction.

        A library already at ``target`` is only read (opening it never waits for a writer);
        otherwise the steps run under the write lock, checked again inside it.
        """
        target = migrations.SCHEMA_VERSION if target is None else target
        with self._engine.connect() as conn:
            version = current_version(conn, self.path)
        if version == target:
            return
        if self.read_only_reason is not None:
            if version > migrations.SCHEMA_VERSION:
                with self._engine.connect() as conn:
                    migrate(conn, self.path, target)  # raises the "newer version" sentence, writes nothing
            raise StoreError(
                f"{self.path} is read-only ({self.read_only_reason}) and was written by an older version "
                f"of ReID Video Search (library schema {version}, this version needs {target}), which "
                "cannot be upgraded in place; copy it to a writable folder and open the copy.")
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
