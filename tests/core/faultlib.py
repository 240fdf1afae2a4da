"""Shared by the fault tests (damaged libraries, full disks, kills, concurrency): how they index,
the child-process script, and the checks that nothing stored was lost.

Everything indexes as the engine does (``core.engine.Engine``: the manifest's person classes,
tracker thresholds and ReID preprocessing) with :data:`FAULT_SETTINGS` and the float32 detector
(the session's ``person_detector``; never the int8 one the install makes), so a library written by
a child process running the engine and one written in the test process have the same runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np

from core.models import entry_for_file
from core.paths import REPO_ROOT
from core.pipeline import IndexSettings, index_video
from core.store import Store
from core.tracking import DEFAULT_TRACKER, make_tracker
from tests.core.test_pipeline import assert_consistent, assert_same_result, snapshot

__all__ = ["FAULT_SETTINGS", "INDEX_CHILD", "assert_consistent", "assert_same_result", "child",
           "copy_library", "counts", "damage", "index", "snapshot", "used_pages"]

FAULT_SETTINGS = IndexSettings(stride=2, det_batch=4, commit_every=8)
"""A checkpoint every 8 processed frames (16 video frames), so a 48-frame clip has several."""

tracker_factory = functools.partial(make_tracker, DEFAULT_TRACKER,
                                    **entry_for_file("yolov8s_people_normal_fall.onnx").tracker)

# A child process indexing like `python -m core index` (the engine, the CLI's own report lines) with
# FAULT_SETTINGS; it prints "progress N" per progress item so the test can act at a given point.
INDEX_CHILD = textwrap.dedent("""
    import sys
    from core.cli_output import report
    from core.engine import Engine
    from core.pipeline import IndexSettings
    from core.types import IndexOutcome, IndexProgress
    db, det, reid, *videos = sys.argv[1:]
    engine = Engine(db, detector=det, reid=reid, device="cpu", precision="fp32",
                    settings=IndexSettings(stride=2, det_batch=4, commit_every=8))
    status = 0
    for event in engine.index_many(videos):
        if isinstance(event, IndexProgress):
            print("progress", event.frames_done, flush=True)
        elif isinstance(event, IndexOutcome):
            status = max(status, report(event))
    sys.exit(status)
""")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this worktree's code first."""
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, OPENCV_FFMPEG_LOGLEVEL="-8", **extra)


def child(db: Path, models: tuple[Path, Path], *videos: Path, **popen) -> subprocess.Popen:
    """Start :data:`INDEX_CHILD` indexing ``videos`` into ``db`` (stdout piped, text)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    args = [sys.executable, "-c", INDEX_CHILD, str(db), *map(str, models), *map(str, videos)]
    return subprocess.Popen(args, env=popen.pop("env", child_env()), text=True, **popen)


def index(clip: Path, store: Store, models, *, settings: IndexSettings = FAULT_SETTINGS,
          stop_after: int | None = None, detector=None) -> list:
    """Index ``clip`` in this process; ``stop_after``: cancel once that many frames are done."""
    det, emb = models
    cancel = threading.Event()
    items = []
    for item in index_video(clip, store=store, detector=detector or det, embedder=emb,
                            tracker_factory=tracker_factory, settings=settings, cancel=cancel):
        items.append(item)
        if stop_after is not None and item.frames_done >= stop_after:
            cancel.set()
    return items


def copy_library(src: Path, dst: Path) -> Path:
    """Copy a closed library (and its ``-wal`` when there is one) to ``dst``."""
    shutil.copyfile(src, dst)
    wal = src.with_name(src.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, dst.with_name(dst.name + "-wal"))
    return dst


def counts(db: Path) -> dict[str, int]:
    """Rows per table of a library."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        return {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def used_pages(db: Path) -> list[int]:
    """Page numbers holding data (not on the freelist), read from the file format itself."""
    data = db.read_bytes()
    page = struct.unpack(">H", data[16:18])[0]
    free, trunk = set(), struct.unpack(">I", data[32:36])[0]
    while trunk:
        at = (trunk - 1) * page
        nxt, n = struct.unpack(">II", data[at:at + 8])
        free |= {trunk, *struct.unpack(f">{n}I", data[at + 8:at + 8 + 4 * n])}
        trunk = nxt
    return [p for p in range(2, len(data) // page + 1) if p not in free]


def damage(db: Path, how: str) -> None:
    if how == "overwritten pages":  # three pages in the middle of those holding data, overwritten with noise
        used = used_pages(db)
        noise = np.random.default_rng(3)
        with db.open("r+b") as fh:
            for p in used[len(used) // 2 - 1:len(used) // 2 + 2]:
                fh.seek((p - 1) * 4096)
                fh.write(noise.bytes(4096))
    else:  # an interrupted copy: the file ends in the middle of a page, three quarters into its data
        used = used_pages(db)
        os.truncate(db, (used[len(used) * 3 // 4] - 1) * 4096 + 1234)
