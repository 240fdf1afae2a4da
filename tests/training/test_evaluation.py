"""Ranking metrics, re-ranking and query expansion on hand-worked cases; pictures on real images."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.evaluation import evaluate_rank, pairwise_distance, query_expansion, re_ranking
from training.evaluation.visualize import plot_history, save_rank_list

REPO = Path(__file__).resolve().parents[2]

# Gallery: (pid, cam). g0 shares query 0's id AND camera (ignored), g3 is junk (ignored),
# g5 is a distractor (id 0: a negative that stays).
G_PIDS = np.array([1, 2, 1, -1, 1, 0])
G_CAMS = np.array([0, 1, 1, 1, 2, 1])
Q_PIDS = np.array([1, 2, 3])
Q_CAMS = np.array([0, 0, 0])
DIST = np.array([
    # g0   g1   g2   g3   g4   g5
    [0.1, 0.3, 0.4, 0.2, 0.6, 0.5],   # q0 (id 1): kept order g1- g2+ g5- g4+ -> hits at ranks 2 and 4
    [0.9, 0.05, 0.8, 0.7, 0.6, 0.5],  # q1 (id 2): its only match g1 is first
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],   # q2 (id 3): no match in the gallery -> not counted
])


def test_cmc_map_minp_by_hand():
    m = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=50)
    assert m.num_valid == 2
    assert len(m.cmc) == 6  # cut to the gallery size
    # q0: AP = (1/2 + 2/4) / 2 = 0.5, INP = 2 positives / rank 4 of the last one = 0.5, first hit rank 2.
    # q1: AP = 1, INP = 1, first hit rank 1.
    assert m.rank(1) == pytest.approx(0.5) and m.rank(2) == pytest.approx(1.0)
    assert m.mAP == pytest.approx(0.75) and m.mINP == pytest.approx(0.75)
    assert m.as_dict() == {"rank1": 50.0, "rank5": 100.0, "mAP": 75.0, "mINP": 75.0}


def test_same_camera_and_junk_exclusion_matter():
    # Query 0 alone: counting g0 (same id, same camera) would make it a rank-1 hit.
    only_q0 = evaluate_rank(DIST[:1], Q_PIDS[:1], G_PIDS, Q_CAMS[:1], G_CAMS)
    assert only_q0.rank(1) == 0.0 and only_q0.mAP == pytest.approx(0.5)
    other_cam = evaluate_rank(DIST[:1], Q_PIDS[:1], G_PIDS, np.array([5]), G_CAMS)
    # From camera 5 nothing is excluded but junk: order g0+ g1- g2+ g5- g4+ -> AP (1 + 2/3 + 3/5) / 3.
    assert other_cam.rank(1) == 1.0
    assert other_cam.mAP == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert other_cam.mINP == pytest.approx(3 / 5)


def test_no_valid_query_gives_zeros():
    m = evaluate_rank(DIST[2:], Q_PIDS[2:], G_PIDS, Q_CAMS[2:], G_CAMS)
    assert m.num_valid == 0 and m.mAP == 0.0 and not m.cmc.any()


def test_k_reciprocal_reranking_worked_case():
    """Points on a line: query q=0; gallery g1=1.0 inside a tight group a1=1.1, a2=1.25, and g2=-1.05.

    With k1=2 (top-3 lists include the item itself), k2=1, on squared, row-max-normalised distances:
      top3(q) = {q, g1, g2}; top3(g1) = {g1, a1, a2} (no q); top3(g2) = {g2, q, g1}.
      R(q) = {q, g2}: g1 is q's nearest neighbour but q is not among g1's -> not k-reciprocal.
      Expansion (k1/2 = 1) adds nothing new, so R*(q) = {q, g2}, and R*(g2) = {g2, q}.
      R*(g1) lies in {g1, a1, a2}: no overlap with R*(q) -> Jaccard distance 1.
      V(q):  weights exp(0), exp(-1.05^2 / 1.25^2) on (q, g2), normalised;
      V(g2): weights exp(-1.05^2 / 2.3^2), exp(0) on (q, g2), normalised;
      d_J(q, g2) = 1 - m / (2 - m), m = sum of the element-wise minima = 0.3625.
    So re-ranking puts g2 first although g1 is the nearest by the original distance.
    """
    q = np.array([0.0])
    g = np.array([1.0, 1.1, 1.25, -1.05])  # g1, a1, a2, g2

    def d(a, b):
        return np.abs(a[:, None] - b[None, :])

    wq = np.array([1.0, math.exp(-1.05**2 / 1.25**2)])
    wq /= wq.sum()
    wg = np.array([math.exp(-1.05**2 / 2.3**2), 1.0])
    wg /= wg.sum()
    m = np.minimum(wq, wg).sum()
    expected = 1 - m / (2 - m)
    assert expected == pytest.approx(0.3625, abs=1e-4)

    jac = re_ranking(d(q, g), d(q, q), d(g, g), k1=2, k2=1, lambda_value=0.0)
    np.testing.assert_allclose(jac[0], [1.0, 1.0, 1.0, expected], atol=1e-5)
    assert np.argmin(d(q, g)[0]) == 0
    final = re_ranking(d(q, g), d(q, q), d(g, g), k1=2, k2=1, lambda_value=0.3)
    # 0.7 * d_J + 0.3 * normalised original distance (q's row max is 1.25^2).
    want = [0.7 + 0.3 * 1 / 1.5625, 0.7 * expected + 0.3 * 1.1025 / 1.5625]
    np.testing.assert_allclose(final[0, [0, 3]], want, atol=1e-5)
    assert np.argmin(final[0]) == 3


def test_query_expansion_and_distances():
    qf = np.array([[2.0, 0.0]])
    gf = np.array([[0.9, 0.1], [0.0, 3.0]])
    g0 = gf[0] / np.linalg.norm(gf[0])
    want = (np.array([1.0, 0.0]) + g0) / np.linalg.norm(np.array([1.0, 0.0]) + g0)
    np.testing.assert_allclose(query_expansion(qf, gf, top_k=1)[0], want, atol=1e-6)
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    np.testing.assert_allclose(pairwise_distance(qn, gn), 2 * pairwise_distance(qn, gn, "cosine"), atol=1e-6)
    with pytest.raises(KeyError, match="valid metrics: cosine, euclidean"):
        pairwise_distance(qf, gf, "l3")


def test_rank_list_and_curves_pictures(tmp_path, mini_market):
    from training.data.datasets import build_dataset

    data = build_dataset("market1501", mini_market)
    dist = np.arange(len(data.gallery), dtype=np.float32)[None, :]
    out = save_rank_list(tmp_path / "ranks.png", dist, data.query, data.gallery, top_k=5)
    img = cv2.imread(str(out))
    assert img.shape == (128 + 8 + 4, 6 * (64 + 8) + 12, 3)
    first = data.gallery[0][1] == 1  # is the nearest gallery item identity 0001?
    border = img[1, 72 + 12 + 2]  # top border of the first result tile, BGR
    assert tuple(border) == ((0, 180, 0) if first else (0, 0, 220))
    hist = [{"epoch": 1, "loss": 5.0, "ce": 3.0, "acc": 0.1},
            {"epoch": 2, "loss": 4.0, "ce": 2.5, "acc": 0.3, "rank1": 50.0, "mAP": 40.0}]
    png = plot_history(hist, tmp_path / "curves.png")
    assert cv2.imread(str(png)).shape == (400, 1000, 3)


def test_evaluate_cli_on_real_images(mini_market, osnet_weights, tmp_path):
    """Torchreid MSMT17 OSNet x0.25 on the mini Market split: her camera-1 crop is the only true
    match of the camera-6 query among 29 gallery people, and it comes first."""
    proc = subprocess.run([sys.executable, "-m", "training.evaluate", "--arch", "osnet_x0_25",
                           "--weights", str(osnet_weights["msmt17"]), "--dataset", "market1501",
                           "--root", str(mini_market.parent), "--rank-list", str(tmp_path / "r.png"),
                           "--json", str(tmp_path / "m.json"), "--workers", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    figures = json.loads((tmp_path / "m.json").read_text())
    assert figures["rank1"] == 100.0 and figures["mAP"] == 100.0 and figures["mINP"] == 100.0
    assert (tmp_path / "r.png").is_file() and "market1501: rank1 100.0" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "training.evaluate", "--arch", "osnet_x0_25", "--weights",
                          str(osnet_weights["msmt17"]), "--dataset", "market", "--root", "."],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("evaluation failed: unknown dataset 'market'; valid")
