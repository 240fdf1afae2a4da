"""Indexing pipeline on real data: a 120-frame mp4v clip of vtest.avi, the real YOLO detector,
the real OSNet embedder, the real tracker and a real SQLite library.

The expensive part (one uninterrupted reference run) is shared by the whole session; the
cancel/resume and kill/resume tests each index the clip once more (in two parts) and must
reproduce the reference exactly: same tracks, same sightings, same embeddings (1e-6).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import BusyError, ModelError, VideoError
from core.index import EmbeddingIndex
from core.models import entry_for_file
from core.paths import REPO_ROOT
from core.pipeline import IndexSettings, _LiveTrack, crop_quality, index_video, model_identity
from core.reid import OnnxEmbedder
from core.store import Store
from core.tracking import ByteTracker
from tests.core.library_checks import assert_consistent, assert_same_result, snapshot
from tests.realdata import cut_clip

CLIP_FRAMES = 120
SETTINGS = IndexSettings(stride=2, det_batch=4, commit_every=8, track_gap=6)
# As the app runs these models: the manifest gives the detector's person classes and tracker
# thresholds, and the ReID model's preprocessing (it has no metadata).
DET_ENTRY = entry_for_file("yolov8s_people_normal_fall.onnx")
REID_PREPROCESS = entry_for_file("osnet_x0_25_msmt17.onnx").preprocess
# a short tracker memory, so that tracks end (and are written) inside the short clip
TRACKER_KWARGS = {**DET_ENTRY.tracker, "max_age": 8}

tracker_factory = functools.partial(ByteTracker, **TRACKER_KWARGS)


# --------------------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="session")
def clip(tmp_path_factory, vtest_path) -> Path:
    """The first CLIP_FRAMES frames of vtest.avi written as mp4v (exact seeks)."""
    return cut_clip(vtest_path, tmp_path_factory.mktemp("clip") / "vtest_clip.mp4", 0, CLIP_FRAMES)


@pytest.fixture(scope="session")
def models(detector_model_path, reid_model_path):
    from core.detection import YoloOnnxDetector

    det = YoloOnnxDetector(detector_model_path, person_classes=DET_ENTRY.person_classes)
    emb = OnnxEmbedder(reid_model_path, preprocess=REID_PREPROCESS)
    return det, emb


def run_all(path, st, models, settings=SETTINGS, cancel=None):
    det, emb = models
    return list(index_video(path, store=st, detector=det, embedder=emb, tracker_factory=tracker_factory,
                            settings=settings, cancel=cancel))


@pytest.fixture(scope="session")
def reference(tmp_path_factory, clip, models):
    """One uninterrupted run: (store, run, progress items, wall seconds)."""
    st = Store(tmp_path_factory.mktemp("ref") / "library.sqlite")
    t0 = time.perf_counter()
    progress = run_all(clip, st, models)
    wall = time.perf_counter() - t0
    (run,) = st.list_runs()
    return st, run, progress, wall


# --------------------------------------------------------------------------- pure logic (no models)


def test_settings_validation_and_key_fields():
    s = IndexSettings(det_batch=4, commit_every=10)
    assert s.commit_every == 12  # rounded up to whole detection batches
    assert "commit_every" not in s.result_fields() and "stride" in s.result_fields()
    with pytest.raises(ValueError, match="stride"):
        IndexSettings(stride=0)
    with pytest.raises(ValueError, match="candidates_per_track"):
        IndexSettings(crops_per_track=6, candidates_per_track=4)


def test_crop_quality_prefers_large_confident_uncut_unoccluded_boxes():
    s = IndexSettings()
    none = np.zeros((0, 4), np.float32)
    good = crop_quality(np.array([100, 100, 160, 260]), 0.9, none, 640, 480, s)
    assert good == pytest.approx(0.9)
    assert crop_quality(np.array([100, 100, 160, 260]), 0.5, none, 640, 480, s) < good
    assert crop_quality(np.array([100, 100, 130, 180]), 0.9, none, 640, 480, s) < good  # small
    assert crop_quality(np.array([0, 100, 60, 260]), 0.9, none, 640, 480, s) < good  # cut by the border
    assert crop_quality(np.array([100, 100, 300, 260]), 0.9, none, 640, 480, s) < good  # lying / two people
    occluder = np.array([[130, 100, 200, 260]], np.float32)
    assert crop_quality(np.array([100, 100, 160, 260]), 0.9, occluder, 640, 480, s) == pytest.approx(0.45)
    assert crop_quality(np.array([100, 100, 104, 260]), 0.9, none, 640, 480, s) == 0.0  # too thin


def test_candidates_stay_bounded_spread_and_good():
    rng = np.random.default_rng(0)
    t = _LiveTrack(track_id=1, tracker_id=1)
    quality = rng.uniform(0.1, 1.0, 300)
    for f in range(0, 600, 2):
        t.frames.append(f)
        slot = t.offer(f, float(quality[f // 2]), capacity=8)
        if slot is not None:
            slot.crop = np.zeros((2, 2, 3), np.uint8)
        assert len(t.candidates) <= 8
    frames = [c.frame for c in t.candidates]
    assert frames == sorted(frames) and frames[0] < 150 and frames[-1] > 450  # spread over the life
    assert np.mean([c.quality for c in t.candidates]) > np.mean(quality) + 0.15  # better than average
    chosen = t.choose(4)
    assert len(chosen) == 4 and len({c.frame * 4 // 600 for c in chosen}) == 4  # one per time quarter


def test_model_identity_is_the_file_sha256(reid_model_path):
    from core.fileio import sha256_file

    emb = OnnxEmbedder(reid_model_path, preprocess=REID_PREPROCESS)
    assert model_identity(emb) == (emb.name, sha256_file(reid_model_path))


# --------------------------------------------------------------------------- real indexing


def test_reference_run_writes_consistent_tracks(reference, clip):
    st, run, progress, wall = reference
    assert run.status == "done" and run.frames_done == run.frames_total == CLIP_FRAMES
    assert run.embedding_dim == 512 and run.settings["stride"] == 2
    tracks = st.tracks(run.id)
    assert run.tracks_done == len(tracks) >= 5  # vtest has several people in its first 12 s
    emb = st.embedding_rows([run.id])
    assert np.allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    for t in tracks:
        s = st.sightings(t.pk)
        assert t.n_sightings == len(s) >= SETTINGS.min_track_sightings
        assert (s.frames % SETTINGS.stride == 0).all() and np.all(np.diff(s.frames) > 0)
        assert (s.frames[0], s.frames[-1]) == (t.first_frame, t.last_frame)
        mine = emb.frames[emb.track_pks == t.pk]
        assert 1 <= len(mine) <= SETTINGS.crops_per_track  # K cap
        assert set(mine.tolist()) <= set(s.frames.tolist())
        if t.n_sightings >= 2 * SETTINGS.crops_per_track:
            assert len(mine) == SETTINGS.crops_per_track
    assert_consistent(st.path)
    # some tracks ended (and were written) before the end of the clip
    assert min(t.last_frame for t in tracks) < CLIP_FRAMES - 2 * SETTINGS.track_gap * SETTINGS.stride
    # progress: increasing, with timings of every stage, one final item
    done = [p for p in progress if p.done]
    assert len(done) == 1 and progress[-1].done and not progress[-1].skipped
    assert [p.frames_done for p in progress] == sorted(p.frames_done for p in progress)
    assert progress[-1].frames_done == progress[-1].frames_total == CLIP_FRAMES
    stages = dict(progress[-1].stage_s)
    assert list(stages) == ["decode", "detect", "track", "embed", "write"]
    assert stages["detect"] > 0 and stages["embed"] > 0 and sum(stages.values()) <= wall
    assert progress[-1].tracks == len(tracks)
    assert all(p.eta_s is not None and p.eta_s >= 0 for p in progress[1:])
    print(f"\nindexed {CLIP_FRAMES} frames (stride 2) in {wall:.1f} s = {CLIP_FRAMES / wall:.1f} video fps; "
          f"stages {stages}; {len(tracks)} tracks, {len(emb)} embeddings")


def test_sightings_in_frame_match_tracks(reference):
    st, run, _, _ = reference
    tracks = st.tracks(run.id)
    busiest = max(range(0, CLIP_FRAMES, 2),
                  key=lambda f: sum(t.first_frame <= f <= t.last_frame for t in tracks))
    fr = st.sightings_in_frame(run.id, busiest)
    assert len(fr) >= 2 and (fr.frames == busiest).all()
    for pk, box in zip(fr.track_pks, fr.boxes, strict=True):
        s = st.sightings(int(pk))
        np.testing.assert_array_equal(s.boxes[s.frames == busiest][0], box)


def copy_library(st: Store, dest: Path) -> Store:
    """A copy of a library (SQLite backup API, WAL included) to change without touching the original."""
    src, dst = sqlite3.connect(st.path), sqlite3.connect(dest)
    src.backup(dst)
    src.close()
    dst.close()
    return Store(dest)


def test_same_settings_is_a_no_op_also_for_a_moved_file(reference, clip, models, tmp_path):
    ref_st, ref_run, _, _ = reference
    st = copy_library(ref_st, tmp_path / "copy.sqlite")
    again = run_all(clip, st, models)
    assert len(again) == 1 and again[0].skipped and again[0].done and again[0].tracks == ref_run.tracks_done
    moved = tmp_path / "renamed copy.mp4"
    shutil.copyfile(clip, moved)
    again = run_all(moved, st, models)
    assert len(again) == 1 and again[0].skipped
    videos = st.list_videos()
    assert len(videos) == 1 and videos[0].path == str(moved.resolve())
    assert st.list_runs() == [ref_st.get_run(ref_run.id)]


def test_other_stride_is_a_new_run(tmp_path, clip, models, reference):
    ref_st, ref_run, _, _ = reference
    st = copy_library(ref_st, tmp_path / "copy.sqlite")
    settings = IndexSettings(stride=4, det_batch=4, commit_every=8, track_gap=6)
    progress = run_all(clip, st, models, settings=settings)
    assert progress[-1].done and not progress[-1].skipped
    first, second = st.list_runs()
    assert first == ref_st.get_run(ref_run.id)
    assert second.settings["stride"] == 4 and second.settings_key != first.settings_key
    assert second.status == "done" and second.tracks_done >= 3
    for t in st.tracks(second.id):
        assert (st.sightings(t.pk).frames % 4 == 0).all()
    assert_same_result(snapshot(st, first.id), snapshot(ref_st, ref_run.id))
    assert_consistent(st.path)


def test_cancel_then_resume_equals_uninterrupted(tmp_path, clip, models, reference):
    ref_st, ref_run, _, _ = reference
    st = Store(tmp_path / "cancel.sqlite")
    cancel = threading.Event()
    det, emb = models
    seen = []
    for p in index_video(clip, store=st, detector=det, embedder=emb, tracker_factory=tracker_factory,
                         settings=SETTINGS, cancel=cancel):
        seen.append(p)
        if p.frames_done >= 50:
            cancel.set()
    (run,) = st.list_runs()
    assert run.status == "cancelled" and 50 <= run.frames_done < CLIP_FRAMES and not seen[-1].done
    assert seen[-1].frames_done == run.frames_done
    assert st.load_run_state(run.id) is not None
    assert_consistent(st.path)
    partial = snapshot(st, run.id)
    ref = snapshot(ref_st, ref_run.id)
    for tid in partial:  # what was written so far are whole, final tracks
        assert_same_result({tid: partial[tid]}, {tid: ref[tid]})

    resumed = run_all(clip, st, models)
    assert resumed[0].frames_done > run.frames_done  # continued, not restarted
    assert resumed[-1].done
    (run,) = st.list_runs()
    assert run.status == "done" and st.load_run_state(run.id) is None
    assert_same_result(snapshot(st, run.id), ref)
    assert_consistent(st.path)


KILL_SCRIPT = textwrap.dedent("""
    import functools, json, sys
    from core.detection import YoloOnnxDetector
    from core.pipeline import IndexSettings, index_video
    from core.reid import OnnxEmbedder
    from core.store import Store
    from core.tracking import ByteTracker
    clip, db, det_path, reid_path, tracker_kwargs, classes = sys.argv[1:7]
    tracker = functools.partial(ByteTracker, **json.loads(tracker_kwargs))
    det = YoloOnnxDetector(det_path, person_classes=json.loads(classes))
    emb = OnnxEmbedder(reid_path, preprocess={preprocess!r})
    settings = IndexSettings(stride=2, det_batch=4, commit_every=8, track_gap=6)
    for p in index_video(clip, store=Store(db), detector=det, embedder=emb, tracker_factory=tracker,
                         settings=settings):
        print(p.frames_done, flush=True)
