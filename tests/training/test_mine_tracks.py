"""Pseudo-identities mined from a real library: a vtest.avi clip indexed by the app's pipeline
(real detector, real tracker, our exported ReID model) into a real SQLite file."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.detection import YoloOnnxDetector
from core.pipeline import IndexSettings, index_video
from core.reid import OnnxEmbedder
from core.store import Store
from core.tracking import ByteTracker
from tests.realdata import cut_clip
from training.data.datasets import build_dataset
from training.export import export_onnx
from training.modeling import build_model, load_weights

REPO = Path(__file__).resolve().parents[2]
CLIP_FRAMES = 80


@pytest.fixture(scope="module")
def library(tmp_path_factory, vtest_path, detector_model_path, osnet_weights):

    tmp = tmp_path_factory.mktemp("library")
    clip = tmp / "vtest_clip.mp4"
    cut_clip(vtest_path, clip, 0, CLIP_FRAMES)
    model = build_model("osnet_x0_25")
    load_weights(model, osnet_weights["msmt17"])
    onnx_path = export_onnx(model.eval(), tmp / "osnet.onnx", model_name="osnet_x0_25_msmt17",
                            train_dataset="msmt17").path
    det = YoloOnnxDetector(detector_model_path, person_classes=("Normal", "Fall"), device="cpu")
    emb = OnnxEmbedder(onnx_path, device="cpu")
    db = tmp / "library.sqlite"
    store = Store(db)
    settings = IndexSettings(stride=2, det_batch=4, commit_every=8, track_gap=6)
    list(index_video(clip, store=store, detector=det, embedder=emb, settings=settings,
                              tracker_factory=functools.partial(ByteTracker, max_age=8)))
    (run,) = store.list_runs()
    tracks = {t.track_id: (t, store.sightings(t.pk)) for t in store.tracks(run.id)}
    video = store.list_videos()[0]
    store.close()
    assert run.status == "done" and len(tracks) >= 3
    return db, clip, video.id, tracks


def test_mine_tracks_cli_writes_one_identity_per_track(library, tmp_path):
    db, clip, video_id, tracks = library
    out = tmp_path / "mined"
    proc = subprocess.run([sys.executable, "-m", "training.mine_tracks", "--db", str(db), "--out", str(out),
                           "--min-track-len", "5", "--max-crops", "4", "--min-height", "40", "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    long_tracks = {tid for tid, (t, s) in tracks.items()
                   if t.n_sightings >= 5 and ((s.boxes[:, 3] - s.boxes[:, 1]) >= 40).sum() >= 5}
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == [f"v{video_id:03d}_t{tid:05d}" for tid in sorted(long_tracks)]
    assert "pseudo-identities from 1 videos" in proc.stdout

    cap = cv2.VideoCapture(str(clip))
    frames = [cap.read()[1] for _ in range(CLIP_FRAMES)]
    for name in folders:
        tid = int(name.split("_t")[1])
        t, s = tracks[tid]
        files = sorted((out / name).glob("*.jpg"))
        assert len(files) == 4
        for f in files:
            cam, frame_no = f.stem.split("_f")
            assert cam == f"c{video_id}"
            i = int(np.flatnonzero(s.frames == int(frame_no))[0])  # a stored sighting of this track
            x1, y1, x2, y2 = (int(round(v)) for v in s.boxes[i])
            x1, y1 = max(0, x1), max(0, y1)
            want = frames[int(frame_no)][y1:y2, x1:x2]
            got = cv2.imread(str(f))
            assert got.shape == want.shape
            assert np.abs(got.astype(int) - want.astype(int)).mean() < 6  # JPEG re-encoding only

    data = build_dataset("generic", out)
    assert data.num_train_pids == len(folders) and {c for _, _, c in data.train} == {video_id}
    info = json.loads((out / "mined.json").read_text())
    assert info["identities"] == len(folders) and info["images"] == 4 * len(folders)


def test_mine_tracks_errors(tmp_path, library):
    proc = subprocess.run([sys.executable, "-m", "training.mine_tracks",
                           "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "o")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith("none.sqlite: no such library database")
    from training.errors import DataError
    from training.mine_tracks import mine_tracks

    with pytest.raises(DataError, match="no video with id 99"):
        mine_tracks(library[0], tmp_path / "o", video_ids=[99], progress=False)
