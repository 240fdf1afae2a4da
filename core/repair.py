"""Repair a damaged library: what ``python -m core repair`` and the window's Repair run.

:func:`repair_library` checks the library (header and SQLite's ``quick_check``, see
:mod:`core.store.health`); a healthy one is left alone. Otherwise it salvages every
readable row into a new file beside it (:func:`core.store.repair.salvage`; the
damaged file is only read), then swaps the files: the damaged database (with its
``-wal`` and ``-shm``) is renamed ``<name>.damaged-<time>`` and kept, never deleted;
the new library takes the original name, so every setting that names it still
works. The FAISS files of the old library are caches of it: they are removed and
rebuilt from the new library, one per ReID model and index kind that was there.

Repair refuses while a video is being indexed into the library (its run lock is
held, see :mod:`core.pipeline`); close other windows using the library first, since
a program that still has the old file open keeps writing to the renamed copy.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import filelock

from core.errors import BusyError, ReadOnlyLibraryError, StoreError
from core.index import INDEX_KINDS, EmbeddingIndex
from core.store import Store
from core.store.access import sqlite_uri, write_block
from core.store.health import find_problems, stamp_path
from core.store.repair import SalvageReport, salvage

_SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True)
class RepairReport:
    """What :func:`repair_library` did.

    Attributes:
        library: The library file (now the repaired one; unchanged when it was healthy).
        problems: What the check found in the damaged file (empty: it was healthy, nothing done).
        kept: Where the damaged file is kept (``None`` when nothing was done).
        salvage: Rows saved per table and runs kept intact or marked damaged (``None``: nothing done).
        indexes: FAISS files rebuilt.
    """

    library: Path
    problems: tuple[str, ...]
    kept: Path | None = None
    salvage: SalvageReport | None = None
    indexes: tuple[Path, ...] = ()


@contextlib.contextmanager
def _no_indexer(db: Path) -> Iterator[None]:
    """Hold every run lock of the library while repairing (:class:`BusyError` when one is taken)."""
    folder = db.with_name(db.name + ".locks")
    held = []
    try:
        for path in sorted(folder.glob("*.lock")) if folder.is_dir() else []:
            lock = filelock.FileLock(path, timeout=0)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise BusyError(f"{db}: a video is being indexed into it right now; let that finish or stop "
                                "it, then repair.") from None
            held.append(lock)
        yield
    finally:
        for lock in held:
            lock.release()


def _faiss_files(db: Path) -> list[tuple[Path, str]]:
    """The FAISS files of ``db`` (with their sidecars left out) and their kinds."""
    out = []
    pattern = re.compile(re.escape(db.name) + r"\.[0-9a-f]{16}(?:\.(\w+))?\.faiss$")
    for path in db.parent.glob(db.name + ".*.faiss"):
        if m := pattern.match(path.name):
            out.append((path, m.group(1) or "flat"))
    return out


def _move(src: Path, dst: Path) -> None:
    """Move a database with its ``-wal``/``-shm`` files."""
    for suffix in _SIDE_FILES:
        side = src.with_name(src.name + suffix)
        if side.exists():
            os.replace(side, dst.with_name(dst.name + suffix))
    os.replace(src, dst)


def repair_library(db_path: str | Path, *, progress: Callable[[str], None] | None = None) -> RepairReport:
    """Check a library and, when it is damaged, replace it by what can be saved of it.

    Args:
        db_path: The library file.
        progress: Called with a line of text per step (tables salvaged, indexes rebuilt).

    Returns:
        What was found and done.

    Raises:
        StoreError: No library there, or it cannot be repaired in place (read-only folder).
        BusyError: A video is being indexed into it right now.
    """
    db = Path(db_path).expanduser().resolve()
    if not db.is_file():
        raise StoreError(f"{db}: no library database here.")
    if (block := write_block(db)) is not None:
        raise ReadOnlyLibraryError(f"{db} cannot be repaired in place ({block}); copy it to a writable "
                                   "folder and repair the copy.")
    with _no_indexer(db):
        try:
            problems = find_problems(db, sqlite_uri(db, read_only=True), timeout_s=5.0)
        except sqlite3.DatabaseError as err:
            problems = [str(err)]
        if not problems:
            return RepairReport(library=db, problems=())
        say = progress or (lambda _line: None)
        tmp = db.with_name(db.name + ".repairing")
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in (*_SIDE_FILES, ".checked"))):
            leftover.unlink(missing_ok=True)
        report = salvage(db, tmp, progress=say)
        stamp_path(tmp).unlink(missing_ok=True)
        kept = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        _move(db, kept)
        _move(tmp, db)
        stamp_path(db).unlink(missing_ok=True)
        kinds = {"flat"}
        for path, kind in _faiss_files(db):
            kinds.add(kind)
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".json").unlink(missing_ok=True)
        indexes = []
        with Store(db) as store:
            models = {(r.reid_sha256, r.embedding_dim) for r in store.list_runs()}
            for sha, dim in sorted(models):
                for kind in sorted(kinds & set(INDEX_KINDS)):
                    index = EmbeddingIndex(store, sha, dim, kind=kind)
                    index.refresh()
                    indexes.append(index.path)
                    say(f"FAISS index {index.path.name}: {index.ntotal} vectors")
    return RepairReport(library=db, problems=tuple(problems), kept=kept, salvage=report,
                        indexes=tuple(indexes))