""").format(preprocess=REID_PREPROCESS)


def test_killed_process_resumes_to_the_uninterrupted_result(tmp_path, clip, models, reference,
                                                            detector_model_path, reid_model_path):
    assert SETTINGS == IndexSettings(stride=2, det_batch=4, commit_every=8, track_gap=6)  # as in KILL_SCRIPT
    ref_st, ref_run, _, _ = reference
    db = tmp_path / "killed.sqlite"
    Store(db).close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, str(clip), str(db), str(detector_model_path),
             str(reid_model_path), json.dumps(TRACKER_KWARGS), json.dumps(DET_ENTRY.person_classes)],
            env=env, stdout=subprocess.DEVNULL, stderr=err)
    killed_at = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            con = sqlite3.connect(db)
            row = con.execute("SELECT frames_done, tracks_done FROM index_runs").fetchone()
            con.close()
            if row and row[0] >= 40 and row[1] >= 1:  # some tracks written, others still live
                proc.send_signal(signal.SIGKILL)
                killed_at = row
                break
            time.sleep(0.05)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_at is not None, f"indexer ended before it was killed: {stderr.read_text()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL

    st = Store(db)
    (run,) = st.list_runs()
    assert run.status == "running" and run.frames_done < CLIP_FRAMES  # died mid-video
    assert run.frames_done >= killed_at[0]
    assert_consistent(db)
    resumed = run_all(clip, st, models)
    assert resumed[0].frames_done > run.frames_done and resumed[-1].done
    (run,) = st.list_runs()
    assert run.status == "done"
    assert_same_result(snapshot(st, run.id), snapshot(ref_st, ref_run.id))
    assert_consistent(db)


def test_a_run_indexed_elsewhere_is_refused_until_that_process_dies(tmp_path, clip, models, reference,
                                                                    detector_model_path, reid_model_path):
    """Another process indexes the clip (then is frozen mid-video): indexing the same clip into the
    same library is refused at once with one sentence and writes nothing; once that process is
    killed, the operating system has dropped its lock and the run resumes to the reference result."""
    ref_st, ref_run, _, _ = reference
    db = tmp_path / "shared.sqlite"
    Store(db).close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(clip), str(db), str(detector_model_path),
         str(reid_model_path), json.dumps(TRACKER_KWARGS), json.dumps(DET_ENTRY.person_classes)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = proc.stdout.readline()  # its first progress item: the run exists and is locked
        assert first.strip().isdigit(), "the other indexer did not start"
        proc.send_signal(signal.SIGSTOP)
        st = Store(db)
        before = (st.list_videos(), st.list_runs(), len(st.embedding_rows()))
        with pytest.raises(BusyError, match=r"vtest_clip.mp4: is being indexed into .*shared.sqlite right"):
            run_all(clip, st, models)
        assert (st.list_videos(), st.list_runs(), len(st.embedding_rows())) == before
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    resumed = run_all(clip, st, models)
    assert resumed[-1].done and not resumed[0].skipped
    (run,) = st.list_runs()
    assert run.status == "done"
    assert_same_result(snapshot(st, run.id), snapshot(ref_st, ref_run.id))
    assert_consistent(db)
    st.close()


def test_not_a_video_raises_video_error_and_leaves_the_library_intact(tmp_path, models, reference):
    st = copy_library(reference[0], tmp_path / "lib.sqlite")
    before = (st.list_videos(), st.list_runs(), len(st.embedding_rows()))
    junk = tmp_path / "notes.mp4"
    junk.write_text("not a video at all\n" * 100)
    with pytest.raises(VideoError, match="notes.mp4"):
        run_all(junk, st, models)
    with pytest.raises(VideoError, match="does not exist"):
        run_all(tmp_path / "missing.avi", st, models)
    assert (st.list_videos(), st.list_runs(), len(st.embedding_rows())) == before
    assert_consistent(st.path)


def test_closing_the_generator_early_counts_as_cancel(tmp_path, clip, models):
    st = Store(tmp_path / "closed.sqlite")
    det, emb = models
    gen = index_video(clip, store=st, detector=det, embedder=emb, tracker_factory=tracker_factory,
                      settings=SETTINGS)
    first = next(gen)
    assert first.frames_done == SETTINGS.det_batch * SETTINGS.stride - 1 and not first.done
    gen.close()
    (run,) = st.list_runs()
    assert run.status == "cancelled" and run.frames_done == first.frames_done
    assert st.load_run_state(run.id) is not None
    assert_consistent(st.path)


class FailingDetector:
    """The real detector, made to fail (as a broken GPU driver would) after some batches."""

    def __init__(self, real, fail_after: int) -> None:
        self.real, self.calls, self.fail_after = real, 0, fail_after
        self.path = real.path

    def detect(self, images):
        self.calls += 1
        if self.calls > self.fail_after:
            raise ModelError(f"{self.path}: ONNX Runtime failed on batch {self.calls}")
        return self.real.detect(images)


def test_error_marks_the_run_failed_and_keeps_the_last_checkpoint(tmp_path, clip, models):
    st = Store(tmp_path / "failed.sqlite")
    det, emb = models
    failing = FailingDetector(det, fail_after=3)
    with pytest.raises(ModelError, match="batch 4"):
        for _ in index_video(clip, store=st, detector=failing, embedder=emb, tracker_factory=tracker_factory,
                             settings=SETTINGS):
            pass
    (run,) = st.list_runs()
    assert run.status == "failed" and "batch 4" in run.error
    assert run.frames_done == 2 * SETTINGS.det_batch * SETTINGS.stride - 1  # the checkpoint after batch 2
    assert st.load_run_state(run.id) is not None
    assert_consistent(st.path)


def test_faiss_index_over_real_tracks_finds_each_track_itself(reference):
    st, run, _, _ = reference
    emb = st.embedding_rows([run.id])
    index = EmbeddingIndex(st, run.reid_sha256, run.embedding_dim, path=st.path.with_suffix(".test.faiss"))
    scores, ids = index.search(emb.vectors, 1, run_ids=[run.id])
    np.testing.assert_array_equal(ids[:, 0], emb.ids)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    # different people are less alike than two crops of one person, on average
    same, other = [], []
    sims = emb.vectors @ emb.vectors.T
    for i in range(len(emb)):
        for j in range(i + 1, len(emb)):
            (same if emb.track_pks[i] == emb.track_pks[j] else other).append(sims[i, j])
    assert np.mean(same) > np.mean(other) + 0.1


class AppearanceAwareByteTracker(ByteTracker):
    """The project's tracker told that it wants embeddings; it records what the pipeline passes it."""

    needs_embeddings = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[tuple[int, ...], np.ndarray, np.ndarray | None]] = []

    def update(self, detections, image=None, embeddings=None):
        # the pipeline passes core.types.LazyEmbeddings: reading every row embeds them all
        vectors = None if embeddings is None else np.array(embeddings[np.arange(len(embeddings))])
        self.seen.append((image.shape, detections.boxes.copy(), vectors))
        return super().update(detections, image, embeddings)


