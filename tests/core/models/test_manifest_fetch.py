"""The model manifest and its fetch/verify code, run for real against local folders.

Downloading cannot happen here, so the download path is exercised with ``file://``
URLs: the same urllib code, progress bar and sha256 check a user's download takes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ModelError
from core.models import default_model, entry_for_file, load_manifest
from core.models.fetch import fetch, verify
from core.fileio import sha256_file
from core.paths import REPO_ROOT
from tests.conftest import shared_file

REID_SHA = "61b2604171ef9d58d21758626f83b35a253c3d7123976523a6e03068c3c95d7b"


def write_manifest(tmp_path: Path, models: list[dict]) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"schema": 1, "models": models}))
    return path


def test_project_manifest_is_consistent():
    entries = load_manifest()
    assert {e.task for e in entries} == {"detect", "reid"}
    for e in entries:
        assert e.licence and e.description
        if e.task == "detect":
            assert e.person_classes
        if e.task == "reid" and e.source["kind"] == "local":
            assert e.preprocess is not None, f"{e.name}: a model without metadata needs preprocess"


def test_no_model_present_names_the_fetch_command(tmp_path):
    entries = load_manifest(folder=tmp_path)
    with pytest.raises(ModelError, match=r"python -m core.models fetch"):
        default_model("reid", entries)
    with pytest.raises(ModelError, match="valid tasks: detect, reid"):
        default_model("segment", entries)


def test_offline_folder_fills_models_dir_and_verify_passes(tmp_path):
    shared_models = shared_file("models")
    models = tmp_path / "models"
    entries = load_manifest(folder=models)
    outcomes = {e.name: fetch(e, offline_dir=shared_models, progress=False)
                for e in entries if e.source["kind"] == "local"}
    assert {o.status for o in outcomes.values()} == {"fetched"}
    assert default_model("detect", entries).name == "yolov8s_people_normal_fall"
    assert default_model("reid", entries).name == "osnet_x0_25_msmt17"
    for e in entries:
        if e.present:
            assert verify(e).status == "ok", verify(e).message
    # present files are not copied again
    assert fetch(entries[1], offline_dir=shared_models).status == "present"


def test_download_path_checks_sha256_and_leaves_nothing_on_mismatch(tmp_path):
    src = shared_file("models/osnet_x0_25_msmt17.onnx")
    good = {"name": "reid", "task": "reid", "file": "reid.onnx", "sha256": REID_SHA,
            "source": {"kind": "download", "url": src.resolve().as_uri()},
            "preprocess": {"input_size": [256, 128], "color_order": "RGB",
                           "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
    bad = dict(good, name="bad", file="bad.onnx", sha256="0" * 64)
    entries = load_manifest(write_manifest(tmp_path, [good, bad]), tmp_path / "m")
    ok = fetch(entries[0], progress=False)
    assert ok.status == "fetched" and sha256_file(entries[0].path) == REID_SHA
    failed = fetch(entries[1], progress=False)
    assert failed.status == "failed" and "expected 000" in failed.message
    assert not list((tmp_path / "m").glob("bad.onnx*"))
    missing = dict(good, name="gone", file="gone.onnx",
                   source={"kind": "download", "url": (tmp_path / "nothing.onnx").as_uri()})
    entry = load_manifest(write_manifest(tmp_path, [missing]), tmp_path / "m")[0]
    assert "download from" in fetch(entry, progress=False).message


def test_verify_catches_corrupt_and_wrong_kind_files(tmp_path):
    det = shared_file("models/yolov8s_people_normal_fall.onnx")
    models = tmp_path / "m"
    models.mkdir()
    (models / "reid.onnx").write_bytes(det.read_bytes())  # a detector where a ReID model belongs
    (models / "broken.onnx").write_text("not a model")
    entries = load_manifest(write_manifest(tmp_path, [
        {"name": "reid", "task": "reid", "file": "reid.onnx", "sha256": None},
        {"name": "broken", "task": "detect", "file": "broken.onnx", "sha256": None},
        {"name": "shaful", "task": "detect", "file": "broken.onnx", "sha256": "1" * 64},
    ]), models)
    wrong, broken, sha = (verify(e) for e in entries)
    assert wrong.status == "failed" and "reid.onnx" in wrong.message
    assert broken.status == "failed" and "broken.onnx" in broken.message
    assert sha.status == "failed" and "sha256" in sha.message


def test_entry_for_file_by_name_and_by_content(tmp_path):
    src = shared_file("models/osnet_x0_25_msmt17.onnx")
    renamed = tmp_path / "my_reid_copy.onnx"
    renamed.write_bytes(src.read_bytes())
    assert entry_for_file(src).name == "osnet_x0_25_msmt17"
    assert entry_for_file(renamed).name == "osnet_x0_25_msmt17"
    other = tmp_path / "other.onnx"
    other.write_bytes(b"x")
    assert entry_for_file(other) is None


def test_cli_list_and_offline_fetch(tmp_path):
    shared_models = shared_file("models")
    run = [sys.executable, "-m", "core.models"]
    listed = subprocess.run([*run, "list", "--models-dir", str(tmp_path)], capture_output=True,
                            text=True, cwd=REPO_ROOT, check=True)
    assert "osnet_x0_25_msmt17" in listed.stdout and "missing" in listed.stdout
    fetched = subprocess.run([*run, "fetch", "--models-dir", str(tmp_path), "--offline", str(shared_models),
                              "--only", "yolov8s_people_normal_fall", "osnet_x0_25_msmt17"],
                             capture_output=True, text=True, cwd=REPO_ROOT)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "osnet_x0_25_msmt17.onnx").is_file()
    bad = subprocess.run([*run, "fetch", "--only", "nope"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert bad.returncode == 1 and "valid names:" in bad.stderr


def test_ultralytics_export_path_builds_a_detector(tmp_path):
    """The install-time export users take (``yolo11n.pt`` -> ONNX), run here on ``yolo11n.yaml``.

    Ultralytics builds the yaml's network with random weights offline, so the same
    subprocess export and file move run without any download.
    """
    pytest.importorskip("ultralytics", reason="the export extra (ultralytics) is not installed")
    entry = load_manifest(write_manifest(tmp_path, [
        {"name": "yolo11n_random", "task": "detect", "file": "yolo11n_random.onnx", "sha256": None,
         "person_classes": ["person"],
         "source": {"kind": "ultralytics-export", "weights": "yolo11n.yaml", "imgsz": 320}},
    ]), tmp_path / "m")[0]
    outcome = fetch(entry, progress=False)
    assert outcome.status == "fetched", outcome.message
    result = verify(entry)
    assert result.status == "ok", result.message
