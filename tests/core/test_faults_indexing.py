"""Indexing meets faults, on real clips of vtest.avi with the real models and real processes:
a failed run, an unreadable or foreign resume state, another detection batch size, a file replaced
by other content, a process killed and its WAL torn, a disk that fills up. Each test checks that
what was stored before the fault is still there and that the run ends as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import resource
import shutil
import signal
import sqlite3
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from core import safe_pickle
from core.errors import ModelError
from core.library import Library
from core.store import Store
from tests.core.faultlib import (
    FAULT_SETTINGS,
    assert_consistent,
    assert_same_result,
    child,
    copy_library,
    index,
    snapshot,
)

WAL_LIMIT = 500 << 10
"""Bytes the WAL may grow to in the full-disk tests: the first checkpoint of clip A fits (about
210 KB), the second (about 790 KB) does not."""


@pytest.fixture(scope="module")
def models(person_detector, reid_embedder):
    return person_detector, reid_embedder


@pytest.fixture(scope="module")
def model_paths(detector_model_path, reid_model_path) -> tuple[Path, Path]:
    return detector_model_path, reid_model_path


def reference(fault_library, name: str) -> dict:
    with Store(fault_library(name)) as store:
        (run,) = store.list_runs()
        return snapshot(store, run.id)


def the_run(store: Store):
    (run,) = store.list_runs()
    return run


class FailingDetector:
    """The real detector (same identity and settings), failing after some batches as a broken driver would."""

    def __init__(self, real, fail_after: int) -> None:
        self._real, self.calls, self.fail_after = real, 0, fail_after

    def __getattr__(self, name):
        return getattr(self._real, name)

    def _count(self) -> None:
        self.calls += 1
        if self.calls > self.fail_after:
            raise ModelError(f"{self._real.path}: ONNX Runtime failed on batch {self.calls}")

    def detect(self, images):
        self._count()
        return self._real.detect(images)

    def detect_prepared(self, images, *args, **kwargs):  # the pipeline's path (letterboxed on its thread)
        self._count()
        return self._real.detect_prepared(images, *args, **kwargs)


def test_a_failed_run_resumes_to_the_uninterrupted_result(tmp_path, fault_clips, fault_library, models):
    with Store(tmp_path / "lib.sqlite") as store:
        with pytest.raises(ModelError, match="batch 4"):
            index(fault_clips["A"], store, models, detector=FailingDetector(models[0], fail_after=3))
        failed = the_run(store)
        assert failed.status == "failed" and failed.frames_done == 15  # the checkpoint after batch 2
        assert store.load_run_state(failed.id) is not None
        items = index(fault_clips["A"], store, models)
        assert items[0].frames_done > failed.frames_done and items[0].note is None  # resumed, not restarted
        assert items[-1].done and the_run(store).status == "done"
        assert_same_result(snapshot(store, failed.id), reference(fault_library, "A"))
    assert_consistent(tmp_path / "lib.sqlite")


@pytest.fixture(scope="module")
def cancelled_a(tmp_path_factory, fault_clips, models) -> Path:
    """Clip A indexed up to the checkpoint at frame 15, then cancelled (state saved)."""
    db = tmp_path_factory.mktemp("cancelled") / "lib.sqlite"
    with Store(db) as store:
        items = index(fault_clips["A"], store, models, stop_after=15)
        run = the_run(store)
        assert run.status == "cancelled" and items[-1].frames_done == run.frames_done
        assert store.load_run_state(run.id) is not None
    return db


def test_an_unreadable_state_restarts_the_run_cleanly_and_says_so(tmp_path, cancelled_a, fault_clips,
                                                                  fault_library, models):
    db = copy_library(cancelled_a, tmp_path / "lib.sqlite")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE index_runs SET state = randomblob(4000)")
    with Store(db) as store:
        items = index(fault_clips["A"], store, models)
        note = items[0].note
        assert note and "clipA.mp4" in note and "cannot be read" in note and "starts again" in note
        assert items[0].frames_done == FAULT_SETTINGS.det_batch * FAULT_SETTINGS.stride - 1  # from frame 0
        assert all(i.note is None for i in items[1:]) and items[-1].done
        assert_same_result(snapshot(store, the_run(store).id), reference(fault_library, "A"))
    assert_consistent(db)


def test_a_state_written_by_another_version_restarts_the_run_and_says_so(tmp_path, cancelled_a, fault_clips,
                                                                         models):
    db = copy_library(cancelled_a, tmp_path / "lib.sqlite")
    with Store(db) as store:
        run = the_run(store)
        state = safe_pickle.loads(zlib.decompress(store.load_run_state(run.id)))
        state.code_version = "0.0.1"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE index_runs SET state = ?", (zlib.compress(pickle.dumps(state)),))
    with Store(db) as store:
        gen = index_first(fault_clips["A"], store, models)
        assert "another version of ReID Video Search (0.0.1" in gen.note and "starts again" in gen.note
        assert gen.frames_done == FAULT_SETTINGS.det_batch * FAULT_SETTINGS.stride - 1


def index_first(clip, store, models):
    """The first progress item of an indexing run (the run is then closed: a cancel)."""
    from core.pipeline import index_video
    from tests.core.faultlib import tracker_factory

    gen = index_video(clip, store=store, detector=models[0], embedder=models[1],
                      tracker_factory=tracker_factory, settings=FAULT_SETTINGS)
    first = next(gen)
    gen.close()
    return first


def test_a_crafted_state_runs_no_code(tmp_path, cancelled_a, fault_clips, models):
    """A resume state is a pickle inside a file users share: one that calls a function is refused."""
    db = copy_library(cancelled_a, tmp_path / "lib.sqlite")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with sqlite3.connect(db) as con:
        con.execute("UPDATE index_runs SET state = ?", (zlib.compress(pickle.dumps(Evil())),))
    with Store(db) as store:
        first = index_first(fault_clips["A"], store, models)
    assert not marker.exists() and "cannot be read" in first.note


def test_resuming_with_another_batch_size_keeps_the_stored_one(tmp_path, cancelled_a, fault_clips,
                                                               fault_library, models):
    db = copy_library(cancelled_a, tmp_path / "lib.sqlite")
    other = dataclasses.replace(FAULT_SETTINGS, det_batch=2, commit_every=6)
    with Store(db) as store:
        before = the_run(store)
        items = index(fault_clips["A"], store, models, settings=other)
        run = the_run(store)
        assert run.id == before.id and run.settings["det_batch"] == 4 and run.settings["commit_every"] == 8
        assert items[0].frames_done == before.frames_done + 8 and items[0].note is None  # batches of 4
        steps = {b.frames_done - a.frames_done for a, b in zip(items, items[1:-1], strict=False)}
        assert steps == {FAULT_SETTINGS.det_batch * FAULT_SETTINGS.stride}
        assert_same_result(snapshot(store, run.id), reference(fault_library, "A"))


def test_the_same_path_with_other_content_is_a_new_video(tmp_path, fault_clips, fault_library, models):
    video = tmp_path / "camera.mp4"
    shutil.copyfile(fault_clips["A"], video)
    with Store(tmp_path / "lib.sqlite") as store:
        index(video, store, models, stop_after=7)
        (first,) = store.list_runs()
        state = store.load_run_state(first.id)
        kept = snapshot(store, first.id)
        shutil.copyfile(fault_clips["B"], video)  # the camera's file was replaced by a new recording
        items = index(video, store, models)
        assert items[0].frames_done == 7 and items[-1].done and not items[0].skipped  # from frame 0
        videos = store.list_videos()
        assert len(videos) == 2 and videos[0].fingerprint != videos[1].fingerprint
        assert {v.path for v in videos} == {str(video.resolve())}
        old, new = store.list_runs()
        assert old.id == first.id and old.status == "cancelled" and store.load_run_state(old.id) == state
        assert_same_result(snapshot(store, old.id), kept)  # the other content's partial run is untouched
        assert_same_result(snapshot(store, new.id), reference(fault_library, "B"))
        assert Library(store).find_video(video).id == new.video_id


# --------------------------------------------------------------------------- a killed process, a torn WAL


def wal_commits(wal: Path) -> list[int]:
    """Byte offsets where each committed transaction of a WAL file ends."""
    data = wal.read_bytes()
    (page_size,) = struct.unpack(">I", data[8:12])
    ends, at = [], 32
    while at + 24 + page_size <= len(data):
        (db_size,) = struct.unpack(">I", data[at + 4:at + 8])
        at += 24 + page_size
        if db_size:
            ends.append(at)
    return ends


def kill_after(proc: subprocess.Popen, frames_done: int) -> None:
    for line in proc.stdout:
        if line.startswith("progress") and int(line.split()[1]) >= frames_done:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]


def test_a_killed_indexer_with_a_torn_wal_resumes_from_the_last_whole_commit(
        tmp_path, fault_clips, fault_library, models, model_paths):
    """Killed right after its checkpoint at frame 31, with that commit then torn in two ways: cut in the
    middle (the power went while it was written) and garbled in the middle (a bad sector)."""
    db = tmp_path / "lib.sqlite"
    Store(db).close()
    kill_after(child(db, model_paths, fault_clips["A"]), 31)
    wal = db.with_name(db.name + "-wal")
    ends = wal_commits(wal)
    assert len(ends) >= 4, ends  # video, run, and the checkpoints at frames 15 and 31 are in the WAL
    middle = (ends[-2] + ends[-1]) // 2
    data = wal.read_bytes()
    torn = {"cut": data[:middle], "garbled": data[:middle] + bytes(64) + data[middle + 64:]}
    for name, wal_bytes in torn.items():
        copy = tmp_path / f"{name}.sqlite"
        shutil.copyfile(db, copy)
        copy.with_name(copy.name + "-wal").write_bytes(wal_bytes)
        with Store(copy) as store:  # a torn WAL is no damage: SQLite stops at the last whole commit
            run = the_run(store)
            assert run.status == "running" and run.frames_done == 15, name  # the commit before the torn one
            assert store.load_run_state(run.id) is not None
        assert_consistent(copy)
    with Store(tmp_path / "garbled.sqlite") as store:
        items = index(fault_clips["A"], store, models)
        assert items[0].frames_done == 23 and items[-1].done
        assert_same_result(snapshot(store, the_run(store).id), reference(fault_library, "A"))
    assert_consistent(tmp_path / "garbled.sqlite")


# --------------------------------------------------------------------------- a full disk


def _limit_file_size() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (WAL_LIMIT, WAL_LIMIT))


def _mount_tmpfs(folder: Path, size_kb: int) -> bool:
    if os.geteuid() != 0:
        return False
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("how", ["file-size limit", "full tmpfs"])
def test_a_full_disk_stops_with_one_sentence_and_resumes_when_space_is_back(how, tmp_path, fault_clips,
                                                                          fault_library, models, model_paths):
    folder = tmp_path / "disk"
    if how == "full tmpfs":
        if not _mount_tmpfs(folder, 96 + 32 + WAL_LIMIT // 1024):  # database, -shm, and the WAL's share
            pytest.skip("mounting a small tmpfs needs root")
    else:
        folder.mkdir()
    try:
        db = folder / "lib.sqlite"
        Store(db).close()
        proc = child(db, model_paths, fault_clips["A"],
                     preexec_fn=_limit_file_size if how == "file-size limit" else None)
        out, err = proc.communicate(timeout=600)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
        assert str(db) in lines[0] and "cannot write to the library" in lines[0]
        assert "free some space" in lines[0] and "Traceback" not in err
        if how == "full tmpfs":  # space is back
            subprocess.run(["mount", "-o", "remount,size=262144k", str(folder)], check=True)
        with Store(db) as store:
            run = the_run(store)
            assert run.frames_done == 15 and store.load_run_state(run.id) is not None  # the last checkpoint
            assert_consistent(db)
            items = index(fault_clips["A"], store, models)
            assert items[0].frames_done == 23 and items[-1].done  # resumed where the disk filled
            assert_same_result(snapshot(store, run.id), reference(fault_library, "A"))
    finally:
        if how == "full tmpfs":
            subprocess.run(["umount", str(folder)], capture_output=True)