def test_tracker_gets_the_frame_and_the_embeddings_it_asks_for(tmp_path, clip, models, reference):
    """BoxMOT's update(dets, img, embs): a tracker with needs_embeddings gets a vector per detection."""
    det, emb = models
    trackers: list[AppearanceAwareByteTracker] = []

    def factory() -> AppearanceAwareByteTracker:
        trackers.append(AppearanceAwareByteTracker(**TRACKER_KWARGS))
        return trackers[-1]

    short = IndexSettings(stride=2, det_batch=4, commit_every=8, track_gap=6)
    clip24 = cut_clip(clip, tmp_path / "clip24.mp4", 0, 24)
    for _ in index_video(clip24, store=Store(tmp_path / "lib.sqlite"), detector=det, embedder=emb,
                         tracker_factory=factory, settings=short):
        pass
    seen = trackers[-1].seen
    assert len(seen) == 12  # 24 frames at stride 2
    first = next(i for i, (_, boxes, _) in enumerate(seen) if len(boxes))
    from core.video import open_source

    with open_source(clip24) as src:
        frame = src.read(2 * first).image
    shape, boxes, vecs = seen[first]
    assert shape == frame.shape and vecs is not None and vecs.shape == (len(boxes), emb.dim)
    direct = emb.embed(frame, boxes)
    np.testing.assert_allclose(vecs[direct.kept], direct.vectors, atol=1e-5)
    assert all(v is not None and v.shape == (len(b), emb.dim) for _, b, v in seen)
    # the motion-only tracker is given none (no embedder call per frame for it)
    assert not getattr(ByteTracker(), "needs_embeddings", False)
