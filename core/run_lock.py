"""One indexer per run: an operating-system file lock beside the library (see :mod:`core.pipeline`)."""

from __future__ import annotations

from pathlib import Path

import filelock

from core.errors import BusyError, StoreError
from core.store import Store


def run_lock_path(db_path: Path, video_id: int, key: str) -> Path:
    """The lock file of one run: ``<db>.locks/video<id>-<key[:16]>.lock``."""
    return db_path.with_name(db_path.name + ".locks") / f"video{video_id}-{key[:16]}.lock"


def take_run_lock(store: Store, video_id: int, key: str, path_text: str) -> filelock.BaseFileLock:
    """Take the run's lock without waiting (see the module notes), or raise :class:`BusyError`.

    Returns:
        The acquired lock; the caller releases it.
    """
    path = run_lock_path(store.path, video_id, key)
    lock = filelock.FileLock(path, timeout=0)
    try:
        path.parent.mkdir(exist_ok=True)
        lock.acquire()
    except filelock.Timeout:
        raise BusyError(f"{path_text}: is being indexed into {store.path} right now by another program or "
                        "window (same models and settings); wait for it to finish, or stop it, then "
                        "try again.") from None
    except OSError as err:
        raise StoreError(f"{path.parent}: cannot create the indexing lock ({err.strerror or err}).") from None
    return lock
