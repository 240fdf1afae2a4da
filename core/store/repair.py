"""Salvage what is readable of a damaged library into a new one.

:func:`salvage` never writes to the damaged file (it is opened ``mode=ro``). It works
over the ORM metadata, not over a list of known tables, so tables added by later
schema versions are salvaged as well:

1. The new library is built by the real migrations up to the damaged file's schema
   version (read from its ``schema_version`` table; the latest when unreadable).
2. Every table of :data:`core.store.tables.Base.metadata`, parents before children
   (``sorted_tables``), is read with ``NOT INDEXED`` (the table's own b-tree, so a
   damaged index costs nothing) in rowid ranges of :data:`CHUNK`. A range whose read
   fails is split in halves down to single rows, so one damaged page loses only the
   rows on it (and the rows below a damaged interior page). Each row is checked
   against its columns' types and ``NOT NULL``; a row of garbage is dropped.
   ``sqlite_sequence`` is carried over, so embedding ids are still never reused.
3. The new library is migrated to the latest schema, then made consistent: rows
   whose parent row was lost are dropped (``PRAGMA foreign_key_check``, repeated
   until nothing is left), and the library's own rules are restored: a track without
   sightings or without embeddings is dropped, a track that lost some sightings gets
   its counts and first/last frames from the sightings left. A run that lost tracks
   or sightings is marked ``failed`` with a sentence saying so and without resume
   state (it stays searchable as partly indexed, and ``index`` indexes the video
   again from the start); an intact run is kept as it was, resume state included.

The caller (:mod:`core.repair`) swaps the files and rebuilds the FAISS indexes.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Float, Integer, LargeBinary, Table, Text, create_engine

from core.errors import StoreError
from core.store import migrations
from core.store.access import sqlite_uri
from core.store.database import Database
from core.store.health import header_pages
from core.store.migrations import migrate, now
from core.store.tables import (
    Base,
    EmbeddingTable,
    RunTable,
    SchemaVersionTable,
    SightingTable,
    TrackTable,
)

CHUNK = 512
"""Rowids read per statement before a failing range is split."""

EMPTY_RUN = 64
"""Ranges stepped through blindly past the largest id known (where seeks fail)."""

MAX_BLIND = 4096
"""Most ranges stepped through blindly in a row without a row read (bounds the time on garbage ids)."""


@dataclass(frozen=True)
class TableSalvage:
    """What happened to one table.

    Attributes:
        name: The table.
        counted: Rows the damaged file counted (``SELECT count(*)``, often answered from an
            intact index), ``None`` when that failed too.
        read: Rows read intact (and of the right types).
        unreadable: Rowids whose read failed (an upper bound of the rows lost: gaps between
            ids count too).
        invalid: Rows read but dropped as garbage (wrong types, ``NULL`` where none may be).
        kept: Rows in the new library once it is consistent again.
    """

    name: str
    counted: int | None
    read: int
    unreadable: int
    invalid: int
    kept: int


@dataclass(frozen=True)
class SalvageReport:
    """What :func:`salvage` saved.

    Attributes:
        source: The damaged library.
        target: The new library.
        schema_version: Schema version of the damaged file (the new one has the latest).
        tables: One entry per table, parents first.
        runs_intact: Ids of runs kept as they were.
        runs_damaged: Ids of runs that lost tracks or sightings (now ``failed``).
    """

    source: Path
    target: Path
    schema_version: int
    tables: tuple[TableSalvage, ...]
    runs_intact: tuple[int, ...]
    runs_damaged: tuple[int, ...]

    def table(self, name: str) -> TableSalvage:
        """The entry of one table (``KeyError`` when unknown)."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def rows_kept(self) -> int:
        """Rows in the new library, all tables."""
        return sum(t.kept for t in self.tables)


# --------------------------------------------------------------------------- reading


