"""A library file meets faults, on real libraries (clips of vtest.avi indexed with the real models, real
saved searches) and real processes: damaged pages, a truncated file, a library of a later schema
version being salvaged, a read-only library, a write lock held too long, a kill during a migration.
Every test checks that what was stored is still there (or, for a damaged file, exactly what is lost).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest
from sqlalchemy import Column, ForeignKey, Integer, Table, Text

from core.engine import Engine
from core.errors import DamagedLibraryError, StoreError
from core.index import EmbeddingIndex
from core.store import MIGRATIONS, SCHEMA_VERSION, Base, Migration, Store, migrations
from core.store.repair import salvage
from core.video import open_source
from tests.core.faultlib import (
    FAULT_SETTINGS,
    assert_consistent,
    assert_same_result,
    child,
    child_env,
    copy_library,
    damage,
    index,
    snapshot,
)
from tests.core.test_cli import assert_one_line_error, run_cli
from tests.core.test_store import _columns, build_v1

TABLES = ("videos", "index_runs", "tracks", "sightings", "embeddings", "queries", "hits")
IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def models(person_detector, reid_embedder):
    return person_detector, reid_embedder


@pytest.fixture(scope="module")
def models_env(detector_model_path) -> dict[str, str]:
    return {"REID_MODELS_DIR": str(detector_model_path.parent)}


@pytest.fixture(scope="module")
def photos(tmp_path_factory, fault_clips, fault_library) -> list[Path]:
    """Crops of the two longest-tracked standing people of clip A, at a frame where each was seen.

    (The longest track of all is the detector's static "Fall" on the lawn, wider than tall: no
    person to search for.)
    """
    folder = tmp_path_factory.mktemp("photos")
    out = []
    with Store(fault_library("A")) as store, open_source(fault_clips["A"]) as src:
        (run,) = store.list_runs()
        for track in sorted(store.tracks(run.id), key=lambda t: -t.n_sightings):
            seen = store.sightings(track.pk)
            mid = len(seen.frames) // 2
            x1, y1, x2, y2 = (int(v) for v in seen.boxes[mid])
            if y2 - y1 < x2 - x1 or len(out) == 2:
                continue
            path = folder / f"track{track.track_id}.png"
            cv2.imwrite(str(path), src.read(int(seen.frames[mid])).image[y1:y2, x1:x2])
            out.append(path)
    return out


@pytest.fixture(scope="module")
def searched(tmp_path_factory, fault_library, photos, detector_model_path, reid_model_path) -> Path:
    """Clip A's library with two saved searches (and the FAISS file they built): closed, do not change."""
    db = copy_library(fault_library("A"), tmp_path_factory.mktemp("searched") / "library.sqlite")
    with Engine(db, detector=detector_model_path, reid=reid_model_path, device="cpu", precision="fp32",
                settings=FAULT_SETTINGS) as engine:
        for photo in photos:
            assert engine.search([photo]).hits
    return db


