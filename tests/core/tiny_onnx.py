"""Tiny ONNX models written with the ``onnx`` helper API, run for real by ONNX Runtime in the tests."""

from __future__ import annotations

from pathlib import Path

import pytest


def tiny_model(path: Path, *, in_shape: tuple[int, ...], out_op: str = "Identity",
               batch_dim: int | str = "batch", metadata: dict[str, str] | None = None) -> Path:
    """Write a real, tiny ONNX model and return its path.

    Args:
        path: Where to write it.
        in_shape: ``(C, H, W)`` of the input ``images`` (after the batch dim).
        out_op: ``"Identity"`` (output = input) or ``"GlobalAveragePool"`` (output ``(N, C)``: the
            per-channel mean, a ReID-shaped model whose embedding is easy to compute by hand).
        batch_dim: The batch dim: a name (dynamic) or a fixed size.
        metadata: ``metadata_props`` to store in the model.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch_dim, *in_shape])
    if out_op == "Identity":
        nodes = [helper.make_node("Identity", ["images"], ["out"])]
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch_dim, *in_shape])
    else:
        nodes = [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
                 helper.make_node("Flatten", ["pooled"], ["out"], axis=1)]
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch_dim, in_shape[0]])
    graph = helper.make_graph(nodes, "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path
