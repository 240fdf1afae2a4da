"""core.onnx_model: loading real ONNX files, provider choice, and one-sentence errors for bad files."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

from core.errors import ModelError
from core.onnx_model import load_session
from tests.core.tiny_onnx import tiny_model


def _one_sentence(err: BaseException, path) -> str:
    msg = str(err)
    assert str(path) in msg
    assert "\n" not in msg and msg.endswith(".")
    return msg


def test_detector_model_loads_with_its_shapes_and_metadata(detector_model_path):
    model = load_session(detector_model_path, device="cpu", expect="detect")
    assert model.kind == "detect"
    assert model.input_name == "images"
    assert len(model.input_shape) == 4 and model.input_shape[1] == 3
    assert model.output_shapes[0][1] == 6  # 4 box values + Normal + Fall
    assert model.metadata["task"] == "detect" and "Normal" in model.metadata["names"]
    assert model.provider == model.session.get_providers()[0] == "CPUExecutionProvider"
    assert model.fallback_note is None
    assert model.session.get_session_options().intra_op_num_threads == os.cpu_count()


def test_reid_model_loads_and_runs(reid_model_path):
    model = load_session(reid_model_path, device="cpu", expect="reid", threads=1)
    assert model.kind == "reid"
    assert model.input_shape[1:] == (3, 256, 128)
    assert model.fixed_hw == (256, 128) and model.fixed_batch is None
    assert model.session.get_session_options().intra_op_num_threads == 1
    out = model.run_batched(np.random.default_rng(0).random((3, 3, 256, 128), np.float32), max_batch=2)
    assert out.shape == (3, 512) and out.dtype == np.float32


def test_cuda_request_reports_what_really_runs(reid_model_path):
    model = load_session(reid_model_path, device="cuda", expect="reid")
    assert model.provider == model.session.get_providers()[0]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert model.provider == "CUDAExecutionProvider" or model.fallback_note
    else:
        assert model.provider == "CPUExecutionProvider"
        assert "CUDA was requested" in model.fallback_note and "CPU" in model.fallback_note
    with pytest.raises(ValueError, match="auto, cuda, cpu"):
        load_session(reid_model_path, device="gpu")


def test_fixed_batch_model_is_run_in_padded_chunks(tmp_path):
    path = tiny_model(tmp_path / "fixed.onnx", in_shape=(3, 4, 2), out_op="GlobalAveragePool", batch_dim=2)
    model = load_session(path, expect="reid")
    assert model.fixed_batch == 2
    batch = np.random.default_rng(1).random((5, 3, 4, 2), np.float32)
    out = model.run_batched(batch, max_batch=64)
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out, batch.mean(axis=(2, 3)), rtol=1e-6)


def test_missing_file(tmp_path):
    path = tmp_path / "models" / "nope.onnx"
    with pytest.raises(ModelError) as err:
        load_session(path)
    assert "does not exist" in _one_sentence(err.value, path)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ModelError) as err:
        load_session(tmp_path)
    assert "is a folder" in _one_sentence(err.value, tmp_path)


def test_text_file_renamed_onnx_gives_short_error(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a model\n")
    with pytest.raises(ModelError) as err:
        load_session(path, expect="reid")
    assert "not a usable ONNX model" in _one_sentence(err.value, path)
    # The deep onnxruntime traceback is not chained onto the error shown to users.
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_detector_where_reid_model_expected(detector_model_path):
    with pytest.raises(ModelError) as err:
        load_session(detector_model_path, expect="reid")
    msg = _one_sentence(err.value, detector_model_path)
    assert "is a person detector (output [N, 6, anchors]), not a ReID model" in msg
    assert "[N, D]" in msg


def test_reid_model_where_detector_expected(reid_model_path):
    with pytest.raises(ModelError) as err:
        load_session(reid_model_path, expect="detect")
    msg = _one_sentence(err.value, reid_model_path)
    assert "is a ReID model (output [N, 512]), not a person detector" in msg


def test_model_of_neither_kind(tmp_path):
    path = tiny_model(tmp_path / "identity.onnx", in_shape=(3, 8, 8))
    with pytest.raises(ModelError) as err:
        load_session(path)
    assert "neither a person detector nor a ReID model" in _one_sentence(err.value, path)


def test_onnx_file_that_onnxruntime_cannot_run(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["images"], ["out"], domain="custom.x")],
                              "unknown_op", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("custom.x", 1)])
    model.ir_version = 8
    path = tmp_path / "custom_op.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError) as err:
        load_session(path, expect="reid")
    msg = _one_sentence(err.value, path)
    assert "not a usable ONNX model" in msg and "NoSuchOp" in msg
    assert msg.count(str(path)) == 1