def rows(db: Path) -> dict[str, dict[int, tuple]]:
    """Every row of the library's tables by id."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        return {t: {r[0]: r[1:] for r in con.execute(f"SELECT * FROM {t} ORDER BY id")} for t in TABLES}


def kept_file(db: Path) -> Path:
    (kept,) = [p for p in db.parent.glob(db.name + ".damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    return kept


SALVAGED: dict[str, dict[str, float]] = {}
"""Share of rows saved per table, per damage (printed at the end for the README)."""


@pytest.mark.parametrize("how", ["overwritten pages", "truncated file"])
def test_a_damaged_library_is_refused_then_repaired(how, tmp_path, searched, fault_clips, fault_library,
                                                    models, models_env, photos):
    db = copy_library(searched, tmp_path / "lib.sqlite")
    original = rows(db)
    damage(db, how)
    damaged_bytes = db.read_bytes()

    with pytest.raises(DamagedLibraryError) as info:
        Store(db)
    text = str(info.value)
    assert str(db) in text and "is damaged" in text and f"python -m core repair --db {db}" in text
    assert "\n" not in text
    for args in (("index", fault_clips["B"]), ("search", "--query", photos[0])):  # never written into
        proc = run_cli(*args, "--db", db, "--device", "cpu", env_extra=models_env)
        assert_one_line_error(proc, str(db), "is damaged", "repair")
    assert db.read_bytes() == damaged_bytes
    assert not db.with_name(db.name + "-wal").exists() or db.with_name(db.name + "-wal").stat().st_size == 0

    proc = run_cli("repair", "--db", db)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "was damaged" in proc.stdout and "kept as" in proc.stdout
    assert kept_file(db).read_bytes() == damaged_bytes  # kept beside it, never deleted

    assert_consistent(db)
    saved = rows(db)
    for table in ("videos", "sightings", "embeddings", "queries", "hits"):  # saved rows are the old rows
        assert all(saved[table][i] == original[table][i] for i in saved[table]), table
    for i, track in saved["tracks"].items():
        assert track[:2] == original["tracks"][i][:2]  # run and tracker id (counts follow what is left)
    SALVAGED[how] = {t: len(saved[t]) / len(original[t]) for t in TABLES}
    print(f"\n{how}: share of rows saved " + ", ".join(f"{t} {v:.0%}" for t, v in SALVAGED[how].items()))
    assert SALVAGED[how]["videos"] == 1.0 and SALVAGED[how]["index_runs"] == 1.0

    with Store(db) as store:
        (run,) = store.list_runs()
        intact = len(saved["tracks"]) == len(original["tracks"]) and \
            len(saved["sightings"]) == len(original["sightings"])
        assert (run.status == "done") == intact
        if not intact:  # lost tracks: the run says so, stays searchable, and indexing brings them back
            assert run.status == "failed" and run.error.startswith("repair: ")
        index_file = EmbeddingIndex(store, run.reid_sha256, run.embedding_dim)
        assert index_file.path.exists()  # rebuilt by the repair
        assert index_file.refresh() == "loaded" and index_file.ntotal == len(saved["embeddings"])
        if not intact and how == "truncated file":
            items = index(fault_clips["A"], store, models)
            assert items[-1].done and items[0].note  # the run starts again, saying why
            with Store(fault_library("A")) as ref:
                assert_same_result(snapshot(store, run.id), snapshot(ref, ref.list_runs()[0].id))
    assert_consistent(db)


def test_repair_of_a_healthy_library_changes_nothing(tmp_path, searched):
    db = copy_library(searched, tmp_path / "lib.sqlite")
    before = db.read_bytes()
    proc = run_cli("repair", "--db", db)
    assert proc.returncode == 0 and "not damaged" in proc.stdout, proc.stderr
    assert db.read_bytes() == before and not list(tmp_path.glob("*.damaged-*"))


def test_the_check_runs_again_only_after_the_file_changed(tmp_path, searched):
    db = copy_library(searched, tmp_path / "lib.sqlite")
    with Store(db) as store:
        assert store.check_s is not None  # never checked at this path
    with Store(db) as store:
        assert store.check_s is None  # unchanged since its clean check: two stat calls
        store.delete_query(store.list_queries()[0].id)
    with Store(db) as store:
        assert store.check_s is not None  # written since: checked again


def test_salvage_covers_tables_of_later_schema_versions(tmp_path, searched, monkeypatch):
    """A table a later version adds (here a query-marks table of a pretend next version) is salvaged
    generically from the ORM metadata, its orphans dropped like any other."""
    version = SCHEMA_VERSION + 1
    marks = Table("test_query_marks", Base.metadata, Column("id", Integer, primary_key=True),
                  Column("query_id", ForeignKey("queries.id", ondelete="CASCADE"), nullable=False),
                  Column("label", Text, nullable=False))
    try:
        ddl = ("CREATE TABLE test_query_marks (id INTEGER NOT NULL PRIMARY KEY, query_id INTEGER NOT NULL "
               "REFERENCES queries (id) ON DELETE CASCADE, label TEXT NOT NULL)")
        monkeypatch.setitem(MIGRATIONS, version, Migration("query marks", lambda c: c.exec_driver_sql(ddl)))
        monkeypatch.setattr(migrations, "SCHEMA_VERSION", version)
        db = copy_library(searched, tmp_path / "lib.sqlite")
        with Store(db) as store:
            assert store.schema_version == version
            queries = [q.id for q in store.list_queries()]
        with contextlib.closing(sqlite3.connect(db)) as con, con:
            con.execute("PRAGMA foreign_keys = OFF")
            con.executemany("INSERT INTO test_query_marks (query_id, label) VALUES (?, ?)",
                            [(queries[0], "seen"), (queries[1], "not him"), (999, "orphan")])
        report = salvage(db, tmp_path / "new.sqlite")
        assert report.table("test_query_marks").read == 3 and report.table("test_query_marks").kept == 2
        with contextlib.closing(sqlite3.connect(tmp_path / "new.sqlite")) as con:
            assert con.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == version
            assert sorted(con.execute("SELECT query_id, label FROM test_query_marks")) == sorted(
                [(queries[0], "seen"), (queries[1], "not him")])
        assert rows(tmp_path / "new.sqlite") == rows(db)
    finally:
        Base.metadata.remove(marks)


# --------------------------------------------------------------------------- read-only libraries


@contextlib.contextmanager
def read_only(folder: Path, how: str):
    """Make the library folder read-only the way ``how`` says, as a user would meet it."""
    if how == "read-only file" and IS_ROOT:
        pytest.skip("root writes files whatever their mode: chmod makes nothing read-only for root")
    if how != "read-only file" and not IS_ROOT:
        pytest.skip(f"{how} needs root")
    db = folder / "library.sqlite"
    if how == "immutable file":
        done = subprocess.run(["chattr", "+i", str(db)], capture_output=True)
        if done.returncode:
            pytest.skip(f"chattr +i is not supported here: {done.stderr.strip()}")
        undo = ["chattr", "-i", str(db)]
    elif how == "read-only mount":
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        undo = ["umount", str(folder)]
    else:
        db.chmod(0o444)
        folder.chmod(0o555)
        undo = ["chmod", "-R", "u+w", str(folder)]
    try:
        yield db
    finally:
        subprocess.run(undo, check=True)


@pytest.mark.parametrize("how", ["immutable file", "read-only mount", "read-only file"])
def test_a_read_only_library_is_searched_but_not_written(how, tmp_path, searched, fault_clips, photos,
                                                         models_env):
    folder = tmp_path / "ro"
    folder.mkdir()
    copy_library(searched, folder / "library.sqlite")
    before = rows(folder / "library.sqlite")
    with read_only(folder, how) as db:
        data = db.read_bytes()
        proc = run_cli("search", "--query", photos[0], "--db", db, "--device", "cpu", env_extra=models_env)
        assert proc.returncode == 0, proc.stderr
        # how many depends on the crop: one of the library's own tracks, at times two people side by side
        assert "search (not saved)" in proc.stdout
        assert re.search(r"\d (person|people) found at or above", proc.stdout), proc.stdout
        assert f"this search was not saved: the library {db} is read-only" in proc.stdout
        proc = run_cli("index", fault_clips["B"], "--db", db, "--device", "cpu", env_extra=models_env)
        assert_one_line_error(proc, str(db), "is read-only", "nothing can be stored")
        listed = run_cli("list", "--db", db)
        assert listed.returncode == 0 and "clipA.mp4" in listed.stdout
        assert db.read_bytes() == data
    assert rows(folder / "library.sqlite") == before


# --------------------------------------------------------------------------- locks and migrations


def test_a_write_lock_held_too_long_gives_one_sentence(tmp_path, searched, fault_clips, models_env):
    db = copy_library(searched, tmp_path / "lib.sqlite")
    before = rows(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "con.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\ntime.sleep(120)\n", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with Store(db, busy_timeout_s=0.5) as store:  # readers do not wait for a writer
            assert len(store.list_videos()) == 1
            with pytest.raises(StoreError, match="is busy: another program has held its write lock for more "
                                                 "than 0.5 s"):
                store.delete_query(store.list_queries()[0].id)
        proc = run_cli("index", fault_clips["B"], "--db", db, "--device", "cpu",
                       env_extra={**models_env, "REID_BUSY_TIMEOUT_S": "1"})
        assert_one_line_error(proc, str(db), "is busy", "more than 1 s", "try again")
    finally:
        holder.kill()
        holder.wait()
    assert rows(db) == before


MIGRATION_CHILD = textwrap.dedent("""
    import sys, time
    from core.store import MIGRATIONS, SCHEMA_VERSION, Migration, Store
    last = MIGRATIONS[SCHEMA_VERSION]

    def slow(conn):
        last.apply(conn)  # the real step, inside the migration transaction
        print("migrating", flush=True)
        time.sleep(120)

    MIGRATIONS[SCHEMA_VERSION] = Migration(last.description, slow)
    Store(sys.argv[1])
