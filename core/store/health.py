"""Is a library file damaged? A check run when a library is opened, remembered while the file is unchanged.

Two checks, before anything reads or writes the library through the ORM:

* :func:`header_problem` (free: reads 100 bytes): a file whose size is not a whole
  number of pages, or that is shorter than the page count in its own header, was cut
  short (a truncated copy or download). Only judged when no WAL holds newer pages.
* ``PRAGMA quick_check`` (:func:`quick_check`): SQLite walks every page of every table
  and index and reports damaged pages, out-of-order keys and wrong cell counts; it
  skips only the comparison of index entries with table rows, which
  ``integrity_check`` adds at twice the cost. On a library of 10^6 sightings
  (434 MB) it takes about 1 s on this project's 2-core machine (``scripts/health_cost.py``
  prints the figures).

The quick check runs only when the file changed since its last clean check: a
*stamp* beside the library (``<db>.checked``, JSON) holds the size and modification
time of the database and of its ``-wal`` file as they were when a check found
nothing. Opening an unchanged library costs two ``stat`` calls; the first open after
indexing or saving a search runs the check once more. Damage that leaves both size
and modification time alone (bit rot under a file nobody wrote) is found by the next
check after a change, or by SQLite itself when it reads a damaged page (then
:class:`~core.errors.DamagedLibraryError` too). A folder that cannot be written keeps
no stamp: the check then runs at every open.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import time
from pathlib import Path

from core.errors import DamagedLibraryError, StoreError

STAMP_SUFFIX = ".checked"
"""Suffix of the stamp file beside the library (``library.sqlite.checked``)."""

MAX_PROBLEMS = 20
"""Most problems ``quick_check`` is asked to list."""

_MAGIC = b"SQLite format 3\x00"


def stamp_path(db: Path) -> Path:
    """The stamp file of the library ``db``."""
    return db.with_name(db.name + STAMP_SUFFIX)


def _file_state(db: Path) -> dict[str, list[int] | None]:
    """Size and modification time (ns) of the database and of its ``-wal`` file (``None``: none or empty)."""
    out: dict[str, list[int] | None] = {}
    for key, path in (("db", db), ("wal", db.with_name(db.name + "-wal"))):
        try:
            st = path.stat()
            out[key] = [st.st_size, st.st_mtime_ns] if st.st_size or key == "db" else None
        except OSError:
            out[key] = None
    return out


def header_pages(db: Path) -> tuple[int, int | None] | None:
    """``(page size, pages its header counts or None when that count is not valid)`` of an SQLite file.

    Returns ``None`` for a file that does not start with an SQLite header.
    """
    try:
        with db.open("rb") as fh:
            header = fh.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(_MAGIC):
        return None
    (page_size,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if page_size == 1 else page_size
    change_counter, pages, valid_for = (struct.unpack(">I", header[o:o + 4])[0] for o in (24, 28, 92))
    return page_size, pages if pages and change_counter == valid_for else None


def header_problem(db: Path) -> str | None:
    """Why the file's size does not fit its own header (``None`` when it does, or when not judged).

    Not judged for files that are not SQLite databases (SQLite says so itself) or while a
    non-empty ``-wal`` file may hold pages the database file does not have yet.
    """
    wal = db.with_name(db.name + "-wal")
    try:
        size = db.stat().st_size
        if wal.exists() and wal.stat().st_size > 0:
            return None
    except OSError:
        return None
    found = header_pages(db)
    if found is None:
        return None
    page_size, pages = found
    if page_size < 512 or page_size & (page_size - 1):
        return f"its header names an impossible page size ({page_size})"
    if size % page_size:
        return f"its size ({size} bytes) is not a whole number of {page_size}-byte pages: it was cut short"
    if pages and pages * page_size > size:
        return f"it holds {size // page_size} of the {pages} pages its header counts: it was cut short"
    return None


def quick_check(uri: str, *, timeout_s: float) -> list[str]:
    """SQLite's ``PRAGMA quick_check`` of the database at ``uri``.

    Args:
        uri: ``file:`` URI (see :func:`core.store.access.sqlite_uri`).
        timeout_s: How long to wait for a writer holding the database.

    Returns:
        The problems found (empty when none), at most :data:`MAX_PROBLEMS`.

    Raises:
        sqlite3.DatabaseError: The file is not a database (the caller says so), or it is busy.
    """
    con = sqlite3.connect(uri, uri=True, timeout=timeout_s)
    try:
        rows = [str(r[0]) for r in con.execute(f"PRAGMA quick_check({MAX_PROBLEMS})").fetchall()]
    except sqlite3.DatabaseError as err:
        text = str(err)
        if "malformed" in text or "corrupt" in text:
            return [text]
        raise
    finally:
        con.close()
    return [r for r in rows if r != "ok"]


def damaged_error(db: Path, problems: list[str]) -> DamagedLibraryError:
    """The one-sentence error for a damaged library, with the way out."""
    first = problems[0].strip().rstrip(".")
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return DamagedLibraryError(
        f"{db} is damaged ({first}{more}), so nothing more is written to it: run "
        f"`python -m core repair --db {db}` (or Repair in the window) to save what is readable into a "
        "new library; the damaged file is kept beside it.")


def find_problems(db: Path, uri: str, *, timeout_s: float) -> list[str]:
    """Every problem the header check and ``quick_check`` find in the library (empty: none).

    Raises:
        sqlite3.DatabaseError: The file is not an SQLite database at all, or it is busy.
    """
    problem = header_problem(db)
    return [problem] if problem else quick_check(uri, timeout_s=timeout_s)


def check_library(db: Path, uri: str, *, timeout_s: float) -> float | None:
    """Check an existing library before it is used (see the module notes).

    Args:
        db: The database file (it exists and is not empty).
        uri: How to open it (read-only).
        timeout_s: Busy timeout.

    Returns:
        Seconds the check took, or ``None`` when the stamp showed the file unchanged (or it is
        not an SQLite file at all, which the caller's connection then says).

    Raises:
        DamagedLibraryError: The file is damaged (the sentence names the way out).
        StoreError: It cannot be checked (busy, unreadable).
    """
    problem = header_problem(db)
    if problem:
        raise damaged_error(db, [problem])
    state = _file_state(db)
    stamp = stamp_path(db)
    try:
        if json.loads(stamp.read_text()).get("state") == state:
            return None
    except (OSError, ValueError, AttributeError):
        pass
    t0 = time.perf_counter()
    try:
        problems = quick_check(uri, timeout_s=timeout_s)
    except sqlite3.DatabaseError as err:
        if "not a database" in str(err):
            return None
        raise StoreError(f"{db} cannot be checked ({err}).") from None
    seconds = time.perf_counter() - t0
    if problems:
        with contextlib.suppress(OSError):
            stamp.unlink()
        raise damaged_error(db, problems)
    _write_stamp(stamp, state, seconds)
    return seconds


def _write_stamp(stamp: Path, state: dict[str, list[int] | None], seconds: float) -> None:
    """Write the stamp atomically; a folder that cannot be written keeps none."""
    tmp = stamp.with_name(stamp.name + f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"state": state, "seconds": round(seconds, 3),
                                   "sqlite": sqlite3.sqlite_version}))
        os.replace(tmp, stamp)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
