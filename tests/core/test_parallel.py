"""Several videos at once (core.parallel through Engine.index_many): two real clips of vtest.avi, the
real models, real worker processes (spawn) and real SQLite libraries.

Indexing the two clips with two worker processes must give exactly the library that indexing them one
after the other gives, and a multi-video indexing killed with SIGKILL (the program and its workers)
must resume, with workers again, to that same library.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core.engine import Engine
from core.parallel import _Stop, default_workers
from core.paths import REPO_ROOT
from core.pipeline import IndexSettings
from core.store import Store
from core.types import IndexOutcome, IndexProgress, IndexStarted
from tests.core.library_checks import assert_consistent, assert_same_library, library_snapshot
from tests.realdata import cut_clip

CLIP_FRAMES = 60
# checkpoints every 8 processed frames, so a kill lands between checkpoints of both videos
SETTINGS = dict(stride=2, det_batch=4, commit_every=8, track_gap=6)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, vtest_path) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [cut_clip(vtest_path, folder / "first.mp4", 0, CLIP_FRAMES),
            cut_clip(vtest_path, folder / "second.mp4", 400, CLIP_FRAMES)]


def engine(db: Path, detector_model_path, reid_model_path, **kwargs) -> Engine:
    return Engine(db, detector=detector_model_path, reid=reid_model_path, device="cpu",
                  settings=IndexSettings(**SETTINGS), **kwargs)


@pytest.fixture(scope="module")
def one_after_the_other(tmp_path_factory, clips, detector_model_path, reid_model_path):
    db = tmp_path_factory.mktemp("sequential") / "library.sqlite"
    with engine(db, detector_model_path, reid_model_path, workers=1) as e:
        events = list(e.index_many(clips))
        assert [ev.status for ev in events if isinstance(ev, IndexOutcome)] == ["done", "done"]
        return library_snapshot(e.store)


def test_two_workers_give_the_library_of_one_after_the_other(tmp_path, clips, one_after_the_other,
                                                              detector_model_path, reid_model_path):
    db = tmp_path / "parallel.sqlite"
    with engine(db, detector_model_path, reid_model_path, workers=2) as e:
        events = list(e.index_many(clips))
        snap = library_snapshot(e.store)
    started = [ev for ev in events if isinstance(ev, IndexStarted)]
    outcomes = [ev for ev in events if isinstance(ev, IndexOutcome)]
    assert sorted((s.number, s.count) for s in started) == [(1, 2), (2, 2)]
    assert sorted((o.video_path, o.status) for o in outcomes) == sorted((str(c), "done") for c in clips)
    # progress of both videos came back, each item naming its video, each video's frames increasing
    for clip in clips:
        mine = [ev.frames_done for ev in events
                if isinstance(ev, IndexProgress) and ev.video_path == str(clip)]
        assert len(mine) > 2 and mine == sorted(mine) and mine[-1] == CLIP_FRAMES
    assert sum(len(v["tracks"]) for v in snap.values()) >= 4
    assert_same_library(snap, one_after_the_other)
    assert_consistent(db)


KILL_SCRIPT = textwrap.dedent("""
    import json, sys
    from core.engine import Engine
    from core.pipeline import IndexSettings
    db, det, reid, settings, *clips = sys.argv[1:]
    e = Engine(db, detector=det, reid=reid, device="cpu", settings=IndexSettings(**json.loads(settings)),
               workers=2)
    for event in e.index_many(clips):
        print(type(event).__name__, getattr(event, "frames_done", ""), flush=True)
""")


def _frames_done(db: Path) -> list[tuple[int, int]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT frames_done, tracks_done FROM index_runs ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        con.close()


def test_sigkill_during_multi_video_indexing_resumes_to_the_uninterrupted_result(
        tmp_path, clips, one_after_the_other, detector_model_path, reid_model_path):
    db = tmp_path / "killed.sqlite"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(db), str(detector_model_path),
                             str(reid_model_path), json.dumps(SETTINGS), *map(str, clips)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: the program and its workers
    killed_at = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            rows = _frames_done(db)
            if len(rows) == 2 and all(16 <= done < CLIP_FRAMES - 1 for done, _ in rows):
                os.killpg(proc.pid, signal.SIGKILL)  # both videos mid-way, checkpoints written
                killed_at = rows
                break
            time.sleep(0.02)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert killed_at is not None, f"the indexing ended before it was killed: {proc.stderr.read()[-2000:]}"
    st = Store(db)
    runs = st.list_runs()
    assert [r.status for r in runs] == ["running", "running"]  # both died mid-video
    assert all(r.frames_done < CLIP_FRAMES for r in runs)
    st.close()
    assert_consistent(db)
    with engine(db, detector_model_path, reid_model_path, workers=2) as e:
        events = list(e.index_many(clips))
        first = {ev.video_path: ev.frames_done for ev in reversed(events) if isinstance(ev, IndexProgress)}
        assert all(first[str(c)] > 16 for c in clips)  # resumed from the checkpoints, not restarted
        assert sorted(ev.status for ev in events if isinstance(ev, IndexOutcome)) == ["done", "done"]
        assert_same_library(library_snapshot(e.store), one_after_the_other)
    assert_consistent(db)


def test_cancel_stops_every_worker_and_the_next_call_resumes(tmp_path, clips, one_after_the_other,
                                                            detector_model_path, reid_model_path):
    db = tmp_path / "cancelled.sqlite"
    cancel = threading.Event()
    with engine(db, detector_model_path, reid_model_path, workers=2) as e:
        outcomes = []
        for event in e.index_many(clips, cancel=cancel):
            if isinstance(event, IndexProgress) and event.frames_done >= 20:
                cancel.set()
            if isinstance(event, IndexOutcome):
                outcomes.append(event.status)
        assert "cancelled" in outcomes and "done" not in outcomes
        assert all(r.status == "cancelled" for r in e.store.list_runs())
        list(e.index_many(clips))
        assert_same_library(library_snapshot(e.store), one_after_the_other)


def test_a_worker_stops_when_its_parent_has_died():
    event = threading.Event()
    assert not _Stop(event, os.getppid()).is_set()
    assert _Stop(event, os.getppid() + 99999).is_set() and event.is_set()


def test_default_workers_follow_the_cores():
    assert default_workers(5, cores=2) == 1
    assert default_workers(5, cores=8) == 4
    assert default_workers(2, cores=16) == 2
    assert default_workers(1, cores=16) == 1
