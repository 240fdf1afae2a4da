"""What a library holds, in a form two libraries can be compared by (shared by the indexing tests)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from core.store import Store


def snapshot(st: Store, run_id: int) -> dict:
    """Everything a run wrote, keyed by track id, comparable between databases."""
    out = {}
    emb = st.embedding_rows([run_id])
    for t in st.tracks(run_id):
        s = st.sightings(t.pk)
        mine = emb.track_pks == t.pk
        out[t.track_id] = {
            "meta": (t.first_frame, t.last_frame, t.first_s, t.last_s, t.n_sightings),
            "frames": s.frames, "boxes": s.boxes, "scores": s.scores, "times": s.times_s,
            "emb_frames": emb.frames[mine], "quality": emb.quality[mine], "vectors": emb.vectors[mine],
        }
    return out


def assert_same_result(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for tid in a:
        x, y = a[tid], b[tid]
        assert x["meta"] == y["meta"], tid
        np.testing.assert_array_equal(x["frames"], y["frames"])
        np.testing.assert_array_equal(x["boxes"], y["boxes"])
        np.testing.assert_array_equal(x["scores"], y["scores"])
        np.testing.assert_array_equal(x["times"], y["times"])
        np.testing.assert_array_equal(x["emb_frames"], y["emb_frames"])
        np.testing.assert_allclose(x["quality"], y["quality"], atol=1e-6)
        np.testing.assert_allclose(x["vectors"], y["vectors"], atol=1e-6)


def assert_consistent(db: Path) -> None:
    """integrity_check ok, and no track lacks sightings or embeddings or disagrees with them."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        bad = con.execute("""
            SELECT t.id FROM tracks t
            WHERE (SELECT COUNT(*) FROM sightings s WHERE s.track_pk = t.id) != t.n_sightings
               OR (SELECT MIN(frame) FROM sightings s WHERE s.track_pk = t.id) != t.first_frame
               OR (SELECT MAX(frame) FROM sightings s WHERE s.track_pk = t.id) != t.last_frame
               OR NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.track_pk = t.id)""").fetchall()
        assert bad == []
        runs = con.execute("SELECT id, tracks_done FROM index_runs").fetchall()
        for run_id, tracks_done in runs:
            count = con.execute("SELECT COUNT(*) FROM tracks WHERE run_id = ?", (run_id,)).fetchone()[0]
            assert count == tracks_done
    finally:
        con.close()


def library_snapshot(st: Store) -> dict[str, dict]:
    """Per video (by file name): its one run's status and recorded settings, and everything it wrote."""
    out = {}
    for video in st.list_videos():
        runs = st.list_runs(video.id)
        assert len(runs) == 1, f"{video.path}: {len(runs)} runs"
        out[Path(video.path).name] = {"status": runs[0].status, "settings": runs[0].settings,
                                      "tracks": snapshot(st, runs[0].id)}
    return out


def assert_same_library(a: dict[str, dict], b: dict[str, dict]) -> None:
    """Two :func:`library_snapshot` results hold the same videos, runs and tracks."""
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name]["status"] == b[name]["status"] == "done", name
        assert a[name]["settings"] == b[name]["settings"], name
        assert_same_result(a[name]["tracks"], b[name]["tracks"])