""")


def test_a_kill_during_a_migration_leaves_the_old_schema_working(tmp_path):
    db = tmp_path / "old.sqlite"
    build_v1(db)
    fresh_v1 = tmp_path / "fresh_v1.sqlite"
    build_v1(fresh_v1)
    before = {t: rows(db)[t] for t in ("videos", "index_runs", "tracks", "queries")}
    proc = subprocess.Popen([sys.executable, "-c", MIGRATION_CHILD, str(db)], env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "migrating"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        assert con.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _columns(db) == _columns(fresh_v1)  # exactly the old schema, as the old program reads it
    assert {t: rows(db)[t] for t in before} == before
    with Store(db) as store:  # and the next open migrates it for real
        assert store.schema_version == SCHEMA_VERSION and store.get_run(1).tracks_done == 3
    shutil.rmtree(tmp_path / "old.sqlite.locks", ignore_errors=True)


# --------------------------------------------------------------------------- processes sharing a library


def test_two_processes_index_while_a_third_searches(tmp_path, searched, fault_clips, fault_library, photos,
                                                     detector_model_path, reid_model_path, models_env):
    """Two indexers of different videos and a search, each its own process, on one library: every
    result is what it would be alone, and what was stored before is untouched."""
    db = copy_library(searched, tmp_path / "lib.sqlite")
    search = ("search", "--query", photos[0], "--video", fault_clips["A"], "--db", db, "--device", "cpu",
              "--threshold", "0.5")
    alone = run_cli(*search, "--json", tmp_path / "alone.json", env_extra=models_env)
    assert alone.returncode == 0, alone.stderr
    indexers = [child(db, (detector_model_path, reid_model_path), fault_clips[name]) for name in "BC"]
    try:
        for proc in indexers:  # both have created their runs and are indexing
            assert proc.stdout.readline().startswith("progress"), proc.stderr.read()[-2000:]
        busy = [proc.poll() is None for proc in indexers]
        during = run_cli(*search, "--json", tmp_path / "during.json", env_extra=models_env)
        assert any(busy) and during.returncode == 0, during.stderr
        for proc in indexers:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-2000:]
    finally:
        for proc in indexers:
            if proc.poll() is None:
                proc.kill()
    hits = [json.loads((tmp_path / f"{when}.json").read_text()) for when in ("alone", "during")]
    assert hits[0] and hits[1] == hits[0]
    with Store(db) as store:
        runs = {Path(store.get_video(r.video_id).path).name: r for r in store.list_runs()}
        assert sorted(runs) == ["clipA.mp4", "clipB.mp4", "clipC.mp4"]
        assert all(r.status == "done" for r in runs.values())
        assert len(store.list_queries()) == 4  # the two saved before, and the two searches here
        for name in "ABC":
            with Store(fault_library(name)) as ref:
                assert_same_result(snapshot(store, runs[f"clip{name}.mp4"].id),
                                   snapshot(ref, ref.list_runs()[0].id))
    assert_consistent(db)
