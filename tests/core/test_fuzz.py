"""A short fixed-seed run of ``scripts/fuzz.py``: mutated real videos (vtest AVI head, an H.264 MP4),
photos (the sample JPEG and PNG) and ONNX models (tiny real models and the shared ReID model) fed
to the loaders in worker processes. Every input must end in a result or the project's own error
naming the file: no crash, no hang, no other exception. The longer run is the script itself
(the README has its counts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.paths import REPO_ROOT

INPUTS_PER_TARGET = 25


def test_mutated_files_end_in_a_result_or_one_of_our_errors(tmp_path, vtest_path, reid_model_path):
    pytest.importorskip("av")
    pytest.importorskip("onnx")
    out = tmp_path / "counts.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "fuzz.py"), "--inputs", str(INPUTS_PER_TARGET),
         "--seed", "13", "--timeout", "60", "--json", str(out), "--keep", str(tmp_path / "findings")],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "REID_SHARED_DATA": str(vtest_path.parents[1])})
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = json.loads(out.read_text())["counts"]
    print(proc.stdout)
    for target in ("video", "photo", "model"):
        c = counts[target]
        assert c["inputs"] == INPUTS_PER_TARGET
        assert c.get("ok", 0) + c.get("error", 0) == INPUTS_PER_TARGET, (target, c, proc.stdout[-3000:])
    assert proc.returncode == 0
    assert sum(counts[t].get("ok", 0) for t in counts) > 0  # some mutations still load: the loaders ran