def _py_types(table: Table) -> dict[str, tuple[tuple[type, ...], bool]]:
    """``{column: (accepted Python types, nullable)}`` from the ORM column types."""
    out = {}
    for col in table.columns:
        kind = col.type
        types: tuple[type, ...]
        if isinstance(kind, Integer):
            types = (int,)
        elif isinstance(kind, Float):
            types = (float, int)
        elif isinstance(kind, LargeBinary):
            types = (bytes,)
        elif isinstance(kind, Text):
            types = (str,)
        else:
            types = (object,)
        out[col.name] = (types, bool(col.nullable))
    return out


def _valid(row: Sequence[Any], checks: list[tuple[tuple[type, ...], bool]]) -> bool:
    for value, (types, nullable) in zip(row, checks, strict=True):
        if value is None:
            if not nullable:
                return False
        elif not isinstance(value, types) or isinstance(value, bool):
            return False
    return True


def _scalar(con: sqlite3.Connection, sql: str) -> Any:
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.DatabaseError:
        return None


class _Reader:
    """Reads one table of the damaged file in rowid ranges, splitting ranges that fail.

    After an empty range the next rowid is found by a b-tree seek, so gaps in the ids (a
    deleted video) cost one statement. Where seeks fail too (a damaged right edge of the
    tree), ranges are stepped through blindly up to the largest id known (``max(rowid)``
    or the ``sqlite_sequence`` value) and then :data:`EMPTY_RUN` ranges more, at most
    :data:`MAX_BLIND` ranges in a row without a row read.
    """

    def __init__(self, con: sqlite3.Connection, name: str, columns: list[str]) -> None:
        self.con, self.name = con, name
        cols = ", ".join(f'"{c}"' for c in columns)
        self.sql = f'SELECT {cols} FROM "{name}" NOT INDEXED WHERE rowid BETWEEN ? AND ? ORDER BY rowid'
        self.seek = f'SELECT min(rowid) FROM "{name}" NOT INDEXED WHERE rowid > ?'
        self.unreadable = 0

    def _read(self, lo: int, hi: int) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(self.sql, (lo, hi)).fetchall()
        except sqlite3.DatabaseError:
            if lo == hi:
                self.unreadable += 1
                return []
            mid = (lo + hi) // 2
            return self._read(lo, mid) + self._read(mid + 1, hi)

    def rows(self, seq_hint: int | None) -> list[tuple[Any, ...]]:
        top = _scalar(self.con, f'SELECT max(rowid) FROM "{self.name}"')
        low = _scalar(self.con, f'SELECT min(rowid) FROM "{self.name}"')
        known = max(top if isinstance(top, int) else 0, seq_hint or 0)
        lo = int(low) if isinstance(low, int) and low < 1 else 1
        out: list[tuple[Any, ...]] = []
        blind = 0
        while blind < MAX_BLIND and (lo <= known or blind < EMPTY_RUN):
            hi = lo + CHUNK - 1
            got = self._read(lo, hi)
            out += got
            if got:
                blind, lo = 0, hi + 1
                continue
            try:
                after = self.con.execute(self.seek, (hi,)).fetchone()[0]
            except sqlite3.DatabaseError:
                blind, lo = blind + 1, hi + 1
                continue
            if after is None:
                break
            blind, lo = 0, int(after)
        return out


# --------------------------------------------------------------------------- writing


def _source_version(con: sqlite3.Connection) -> int:
    version = _scalar(con, f'SELECT max(version) FROM "{SchemaVersionTable.__tablename__}"')
    if version is None:
        return migrations.SCHEMA_VERSION
    if int(version) > migrations.SCHEMA_VERSION:
        raise StoreError("the damaged library was written by a newer version of ReID Video Search "
                         f"(library schema {version}, this version knows up to "
                         f"{migrations.SCHEMA_VERSION}); repair it with that version, so that nothing it "
                         "stores is lost.")
    return int(version)


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")').fetchall()]
    except sqlite3.DatabaseError:
        return []


