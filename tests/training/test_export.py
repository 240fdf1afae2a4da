"""ONNX export: metadata contract, parity with torch on real images, the app's embedder, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from core.reid import OnnxEmbedder
from training.errors import ExportError
from training.export import default_check_images, export_onnx, preprocess
from training.modeling import build_model, load_weights

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def msmt_model(osnet_weights):
    model = build_model("osnet_x0_25")
    load_weights(model, osnet_weights["msmt17"])
    return model.eval()


@pytest.fixture(scope="module")
def exported(msmt_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "osnet_x0_25_msmt17.onnx"
    return export_onnx(msmt_model, out, model_name="osnet_x0_25_msmt17", train_dataset="msmt17",
                       eval_figures={"note": "torchreid model zoo"})


def _real_crops(market_root):
    files = sorted((market_root / "query").glob("*.jpg"))
    files += sorted((REPO / "training/check_images").glob("*.jpg"))
    return [cv2.imread(str(p)) for p in files]


def test_metadata_map_is_exactly_the_contract(exported):
    proto = onnx.load(str(exported.path))
    md = {p.key: p.value for p in proto.metadata_props}
    assert md == {
        "task": "reid", "input_height": "256", "input_width": "128", "color_order": "RGB",
        "mean": json.dumps(list(MEAN)), "std": json.dumps(list(STD)), "embedding_dim": "512",
        "model_name": "osnet_x0_25_msmt17", "train_dataset": "msmt17",
        "eval": json.dumps({"note": "torchreid model zoo"}), "normalized": "0",
    }
    assert [json.loads(md[k]) for k in ("mean", "std")] == [list(MEAN), list(STD)]
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["output"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch


def test_onnx_matches_torch_on_real_images_at_any_batch_size(exported, msmt_model, market_root):
    # The export's own check ran on the default real crops (shared Market queries + vtest crops).
    assert exported.num_check_images == len(default_check_images()) >= 6
    assert exported.max_abs_diff < 1e-4
    x = preprocess(_real_crops(market_root), (256, 128), MEAN, STD)
    sess = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    batched = sess.run(["output"], {"images": x})[0]
    single = np.concatenate([sess.run(["output"], {"images": x[i:i + 1]})[0] for i in range(len(x))])
    with torch.no_grad():
        ref = msmt_model(torch.from_numpy(x)).numpy()
    print(f"max |onnxruntime - torch| on {len(x)} real crops: {np.abs(batched - ref).max():.2e}")
    assert batched.shape == (len(x), 512)
    assert np.abs(batched - ref).max() < 1e-4
    assert np.abs(single - batched).max() < 1e-4


def test_app_embedder_ranks_the_true_cross_camera_match_first(exported, market_root, other_people):
    """core.reid reads our metadata; query = identity 0001 by camera 6, gallery = her camera-1 crop
    and every other person the detector finds in the 16 full frames."""
    embedder = OnnxEmbedder(exported.path, device="cpu")
    assert embedder.input_size == (256, 128) and embedder.color_order == "RGB" and embedder.dim == 512
    assert embedder.name == "osnet_x0_25_msmt17"
    query = cv2.imread(str(market_root / "query" / "0001_c6s1_009601_00.jpg"))
    her = cv2.imread(str(market_root / "query" / "0001_c1s1_001051_00.jpg"))
    vecs = embedder.embed_crops([query, her] + [crop for _, crop in other_people])
    scores = vecs[1:] @ vecs[0]
    print(f"her: {scores[0]:.3f}, best of {len(other_people)} others: {scores[1:].max():.3f}")
    assert int(np.argmax(scores)) == 0


def test_export_refuses_a_training_mode_model_and_a_failed_parity_leaves_no_file(msmt_model, tmp_path):
    msmt_model.train()
    try:
        with pytest.raises(ExportError, match="must be in eval mode"):
            export_onnx(msmt_model, tmp_path / "x.onnx", model_name="x")
    finally:
        msmt_model.eval()
    # atol=0: ONNX Runtime and torch never agree to the last bit on this network, so the check fails.
    with pytest.raises(ExportError, match=r"x\.onnx: ONNX Runtime differs from torch by .* on 6 real images"):
        export_onnx(msmt_model, tmp_path / "x.onnx", model_name="x", atol=0.0)
    assert list(tmp_path.iterdir()) == []


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "training.export", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_cli_converts_a_torchreid_checkpoint_dict(osnet_weights, market_root, tmp_path):
    """The manifest's install-time command line, on a torchreid-style checkpoint ('state_dict',
    'module.' prefixes) of the Market-1501 weights, checked on the shared Market crops."""
    sd = torch.load(osnet_weights["market1501"], map_location="cpu", weights_only=True)
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in sd.items())}, tmp_path / "m.pth.tar")
    out = tmp_path / "osnet_x0_25_market1501.onnx"
    proc = _cli("--arch", "osnet_x0_25", "--weights", tmp_path / "m.pth.tar", "--out", out,
                "--train-dataset", "market1501", "--check-images", market_root / "query")
    assert proc.returncode == 0, proc.stderr
    assert "max abs diff" in proc.stdout and "on 2 real images" in proc.stdout
    md = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert md["train_dataset"] == "market1501" and md["model_name"] == "osnet_x0_25_market1501"
    # Same numbers as the plain state dict loaded in torch.
    model = build_model("osnet_x0_25")
    load_weights(model, osnet_weights["market1501"])
    x = preprocess(_real_crops(market_root)[:2], (256, 128), MEAN, STD)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    with torch.no_grad():
        assert np.abs(got - model.eval()(torch.from_numpy(x)).numpy()).max() < 1e-4


def test_cli_failures_exit_1_with_one_line_and_no_file(tmp_path, osnet_weights):
    out = tmp_path / "bad.onnx"
    proc = _cli("--arch", "osnet_x0_5", "--weights", osnet_weights["msmt17"], "--out", out)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("export failed: ") and "osnet_x0_25_msmt17.pth: does not fit OSNet" in last
    assert "Traceback" not in proc.stderr and not out.exists()
    proc = _cli("--arch", "osnet_x0_25", "--weights", tmp_path / "missing.pth", "--out", out)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith("missing.pth: weights file not found")
