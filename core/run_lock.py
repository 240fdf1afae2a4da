"""One indexer per run: an operating-system file lock beside the library (see :mod:`core.pipeline`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import filelock

from core.errors import BusyError, ReidSearchError, StoreError
from core.index_settings import model_identity
from core.store import RunRecord, Store
from core.types import Detector, Embedder


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


def record_failure(store: Store, run_id: int, err: Exception) -> None:
    """Mark a run ``failed`` with the error's sentence, as an indexer does before re-raising ``err``.

    An error of the library itself (:class:`~core.errors.StoreError`: a full disk, a lock held too
    long, damage) writes nothing: the run's last checkpoint stands.
    """
    if isinstance(err, StoreError):
        return
    message = str(err) if isinstance(err, ReidSearchError) else f"{type(err).__name__}: {err}"
    store.set_run_status(run_id, "failed", message)


def open_run(store: Store, video_id: int, key: str, recorded: Mapping[str, Any], detector: Detector,
             embedder: Embedder, frames_total: int) -> RunRecord:
    """The run of ``video_id`` with settings ``key``, created (``recorded`` settings) when there is none."""
    run = store.find_run(video_id, key)
    if run is not None:
        return run
    det_name, det_sha = model_identity(detector)
    _, reid_sha = model_identity(embedder)
    return store.create_run(video_id, detector_name=det_name, detector_sha256=det_sha,
                            reid_name=str(recorded["reid_name"]), reid_sha256=reid_sha,
                            embedding_dim=int(embedder.dim), settings=recorded, settings_key=key,
                            frames_total=int(frames_total))
