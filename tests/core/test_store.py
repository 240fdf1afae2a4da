"""The library database on real SQLite files: schema, migrations, helpers, errors, threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect

from core import store as store_mod
from core.errors import StoreError
from core.store import MIGRATIONS, SCHEMA_VERSION, Base, Migration, NewTrack, Store
from core.store.database import IN_CHUNK
from core.types import Hit, Segment


def make_track(track_id: int, frames: list[int], dim: int = 8, k: int = 2, seed: int = 0) -> NewTrack:
    rng = np.random.default_rng(seed + track_id)
    n = len(frames)
    boxes = np.cumsum(rng.uniform(1, 50, (n, 4)), axis=1).astype(np.float32)
    vec = rng.normal(size=(k, dim)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    return NewTrack(track_id=track_id, frames=frames, times_s=[f / 10 for f in frames], boxes=boxes,
                    scores=rng.uniform(0.3, 1, n), emb_frames=frames[:k], vectors=vec,
                    quality=rng.uniform(0, 1, k))


def add_video_run(st: Store, name: str = "a.mp4", key: str = "k1", dim: int = 8, reid: str = "reid-sha"):
    video = st.upsert_video(f"/videos/{name}", f"fp-{name}", fps=10.0, frame_count=100, width=640, height=480)
    run = st.create_run(video.id, detector_name="det", detector_sha256="det-sha", reid_name="osnet",
                        reid_sha256=reid, embedding_dim=dim, settings={"stride": 2}, settings_key=key,
                        frames_total=100)
    return video, run


@pytest.fixture()
def st(tmp_path: Path) -> Store:
    s = Store(tmp_path / "lib" / "library.sqlite")
    yield s
    s.close()


def test_new_database_has_latest_schema_wal_and_foreign_keys(st: Store):
    assert st.schema_version == SCHEMA_VERSION
    with st.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        versions = [r[0] for r in conn.exec_driver_sql("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert st.integrity_check() == "ok"


def _columns(db: Path) -> dict[str, list[str]]:
    eng = create_engine(f"sqlite:///{db}")
    insp = inspect(eng)
    out = {t: sorted(c["name"] for c in insp.get_columns(t)) for t in insp.get_table_names()
           if t != "sqlite_sequence"}
    eng.dispose()
    return out


def test_migrations_build_the_schema_the_orm_describes(st: Store, tmp_path: Path):
    orm_db = tmp_path / "orm.sqlite"
    eng = create_engine(f"sqlite:///{orm_db}")
    Base.metadata.create_all(eng)
    eng.dispose()
    assert _columns(st.path) == _columns(orm_db)


def build_v1(path: Path) -> None:
    """A library as version 1 of the program left it, with some data."""
    eng = create_engine(f"sqlite:///{path}")
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, "
                             "applied TEXT NOT NULL, description TEXT NOT NULL)")
        MIGRATIONS[1].apply(conn)
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (1, '2024-01-01', 'v1')")
        conn.exec_driver_sql("INSERT INTO videos VALUES (1, '/v/a.mp4', 'fpA', 10, 50, 5, 64, 48, 'x')")
        conn.exec_driver_sql(
            "INSERT INTO index_runs (id, video_id, detector_name, detector_sha256, reid_name, reid_sha256, "
            "embedding_dim, settings, settings_key, status, frames_done, frames_total, started) "
            "VALUES (1, 1, 'd', 'ds', 'r', 'rs', 2, '{}', 'k', 'done', 50, 50, 'x')")
        for tid in (1, 2, 3):
            conn.exec_driver_sql(f"INSERT INTO tracks VALUES ({tid}, 1, {tid}, 0, 4, 0, 0.4, 3)")
        conn.exec_driver_sql("INSERT INTO queries VALUES (1, 'x', '[\"p.jpg\"]', '[1]', 0.5, 'rs')")
    eng.dispose()


def test_v1_database_is_migrated_in_place_keeping_data(tmp_path: Path):
    db = tmp_path / "old.sqlite"
    build_v1(db)
    st = Store(db)
    assert st.schema_version == SCHEMA_VERSION
    run = st.get_run(1)
    assert run.tracks_done == 3  # backfilled by migration 2
    assert st.load_run_state(1) is None
    assert [t.track_id for t in st.tracks(1)] == [1, 2, 3]
    q = st.list_queries()
    assert len(q) == 1 and q[0].notes == () and q[0].photos == ("p.jpg",)
    assert st.integrity_check() == "ok"
    st.close()
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    assert _columns(db) == _columns(fresh)


def test_v2_database_gets_people_marks_and_query_vectors_keeping_its_hits(tmp_path: Path):
    """A library of schema 2 (one track per hit, no query vector) opens as schema 3, nothing lost."""
    db = tmp_path / "v2.sqlite"
    build_v1(db)
    eng = create_engine(f"sqlite:///{db}")
    with eng.begin() as conn:
        MIGRATIONS[2].apply(conn)
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (2, '2024-02-01', 'v2')")
        conn.exec_driver_sql("INSERT INTO hits (query_id, track_pk, score, best_frame, best_time_s, "
                             "best_box, segments) VALUES (1, 2, 0.8, 2, 0.2, '[1, 2, 3, 4]', "
                             "'[[0.0, 0.4, 0, 4]]')")
    eng.dispose()
    st = Store(db)
    assert st.schema_version == SCHEMA_VERSION >= 3
    rec = st.load_query(1)
    assert rec.vector is None and rec.marks == {} and rec.summary.like_tracks == ()
    assert rec.hit_tracks == ((2,),) and rec.hits[0].track_ids == (2,) and rec.hits[0].mark == ""
    assert st.linkings() == {} and st.people_of([1, 2, 3]) == {}
    st.close()
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    assert _columns(db) == _columns(fresh)


def test_people_and_marks_round_trip_and_go_with_their_tracks(st: Store):
    video, run = add_video_run(st)
    st.checkpoint(run.id, frames_done=9, tracks=[make_track(t, [t, t + 2]) for t in (1, 2, 3)])
    pk = {t.track_id: t.pk for t in st.tracks(run.id)}
    st.save_people(run.id, {pk[1]: 1, pk[2]: 2, pk[3]: 1}, settings={"v": 1}, elapsed_s=0.01)
    assert st.run_people(run.id) == {1: [pk[1], pk[3]], 2: [pk[2]]}
    assert st.people_of([pk[3]]) == {pk[3]: (run.id, 1)}
    assert st.person_tracks([(run.id, 1)]) == {(run.id, 1): [pk[1], pk[3]]}
    assert st.linkings([run.id])[run.id].people == 2
    st.save_people(run.id, {pk[1]: 1, pk[2]: 2, pk[3]: 3}, settings={"v": 2}, elapsed_s=0.01)  # replaced
    assert st.run_people(run.id) == {1: [pk[1]], 2: [pk[2]], 3: [pk[3]]}

    hit = Hit(video.id, video.path, 3, 0.9, (Segment(0.1, 0.5, 1, 5),), 3, 0.3, (1.0, 2.0, 3.0, 4.0),
              track_ids=(1, 3))
    other = Hit(video.id, video.path, 2, 0.95, (Segment(0.2, 0.4, 2, 4),), 2, 0.2, (1.0, 2.0, 3.0, 4.0))
    vector = np.linspace(0, 1, 8, dtype=np.float32)
    qid = st.save_query(photos=["p.jpg"], video_ids=[video.id], threshold=0.8, reid_sha256="reid-sha",
                        hits=[((pk[3], pk[1]), hit), (pk[2], other)], vector=vector)
    st.set_marks(qid, {pk[1]: "confirmed", pk[2]: "rejected"})
    rec = st.load_query(qid)
    np.testing.assert_array_equal(rec.vector, vector)
    assert rec.marks == {pk[1]: "confirmed", pk[2]: "rejected"}
    # confirmed first whatever the score, rejected last; a hit's tracks in time order
    assert [(h.track_id, h.track_ids, h.mark) for h in rec.hits] == [(3, (1, 3), "confirmed"),
                                                                     (2, (2,), "rejected")]
    assert rec.hit_tracks == ((pk[3], pk[1]), (pk[2],))
    st.set_marks(qid, {pk[2]: None})
    assert st.marks(qid) == {pk[1]: "confirmed"}
    with pytest.raises(ValueError, match="mark must be one of"):
        st.set_marks(qid, {pk[1]: "maybe"})
    st.replace_hits(qid, [(pk[2], other)])
    assert [h.track_id for h in st.load_query(qid).hits] == [2]
    st.reset_run(run.id)   # the run's tracks go, and with them its people, its marks and its linking
    assert st.run_people(run.id) == {} and st.linkings() == {} and st.marks(qid) == {}
    assert st.integrity_check() == "ok"


def test_v0_database_with_empty_version_table_and_empty_file_are_migrated(tmp_path: Path):
    db = tmp_path / "v0.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied TEXT NOT NULL, "
                "description TEXT NOT NULL)")
    con.commit()
    con.close()
    assert Store(db).schema_version == SCHEMA_VERSION
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    assert Store(empty).schema_version == SCHEMA_VERSION


def test_failed_migration_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db = tmp_path / "lib.sqlite"
    st = Store(db)
    add_video_run(st)

    def broken(conn) -> None:
        conn.exec_driver_sql("ALTER TABLE videos ADD COLUMN extra TEXT")
        conn.exec_driver_sql("DROP TABLE hits")
        raise RuntimeError("step failed half-way")

    monkeypatch.setitem(MIGRATIONS, SCHEMA_VERSION + 1, Migration("broken", broken))
    with pytest.raises(RuntimeError, match="half-way"):
        st._migrate(SCHEMA_VERSION + 1)
    assert st.schema_version == SCHEMA_VERSION
    cols = _columns(db)
    assert "extra" not in cols["videos"] and "hits" in cols
    assert len(st.list_videos()) == 1


def test_newer_schema_is_refused_with_one_sentence(tmp_path: Path):
    db = tmp_path / "new.sqlite"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("INSERT INTO schema_version VALUES (?, 'x', 'future')", (SCHEMA_VERSION + 5,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer version") as info:
        Store(db)
    assert str(db) in str(info.value) and "\n" not in str(info.value)


def test_not_a_database_and_foreign_database_are_refused(tmp_path: Path):
    junk = tmp_path / "notes.sqlite"
    junk.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(StoreError, match="not an SQLite database") as info:
        Store(junk)
    assert str(junk) in str(info.value)
    assert junk.read_text().startswith("these are my notes")  # untouched

    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="another program"):
        Store(other)
    with pytest.raises(StoreError, match="folder"):
        Store(tmp_path)


def test_moved_video_is_recognised_by_fingerprint(st: Store):
    a = st.upsert_video("/videos/a.mp4", "fp", fps=25, frame_count=250, width=64, height=48)
    b = st.upsert_video("/archive/renamed.mp4", "fp", fps=25, frame_count=250, width=64, height=48)
    assert a.id == b.id and b.path == "/archive/renamed.mp4" and b.duration_s == 10.0
    assert st.video_by_path("/archive/renamed.mp4") == b
    assert st.video_by_path("/videos/a.mp4") is None
    assert st.video_by_fingerprint("fp") == b
    assert len(st.list_videos()) == 1
    with pytest.raises(StoreError, match="video 999"):
        st.get_video(999)


def test_checkpoint_writes_tracks_whole_and_reads_back(st: Store):
    video, run = add_video_run(st)
    assert st.find_run(video.id, "k1") == run and run.status == "running"
    t1, t2 = make_track(1, [0, 2, 4, 6]), make_track(2, [2, 4, 6])
    st.checkpoint(run.id, frames_done=7, tracks=[t2, t1], state=b"state-1")
    r = st.get_run(run.id)
    assert (r.frames_done, r.tracks_done, r.status, r.finished) == (7, 2, "running", None)
    assert st.load_run_state(run.id) == b"state-1"
    tracks = st.tracks(run.id)
    assert [t.track_id for t in tracks] == [1, 2]
    assert (tracks[0].first_frame, tracks[0].last_frame, tracks[0].n_sightings) == (0, 6, 4)
    assert tracks[0].last_s == pytest.approx(0.6) and tracks[0].video_id == video.id
    s1 = st.sightings(tracks[0].pk)
    np.testing.assert_array_equal(s1.frames, [0, 2, 4, 6])
    np.testing.assert_allclose(s1.boxes, t1.boxes)
    assert not s1.boxes.flags.writeable
    fr = st.sightings_in_frame(run.id, 2, 4)
    pairs = list(zip(fr.frames.tolist(), fr.track_ids.tolist(), strict=True))
    assert pairs == [(2, 1), (2, 2), (4, 1), (4, 2)]
    assert len(st.sightings_in_frame(run.id, 3)) == 0
    emb = st.embedding_rows([run.id])
    pks, vecs = emb.track_pks, emb.vectors
    assert vecs.shape == (4, 8) and vecs.dtype == np.float32
    # ordered by embedding id = write order (t2 was written first)
    assert pks.tolist() == [tracks[1].pk] * 2 + [tracks[0].pk] * 2
    np.testing.assert_array_equal(vecs[2:], t1.vectors)
    assert st.get_tracks(pks) == {t.pk: t for t in tracks}
    st.checkpoint(run.id, frames_done=100, status="done", state=None)
    done = st.get_run(run.id)
    assert done.status == "done" and done.finished is not None and st.load_run_state(run.id) is None
    assert st.latest_run(video.id) == done
    assert st.integrity_check() == "ok"


def test_failed_checkpoint_writes_nothing(st: Store):
    _, run = add_video_run(st, dim=8)
    st.checkpoint(run.id, frames_done=5, tracks=[make_track(1, [0, 2])], state=b"a")
    with pytest.raises(ValueError, match="D=16"):
        st.checkpoint(run.id, frames_done=9, tracks=[make_track(2, [4, 6]), make_track(3, [6, 8], dim=16)],
                      state=b"b")
    r = st.get_run(run.id)
    assert (r.frames_done, r.tracks_done) == (5, 1) and st.load_run_state(run.id) == b"a"
    assert [t.track_id for t in st.tracks(run.id)] == [1]
    assert len(st.embedding_rows([run.id])) == 2


def test_duplicate_run_and_reset_and_cascading_delete(st: Store):
    video, run = add_video_run(st)
    with pytest.raises(StoreError, match="already has a run"):
        add_video_run(st)
    st.checkpoint(run.id, frames_done=9, tracks=[make_track(1, [0, 2, 4])], state=b"s")
    st.reset_run(run.id)
    r = st.get_run(run.id)
    assert (r.frames_done, r.tracks_done, st.load_run_state(run.id), st.tracks(run.id)) == (0, 0, None, [])
    st.checkpoint(run.id, frames_done=9, tracks=[make_track(1, [0, 2, 4])])
    pk = st.tracks(run.id)[0].pk
    qid = st.save_query(photos=["p.jpg"], video_ids=[video.id], threshold=0.5, reid_sha256="reid-sha",
                        hits=[(pk, Hit(video.id, video.path, 1, 0.8, (), 2, 0.2, (1, 2, 3, 4)))])
    st.delete_video(video.id)
    assert st.list_videos() == [] and st.list_runs() == [] and st.tracks(run.id) == []
    assert len(st.embedding_rows()) == 0 and len(st.sightings_in_frame(run.id, 0, 100)) == 0
    assert st.load_query(qid).hits == ()
    assert st.integrity_check() == "ok"


def test_embedding_ids_are_never_reused_so_stats_detect_changes(st: Store):
    video, run = add_video_run(st)
    st.checkpoint(run.id, frames_done=9, tracks=[make_track(1, [0, 2, 4]), make_track(2, [0, 2])])
    before = st.embedding_stats("reid-sha")
    assert before == (4, 4)
    st.delete_run(run.id)
    assert st.embedding_stats("reid-sha") == (0, 0)
    run2 = st.create_run(video.id, detector_name="d", detector_sha256="d", reid_name="r",
                         reid_sha256="reid-sha", embedding_dim=8, settings={}, settings_key="k2",
                         frames_total=1)
    st.checkpoint(run2.id, frames_done=9, tracks=[make_track(1, [0, 2, 4]), make_track(2, [0, 2])])
    after = st.embedding_stats("reid-sha")
    assert after[0] == before[0] and after[1] > before[1]
    assert st.embedding_rows(min_id=before[1]).ids.tolist() == [5, 6, 7, 8]
    assert st.embedding_stats("other-model") == (0, 0)


def test_embedding_rows_by_model_and_runs(st: Store):
    _, run_a = add_video_run(st, "a.mp4", reid="m1", dim=8)
    _, run_b = add_video_run(st, "b.mp4", reid="m2", dim=16)
    st.checkpoint(run_a.id, frames_done=5, tracks=[make_track(1, [0, 2, 4], dim=8)])
    st.checkpoint(run_b.id, frames_done=5, tracks=[make_track(1, [0, 2, 4], dim=16, k=3)])
    assert st.embedding_rows(reid_sha256="m1").vectors.shape == (2, 8)
    assert st.embedding_rows(reid_sha256="m2").vectors.shape == (3, 16)
    assert st.embedding_ids([run_b.id]).tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match="different dimensions"):
        st.embedding_rows()
    assert st.embedding_rows(with_vectors=False).vectors.shape == (5, 0)


def test_batch_lookups_span_more_ids_than_one_sql_statement_takes(st: Store):
    """get_tracks, sightings_of, embedding_info and embedding_counts with over IN_CHUNK ids."""
    _, run_a = add_video_run(st, "a.mp4", reid="m1")
    _, run_b = add_video_run(st, "b.mp4", reid="m1")
    _, run_c = add_video_run(st, "c.mp4", reid="m2")
    n = IN_CHUNK + 150
    st.checkpoint(run_a.id, frames_done=9, tracks=[make_track(t, [t % 7, t % 7 + 2], k=1) for t in range(n)])
    st.checkpoint(run_b.id, frames_done=9, tracks=[make_track(1, [0, 2, 4])])
    st.checkpoint(run_c.id, frames_done=9, tracks=[make_track(1, [0, 2, 4])])
    assert st.embedding_counts("m1") == {run_a.id: n, run_b.id: 2}
    assert st.embedding_counts("m2") == {run_c.id: 2} and st.embedding_counts("other") == {}

    tracks = st.tracks(run_a.id)
    pks = [t.pk for t in tracks]
    assert len(pks) == n
    asked = pks[::-1] + pks[:10] + [10**9]  # any order, repeats, an unknown id
    assert st.get_tracks(asked) == {t.pk: t for t in tracks}
    batch = st.sightings_of(np.array(asked))
    assert sorted(batch) == sorted(pks)
    for pk in (pks[0], pks[IN_CHUNK - 1], pks[IN_CHUNK], pks[-1]):
        one = st.sightings(pk)
        got = batch[pk]
        for name in ("track_pks", "track_ids", "frames", "times_s", "boxes", "scores"):
            np.testing.assert_array_equal(getattr(got, name), getattr(one, name))
        assert not got.boxes.flags.writeable
    assert st.sightings_of([]) == {}

    emb = st.embedding_rows([run_a.id])
    info = st.embedding_info(emb.ids[::-1])
    rows = zip(emb.ids.tolist(), emb.track_pks.tolist(), emb.frames.tolist(), strict=True)
    assert info == {i: (p, f) for i, p, f in rows}
    assert len(info) == n and st.embedding_info([10**9]) == {}


def test_queries_round_trip_best_first_and_filter_by_video(st: Store):
    va, run_a = add_video_run(st, "a.mp4")
    vb, run_b = add_video_run(st, "b.mp4")
    st.checkpoint(run_a.id, frames_done=9, tracks=[make_track(4, [0, 2, 4])])
    st.checkpoint(run_b.id, frames_done=9, tracks=[make_track(7, [2, 4])])
    pa, pb = st.tracks(run_a.id)[0].pk, st.tracks(run_b.id)[0].pk
    ha = Hit(va.id, va.path, 4, 0.61, (Segment(0.0, 0.4, 0, 4),), 2, 0.2, (1.0, 2.0, 3.0, 4.0))
    segs = (Segment(0.2, 0.3, 2, 3), Segment(0.5, 0.6, 5, 6))
    hb = Hit(vb.id, vb.path, 7, 0.83, segs, 4, 0.4, (5.0, 6.0, 7.0, 8.0))
    q1 = st.save_query(photos=["x.jpg", "y.jpg"], video_ids=[va.id, vb.id], threshold=0.55,
                       reid_sha256="reid-sha", hits=[(pa, ha), (pb, hb)],
                       notes=["x.jpg: 2 people, used largest"])
    q2 = st.save_query(photos=["z.jpg"], video_ids=[va.id], threshold=0.5, reid_sha256="reid-sha", hits=[])
    rec = st.load_query(q1)
    assert rec.hits == (hb, ha) and rec.track_pks == (pb, pa)
    assert rec.summary.notes == ("x.jpg: 2 people, used largest",) and rec.summary.hits == 2
    assert [q.id for q in st.list_queries()] == [q2, q1]
    assert [q.id for q in st.list_queries(vb.id)] == [q1]
    moved = st.upsert_video("/elsewhere/b2.mp4", "fp-b.mp4", fps=10, frame_count=100, width=640, height=480)
    assert st.load_query(q1).hits[0].video_path == moved.path
    with pytest.raises(StoreError, match="query 999"):
        st.load_query(999)


def test_threads_share_one_store(st: Store):
    video, _ = add_video_run(st)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            run = st.create_run(video.id, detector_name="d", detector_sha256="d", reid_name="r",
                                reid_sha256="reid-sha", embedding_dim=8, settings={"i": i},
                                settings_key=f"t{i}", frames_total=10)
            for step in range(5):
                st.checkpoint(run.id, frames_done=step, tracks=[make_track(step + 1, [step, step + 1])])
                st.list_runs(video.id)
                st.embedding_stats("reid-sha")
        except BaseException as err:  # noqa: BLE001 - collected for the assert below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert st.embedding_stats("reid-sha")[0] == 6 * 5 * 2
    assert st.integrity_check() == "ok"


def test_store_module_has_no_qt_or_torch():
    files = sorted(Path(store_mod.__file__).parent.glob("*.py"))
    assert len(files) > 1  # the package's modules, not only its __init__
    src = "".join(f.read_text() for f in files)
    assert "PySide6" not in src and "import torch" not in src