def _build_target(target: Path, version: int) -> None:
    """A new library at ``version`` built by the real migrations."""
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.begin() as conn:
            migrate(conn, target, version)
    finally:
        engine.dispose()


def _drop_orphans(con: sqlite3.Connection) -> dict[str, int]:
    """Delete rows whose parent row is missing, until none is left; ``{table: rows deleted}``."""
    dropped: dict[str, int] = {}
    while rows := con.execute("PRAGMA foreign_key_check").fetchall():
        by_table: dict[str, set[int]] = {}
        for table, rowid, _parent, _fk in rows:
            by_table.setdefault(table, set()).add(int(rowid))
        for table, rowids in by_table.items():
            con.executemany(f'DELETE FROM "{table}" WHERE rowid = ?', [(r,) for r in rowids])
            dropped[table] = dropped.get(table, 0) + len(rowids)
    return dropped


def _restore_rules(con: sqlite3.Connection) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tracks whole again, damaged runs marked (see the module notes); returns (intact, damaged) run ids."""
    t, s, e, r = (x.__tablename__ for x in (TrackTable, SightingTable, EmbeddingTable, RunTable))
    damaged = {row[0] for row in con.execute(f"""
        SELECT DISTINCT run_id FROM {t} WHERE
            NOT EXISTS (SELECT 1 FROM {s} WHERE {s}.track_pk = {t}.id)
            OR NOT EXISTS (SELECT 1 FROM {e} WHERE {e}.track_pk = {t}.id)
            OR n_sightings != (SELECT COUNT(*) FROM {s} WHERE {s}.track_pk = {t}.id)""")}
    con.execute(f"""DELETE FROM {t} WHERE NOT EXISTS (SELECT 1 FROM {s} WHERE {s}.track_pk = {t}.id)
                    OR NOT EXISTS (SELECT 1 FROM {e} WHERE {e}.track_pk = {t}.id)""")
    con.execute(f"""UPDATE {t} SET
        n_sightings = (SELECT COUNT(*) FROM {s} WHERE track_pk = {t}.id),
        first_frame = (SELECT MIN(frame) FROM {s} WHERE track_pk = {t}.id),
        last_frame = (SELECT MAX(frame) FROM {s} WHERE track_pk = {t}.id),
        first_s = (SELECT time_s FROM {s} WHERE track_pk = {t}.id ORDER BY frame LIMIT 1),
        last_s = (SELECT time_s FROM {s} WHERE track_pk = {t}.id ORDER BY frame DESC LIMIT 1)
        WHERE n_sightings != (SELECT COUNT(*) FROM {s} WHERE track_pk = {t}.id)""")
    counts = dict(con.execute(f"SELECT run_id, COUNT(*) FROM {t} GROUP BY run_id").fetchall())
    intact = []
    for run_id, tracks_done in con.execute(f"SELECT id, tracks_done FROM {r} ORDER BY id").fetchall():
        have = counts.get(run_id, 0)
        if have < tracks_done or run_id in damaged:
            damaged.add(run_id)
            con.execute(f"UPDATE {r} SET status = 'failed', state = NULL, tracks_done = ?, finished = ?, "
                        "error = ? WHERE id = ?",
                        (have, now(), f"repair: the damaged library lost {tracks_done - have} of its "
                         f"{tracks_done} tracks or some of their sightings; index the video again to "
                         "get them back", run_id))
        else:
            intact.append(run_id)
    return tuple(intact), tuple(sorted(damaged))


def _padded_copy(source: Path, target: Path) -> Path | None:
    """A copy of a cut-short database padded with zero pages to the size its header counts.

    SQLite refuses to read the schema of a file shorter than its tables' root pages; padded,
    the pages that were cut off read as damaged pages and everything before them is readable.
    Returns ``None`` when ``source`` is not cut short.
    """
    found = header_pages(source)
    if found is None or found[0] < 512:
        return None
    page_size, pages = found
    size = source.stat().st_size
    need = max((pages or 0) * page_size, -(-size // page_size) * page_size)
    if need <= size:
        return None
    copy = target.with_name(target.name + ".padded")
    shutil.copyfile(source, copy)
    with copy.open("r+b") as fh:
        fh.truncate(need)
    wal = source.with_name(source.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    return copy


def salvage(source: Path, target: Path, *, progress: Callable[[str], None] | None = None) -> SalvageReport:
    """Copy what is readable of the library ``source`` into a new library ``target``.

    Args:
        source: The damaged library (only read, ``mode=ro``).
        target: Where the new library goes (must not exist).
        progress: Called with one line per table as it is done.

    Returns:
        What was saved.

    Raises:
        StoreError: ``source`` is not a library of this or an older version, or ``target`` exists.
    """
    if target.exists():
        raise StoreError(f"{target} exists already; move it away before repairing into it.")
    padded = _padded_copy(source, target)
    try:
        version, read = _salvage_rows(padded or source, target, progress)
    finally:
        if padded is not None:
            for suffix in ("", "-wal", "-shm"):
                padded.with_name(padded.name + suffix).unlink(missing_ok=True)
    Database(target).close()  # migrates to the latest schema (and checks the new file)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        dst.execute("PRAGMA foreign_keys = ON")
        dst.execute("BEGIN IMMEDIATE")
        _drop_orphans(dst)
        intact, damaged = _restore_rules(dst)
        _drop_orphans(dst)
        dst.execute("COMMIT")
        kept = {name: int(dst.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]) for name in read}
    finally:
        dst.close()
    tables = tuple(TableSalvage(name, counted, n_read, unreadable, invalid, kept[name])
                   for name, (counted, n_read, unreadable, invalid) in read.items())
    return SalvageReport(source=source, target=target, schema_version=version, tables=tables,
                         runs_intact=intact, runs_damaged=damaged)


def _salvage_rows(source: Path, target: Path, progress: Callable[[str], None] | None,
                  ) -> tuple[int, dict[str, tuple[int | None, int, int, int]]]:
    """Build ``target`` at the schema version of ``source`` and copy every readable row into it."""
    src = sqlite3.connect(sqlite_uri(source, read_only=True), uri=True)
    try:
        version = _source_version(src)
        _build_target(target, version)
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            dst.execute("PRAGMA foreign_keys = OFF")
            dst.execute("BEGIN")
            read = _copy_tables(src, dst, progress)
            dst.execute("COMMIT")
        finally:
            dst.close()
    finally:
        src.close()
    return version, read


def _copy_tables(src: sqlite3.Connection, dst: sqlite3.Connection, progress: Callable[[str], None] | None,
                 ) -> dict[str, tuple[int | None, int, int, int]]:
    """Copy every table both files have, parents first; ``{table: (counted, read, unreadable, invalid)}``."""
    seq = {}
    try:
        seq = dict(src.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    except sqlite3.DatabaseError:
        pass
    out: dict[str, tuple[int | None, int, int, int]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name == SchemaVersionTable.__tablename__:
            continue
        have = set(_columns(src, table.name))
        columns = [c for c in _columns(dst, table.name) if c in have]
        if not columns:
            continue
        checks = _py_types(table)
        reader = _Reader(src, table.name, columns)
        rows = reader.rows(seq.get(table.name))
        good = [row for row in rows if _valid(row, [checks.get(c, ((object,), True)) for c in columns])]
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        dst.executemany(f'INSERT OR IGNORE INTO "{table.name}" ({names}) VALUES ({marks})', good)
        counted = _scalar(src, f'SELECT COUNT(*) FROM "{table.name}"')
        out[table.name] = (counted, len(good), reader.unreadable, len(rows) - len(good))
        if progress is not None:
            progress(f"{table.name}: {len(good)} rows read" +
                     (f", {reader.unreadable} unreadable" if reader.unreadable else ""))
    for name, value in seq.items():  # ids of AUTOINCREMENT tables stay never reused
        if isinstance(value, int):
            dst.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (value, name))
    return out
