"""FAISS index over a real SQLite library: exactness, persistence, staleness, rebuilds, run filters.

The vectors are random unit vectors written through the real store; every expected
result is computed by brute force with numpy from what the store returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import index as index_mod
from core.index import EmbeddingIndex, index_path_for
from core.store import NewTrack, Store

DIM = 32


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add_run(st: Store, name: str, n_tracks: int, seed: int, reid: str = "model-a", dim: int = DIM,
            k: int = 3) -> int:
    rng = np.random.default_rng(seed)
    video = st.upsert_video(f"/v/{name}", f"fp-{name}", fps=10, frame_count=100, width=64, height=48)
    run = st.create_run(video.id, detector_name="d", detector_sha256="d", reid_name="r", reid_sha256=reid,
                        embedding_dim=dim, settings={}, settings_key=f"k-{reid}", frames_total=100)
    tracks = [NewTrack(t + 1, [0, 2, 4], [0, 0.2, 0.4], np.tile([1, 2, 30, 60], (3, 1)), [0.9] * 3,
                       [0, 2, 4][:k], unit(rng, k, dim), [0.5] * k) for t in range(n_tracks)]
    st.checkpoint(run.id, frames_done=100, tracks=tracks, status="done")
    return run.id


def brute(st: Store, queries: np.ndarray, k: int, run_ids=None, reid: str = "model-a"):
    rows = st.embedding_rows(run_ids, reid_sha256=reid)
    sims = queries @ rows.vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), rows.ids[order]


@pytest.fixture()
def lib(tmp_path: Path):
    st = Store(tmp_path / "library.sqlite")
    runs = [add_run(st, f"video{i}.mp4", 150, seed=i) for i in range(3)]
    yield st, runs
    st.close()


def test_flat_search_is_exact_inner_product(lib):
    st, _ = lib
    q = unit(np.random.default_rng(99), 7)
    idx = EmbeddingIndex(st, "model-a", DIM)
    scores, ids = idx.search(q, 10)
    exp_scores, exp_ids = brute(st, q, 10)
    assert scores.shape == ids.shape == (7, 10) and ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, exp_ids)
    np.testing.assert_allclose(scores, exp_scores, atol=1e-5)
    assert idx.ntotal == 3 * 150 * 3 and idx.built_kind == "flat"
    # unnormalised queries give the same cosine similarities
    np.testing.assert_allclose(idx.search(q * 7.5, 10)[0], scores, atol=1e-5)


def test_restrict_to_runs_and_padding(lib):
    st, runs = lib
    q = unit(np.random.default_rng(5), 4)
    idx = EmbeddingIndex(st, "model-a", DIM)
    scores, ids = idx.search(q, 8, run_ids=[runs[0], runs[2]])
    exp_scores, exp_ids = brute(st, q, 8, run_ids=[runs[0], runs[2]])
    np.testing.assert_array_equal(ids, exp_ids)
    allowed = set(st.embedding_ids([runs[0], runs[2]]).tolist())
    assert set(ids.ravel().tolist()) <= allowed
    # more neighbours asked than the run has: padded with -1 / -inf
    scores, ids = idx.search(q, 500, run_ids=[runs[1]])
    assert (ids[:, :450] >= 0).all() and (ids[:, 450:] == -1).all() and np.isneginf(scores[:, 450:]).all()
    scores, ids = idx.search(q, 3, run_ids=[])
    assert (ids == -1).all() and np.isneginf(scores).all()


def test_persisted_file_is_reused_and_rebuilt_silently_when_lost_or_corrupt(lib):
    st, _ = lib
    q = unit(np.random.default_rng(1), 5)
    first = EmbeddingIndex(st, "model-a", DIM)
    expected = first.search(q, 12)
    assert first.last_action.startswith("rebuilt: no index file")
    path = index_path_for(st.path, "model-a")
    assert path.is_file() and path.with_name(path.name + ".json").is_file()

    again = EmbeddingIndex(st, "model-a", DIM)
    got = again.search(q, 12)
    assert again.last_action == "loaded"
    np.testing.assert_array_equal(got[1], expected[1])

    path.unlink()
    lost = EmbeddingIndex(st, "model-a", DIM)
    got = lost.search(q, 12)
    assert lost.last_action.startswith("rebuilt")
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(got[0], expected[0], atol=1e-6)

    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64  # flip vector bytes, size unchanged
    path.write_bytes(bytes(data))
    damaged = EmbeddingIndex(st, "model-a", DIM)
    got = damaged.search(q, 12)
    assert "damaged" in damaged.last_action
    np.testing.assert_array_equal(got[1], expected[1])

    path.write_bytes(b"garbage")
    path.with_name(path.name + ".json").write_text("{not json")
    garbage = EmbeddingIndex(st, "model-a", DIM)
    np.testing.assert_array_equal(garbage.search(q, 12)[1], expected[1])
    assert "sidecar" in garbage.last_action
    assert EmbeddingIndex(st, "model-a", DIM).refresh() == "loaded"


def test_stale_index_is_detected_updated_or_rebuilt(lib, tmp_path: Path):
    st, runs = lib
    q = unit(np.random.default_rng(2), 6)
    idx = EmbeddingIndex(st, "model-a", DIM)
    idx.refresh()
    path = index_path_for(st.path, "model-a")
    old_file, old_meta = path.read_bytes(), path.with_name(path.name + ".json").read_text()

    new_run = add_run(st, "new.mp4", 40, seed=42)
    assert idx.refresh() == "updated"
    assert idx.ntotal == 3 * 150 * 3 + 40 * 3
    np.testing.assert_array_equal(idx.search(q, 9)[1], brute(st, q, 9)[1])
    # a fresh process with the old file: its sidecar counts are stale -> new rows added
    path.write_bytes(old_file)
    path.with_name(path.name + ".json").write_text(old_meta)
    reopened = EmbeddingIndex(st, "model-a", DIM)
    np.testing.assert_array_equal(reopened.search(q, 9)[1], brute(st, q, 9)[1])
    assert reopened.last_action == "updated"

    st.delete_run(runs[1])
    assert idx.refresh() == "rebuilt: embeddings were removed"
    scores, ids = idx.search(q, 9)
    np.testing.assert_array_equal(ids, brute(st, q, 9)[1])
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert st.embedding_stats("model-a") == (sidecar["count"], sidecar["max_id"])
    assert sidecar["count"] == idx.ntotal
    # same count, different rows (delete one run, add one of the same size): still detected
    st.delete_run(new_run)
    add_run(st, "other.mp4", 40, seed=43)
    assert idx.refresh().startswith("rebuilt")
    np.testing.assert_array_equal(idx.search(q, 9)[1], brute(st, q, 9)[1])


def test_one_index_per_reid_model(lib):
    st, _ = lib
    add_run(st, "b-model.mp4", 20, seed=7, reid="model-b", dim=16)
    ia = EmbeddingIndex(st, "model-a", DIM)
    ib = EmbeddingIndex(st, "model-b", 16)
    qa, qb = unit(np.random.default_rng(3), 2), unit(np.random.default_rng(4), 2, 16)
    ids_a, ids_b = ia.search(qa, 2000)[1], ib.search(qb, 2000)[1]
    rows_b = set(st.embedding_rows(reid_sha256="model-b").ids.tolist())
    assert set(ids_b[ids_b >= 0].tolist()) == rows_b
    assert not set(ids_a[ids_a >= 0].tolist()) & rows_b
    assert ia.path != ib.path and ia.path.is_file() and ib.path.is_file()
    # a file of the other model put in place is not trusted
    ib.path.replace(ia.path)
    ib.sidecar_path.replace(ia.sidecar_path)
    check = EmbeddingIndex(st, "model-a", DIM)
    np.testing.assert_array_equal(check.search(qa, 5)[1], brute(st, qa, 5)[1])
    assert "reid_sha256" in check.last_action


def test_ivf_with_all_lists_probed_equals_exact(lib, monkeypatch: pytest.MonkeyPatch):
    st, runs = lib
    monkeypatch.setattr(index_mod, "IVF_MIN_VECTORS", 500)
    q = unit(np.random.default_rng(11), 5)
    ivf = EmbeddingIndex(st, "model-a", DIM, kind="ivf", nprobe=10_000)
    scores, ids = ivf.search(q, 10)
    assert ivf.built_kind == "ivf" and 1 < ivf._meta["nlist"] <= round(np.sqrt(1350))
    assert ivf.path.name.endswith(".ivf.faiss")
    np.testing.assert_array_equal(ids, brute(st, q, 10)[1])
    r_ids = ivf.search(q, 10, run_ids=[runs[2]])[1]
    np.testing.assert_array_equal(r_ids, brute(st, q, 10, run_ids=[runs[2]])[1])
    few = EmbeddingIndex(st, "model-a", DIM, kind="ivf", nprobe=1)
    assert few.refresh() == "loaded"
    f_ids = few.search(q, 10)[1]
    assert (f_ids >= 0).any() and set(f_ids[f_ids >= 0].tolist()) <= set(st.embedding_rows().ids.tolist())


def test_flat16_matches_exact_within_half_precision(lib):
    st, runs = lib
    q = unit(np.random.default_rng(13), 6)
    idx = EmbeddingIndex(st, "model-a", DIM, kind="flat16")
    scores, ids = idx.search(q, 10)
    exp_scores, exp_ids = brute(st, q, 10)
    assert idx.built_kind == "flat16" and idx.path.name.endswith(".flat16.faiss")
    np.testing.assert_allclose(scores, exp_scores, atol=2e-3)
    # The same neighbours, except where two exact scores are closer than the fp16 rounding.
    gaps = np.abs(np.diff(exp_scores, axis=1)).min()
    if gaps > 4e-3:
        np.testing.assert_array_equal(ids, exp_ids)
    else:
        assert (ids == exp_ids).mean() > 0.9
    r_scores, r_ids = idx.search(q, 10, run_ids=[runs[1]])
    allowed = set(st.embedding_rows([runs[1]]).ids.tolist())
    assert set(r_ids.ravel().tolist()) <= allowed
    np.testing.assert_allclose(r_scores, brute(st, q, 10, run_ids=[runs[1]])[0], atol=2e-3)
    again = EmbeddingIndex(st, "model-a", DIM, kind="flat16")
    assert again.refresh() == "loaded" and again.ntotal == idx.ntotal


def test_small_ivf_library_falls_back_to_exact(lib):
    st, _ = lib
    idx = EmbeddingIndex(st, "model-a", DIM, kind="ivf")
    q = unit(np.random.default_rng(12), 3)
    np.testing.assert_array_equal(idx.search(q, 4)[1], brute(st, q, 4)[1])
    assert idx.built_kind == "flat"


def test_unknown_kind_lists_valid_ones(lib):
    st, _ = lib
    with pytest.raises(KeyError, match="flat, flat16, ivf"):
        EmbeddingIndex(st, "model-a", DIM, kind="hnsw")


def test_empty_library(tmp_path: Path):
    st = Store(tmp_path / "empty.sqlite")
    idx = EmbeddingIndex(st, "model-a", DIM)
    scores, ids = idx.search(unit(np.random.default_rng(0), 2), 5)
    assert (ids == -1).all() and np.isneginf(scores).all() and idx.ntotal == 0
