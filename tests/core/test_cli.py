"""``python -m core`` run as a real subprocess on real data (a 6 s vtest clip, the shared models)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import VideoError
from core.store import Store
from core.text import format_time
from core.video import expand_sources, open_source

REPO = Path(__file__).resolve().parents[2]
HIT_KEYS = {"video", "track_id", "score", "segments", "best_frame", "best_time_s", "best_box", "track_ids"}


def run_cli(*args, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("videos", "index_runs", "tracks", "sightings", "embeddings", "queries", "hits")}


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1, proc
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def models_env(detector_model_path) -> dict[str, str]:
    """Default models taken from the shared models folder (as after `python -m core.models fetch`)."""
    return {"REID_MODELS_DIR": str(detector_model_path.parent)}


@pytest.fixture(scope="module")
def library(tmp_path_factory, short_clip, models_env) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """A library with the 6 s clip indexed by the command line."""
    folder = tmp_path_factory.mktemp("cli")
    clip = folder / "walk.mp4"
    shutil.copyfile(short_clip, clip)
    db = folder / "lib.sqlite"
    proc = run_cli("index", clip, "--db", db, "--stride", 2, "--device", "cpu", env_extra=models_env)
    return db, clip, proc


@pytest.fixture(scope="module")
def frame52(vtest_path) -> np.ndarray:
    """Frame 52 of vtest.avi, BGR ``(576, 768, 3)``."""
    with open_source(vtest_path) as src:
        return src.read(52).image


@pytest.fixture(scope="module")
def man_photo(tmp_path_factory, frame52) -> Path:
    """The man in the red jacket at frame 52 (see test_end_to_end.py), saved as a JPEG crop."""
    out = tmp_path_factory.mktemp("photos") / "man.jpg"
    cv2.imwrite(str(out), frame52[205:305, 490:545])
    return out


@pytest.fixture(scope="module")
def grass_photo(tmp_path_factory, frame52) -> Path:
    """A patch of lawn from frame 52: a photo with no person in it."""
    out = tmp_path_factory.mktemp("photos") / "lawn.png"
    cv2.imwrite(str(out), frame52[460:570, 300:700])
    return out


def test_index_prints_progress_and_a_summary(library):
    db, clip, proc = library
    assert proc.returncode == 0, proc.stderr
    assert f"{clip}: indexed 60 frames" in proc.stdout and "tracks in" in proc.stdout
    assert "frame" in proc.stderr and "walk.mp4" in proc.stderr        # the tqdm bar
    assert "Traceback" not in proc.stderr
    with Store(db) as store:
        (video,) = store.list_videos()
        (run,) = store.list_runs(video.id)
        assert run.status == "done" and run.tracks_done > 0 and run.settings["stride"] == 2


def test_index_again_is_a_no_op(library, models_env):
    db, clip, _ = library
    before = counts(db)
    proc = run_cli("index", clip, "--db", db, "--stride", 2, env_extra=models_env)
    assert proc.returncode == 0 and "already indexed" in proc.stdout
    assert counts(db) == before


def test_search_writes_json_hits(library, man_photo, models_env, tmp_path):
    db, clip, _ = library
    out = tmp_path / "hits.json"
    proc = run_cli("search", "--query", man_photo, "--db", db, "--json", out, "--threshold", 0.6,
                   env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    assert "similarity" in proc.stdout and "walk.mp4" in proc.stdout
    assert "used the whole photo as a person crop" in proc.stdout
    hits = json.loads(out.read_text())
    assert isinstance(hits, list) and hits
    for h in hits:
        assert set(h) == HIT_KEYS
        assert h["video"] == str(clip.resolve())
        assert isinstance(h["track_id"], int) and isinstance(h["best_frame"], int)
        assert 0.6 <= h["score"] <= 1.0
        assert h["segments"] and all(set(s) == {"start_s", "end_s", "start_frame", "end_frame"}
                                     for s in h["segments"])
        for s in h["segments"]:
            assert 0 <= s["start_frame"] <= s["end_frame"] < 60 and s["start_s"] <= s["end_s"]
        assert any(s["start_frame"] <= h["best_frame"] <= s["end_frame"] for s in h["segments"])
        assert h["best_time_s"] == pytest.approx(h["best_frame"] / 10.0)
        x1, y1, x2, y2 = h["best_box"]
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    # the man is in the clip from 1.8 s on; the best hit is him at about frame 52
    assert hits[0]["score"] > 0.85
    assert any(s["start_frame"] <= 52 <= s["end_frame"] for s in hits[0]["segments"])


def test_list_and_show(library, man_photo, models_env):
    db, clip, _ = library
    proc = run_cli("search", "--query", man_photo, "--db", db, "--video", clip, env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    query_id = int(proc.stdout.split()[1].rstrip(":"))
    listed = run_cli("list", "--db", db)
    assert listed.returncode == 0, listed.stderr
    assert str(clip.resolve()) in listed.stdout and "indexed" in listed.stdout
    assert "osnet_x0_25_msmt17" in listed.stdout
    assert any(line.split()[:1] == [str(query_id)] and str(man_photo) in line
               for line in listed.stdout.splitlines())
    shown = run_cli("show", query_id, "--db", db, "--json", "-")
    assert shown.returncode == 0, shown.stderr
    hits = json.loads(shown.stdout)
    assert hits and all(set(h) == HIT_KEYS for h in hits)
    assert f"query {query_id}" in shown.stderr


def test_refine_like_link_and_the_empty_result(library, man_photo, models_env, shared_data):
    db, clip, _ = library
    proc = run_cli("search", "--query", man_photo, "--db", db, "--json", "-", "--threshold", 0.0,
                   env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    query_id = int(proc.stderr.split()[1].rstrip(":"))
    hits = json.loads(proc.stdout)
    man, other = hits[0], hits[1]
    assert man["track_id"] in man["track_ids"]
    # reject one hit, confirm the man (by VIDEO:TRACK): re-ranked, stored, shown again by `show`
    proc = run_cli("refine", query_id, "--reject", other["track_ids"][0], "--confirm",
                   f"{clip}:{man['track_id']}", "--db", db, "--json", "-", "--threshold", 0.0,
                   env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    refined = json.loads(proc.stdout)
    assert refined[0]["track_ids"] == man["track_ids"]
    assert other["track_ids"] not in [h["track_ids"] for h in refined]
    assert "1 confirmed hit and 1 rejected hit" in proc.stderr and "(1 rejected hit left out)" in proc.stderr
    shown = run_cli("show", query_id, "--db", db, "--threshold", 0.0)
    row = next(line for line in shown.stdout.splitlines() if line.startswith("1 "))
    assert row.split()[2] == "yes"                                          # the mark column
    assert_one_line_error(run_cli("refine", query_id, "--confirm", 9999, "--db", db, env_extra=models_env),
                          f"query {query_id} has no hit with track 9999")
    # find similar from the man's hit
    proc = run_cli("search", "--like", f"{clip}:{man['track_id']}", "--db", db, "--json", "-",
                   env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    like = json.loads(proc.stdout)
    assert like[0]["track_ids"] == man["track_ids"] and "similar to walk.mp4 track" in proc.stderr
    # linking: done when the clip was indexed; --force does it again
    assert "linked already" in run_cli("link", "--db", db).stdout
    proc = run_cli("link", "--db", db, "--force")
    assert proc.returncode == 0 and "walk.mp4: " in proc.stdout and " people in " in proc.stdout
    # nobody reaches the threshold: the sentence names the best score and what to do
    stranger = shared_data / "reid_images/market1501_songwsx/query/0001_c1s1_001051_00.jpg"
    proc = run_cli("search", "--query", stranger, "--db", db, env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    assert "Nobody reaches similarity" in proc.stdout and "the best candidate scores 0." in proc.stdout
    assert "Lower the threshold to" in proc.stdout


@pytest.mark.parametrize("case", ["not_a_video", "empty", "truncated_mp4", "missing"])
def test_bad_videos_give_one_line_and_leave_the_library_intact(case, library, models_env, tmp_path,
                                                               short_clip):
    db, _, _ = library
    before = counts(db)
    if case == "not_a_video":
        bad = tmp_path / "notes.mp4"
        bad.write_text("this is text, not a video\n")
    elif case == "empty":
        bad = tmp_path / "empty.avi"
        bad.write_bytes(b"")
    elif case == "truncated_mp4":
        bad = tmp_path / "cut.mp4"
        bad.write_bytes(short_clip.read_bytes()[: short_clip.stat().st_size // 3])
    else:
        bad = tmp_path / "nowhere.mp4"
    proc = run_cli("index", bad, "--db", db, env_extra=models_env)
    assert_one_line_error(proc, bad.name)
    assert counts(db) == before
    with Store(db) as store:
        assert store.integrity_check() == "ok"


def test_truncated_avi_indexes_what_decodes_and_fails(tmp_path, vtest_path, models_env):
    """An AVI cut short still decodes its first frames: they are indexed, and the run says it was cut."""
    full = tmp_path / "full.avi"
    cap = cv2.VideoCapture(str(vtest_path))
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (768, 576))
    for _ in range(40):
        writer.write(cap.read()[1])
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    db = tmp_path / "lib.sqlite"
    proc = run_cli("index", cut, "--db", db, env_extra=models_env)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1
    assert "cut.avi is truncated or damaged" in errors[0] and "of the 40 frames" in errors[0]
    with Store(db) as store:
        assert store.integrity_check() == "ok"
        (video,) = store.list_videos()
        run = store.latest_run(video.id)
        assert run.status == "done" and 10 <= run.frames_total < 38


def test_bad_queries_give_one_line_and_leave_the_library_intact(library, grass_photo, man_photo, models_env,
                                                                tmp_path):
    db, _, _ = library
    before = counts(db)
    assert_one_line_error(run_cli("search", "--query", grass_photo, "--db", db, env_extra=models_env),
                          "lawn.png", "no person found")
    gone = tmp_path / "gone.jpg"
    assert_one_line_error(run_cli("search", "--query", gone, "--db", db, env_extra=models_env),
                          "gone.jpg", "photo not found")
    other = tmp_path / "other.mp4"
    assert_one_line_error(run_cli("search", "--query", man_photo, "--db", db, "--video", other,
                                  env_extra=models_env), "other.mp4", "not in the library")
    assert_one_line_error(run_cli("list", "--db", tmp_path / "none.sqlite"), "none.sqlite")
    assert_one_line_error(run_cli("show", 4242, "--db", db), "query 4242")
    assert_one_line_error(run_cli("search", "--query", man_photo, "--db", db, "--reid", tmp_path / "x.onnx",
                                  env_extra=models_env), "x.onnx")
    assert counts(db) == before
    with Store(db) as store:
        assert store.integrity_check() == "ok"


def test_bad_arguments_exit_2(library, man_photo):
    db, _, _ = library
    for args in (["search", "--db", db],                                   # no --query
                 ["search", "--query", man_photo, "--threshold", "1.5"],
                 ["index", "x.mp4", "--stride", "0"],
                 ["index", "x.mp4", "--device", "tpu"],
                 ["frobnicate"]):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "usage:" in proc.stderr


def test_image_folder_is_indexed_as_one_sequence(tmp_path, vtest_path, models_env):
    folder = tmp_path / "shots"
    folder.mkdir()
    with open_source(vtest_path) as src:
        for i in range(8):
            cv2.imwrite(str(folder / f"img{i + 1}.jpg"), src.read(40 + i).image)
    db = tmp_path / "lib.sqlite"
    proc = run_cli("index", folder, "--db", db, "--stride", 1, env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    assert f"{folder}: indexed 8 frames" in proc.stdout
    with Store(db) as store:
        (video,) = store.list_videos()
        assert video.path == str(folder.resolve()) and video.frame_count == 8


def test_expand_sources_tells_folders_apart(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("cam10.MP4", "cam2.avi", "notes.txt", "still.jpg"):
        (videos / name).write_bytes(b"x")
    (videos / "sub").mkdir()
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"x")
    single = tmp_path / "one.mkv"
    single.write_bytes(b"x")
    assert expand_sources([videos, images, single, videos / "cam2.avi"]) == [
        videos / "cam2.avi", videos / "cam10.MP4", images, single]
    with pytest.raises(VideoError, match=r"missing\.mp4: no such file or folder"):
        expand_sources([tmp_path / "missing.mp4"])


def test_format_time():
    assert format_time(0) == "0:00.0"
    assert format_time(79.5) == "1:19.5"
    assert format_time(83.44) == "1:23.4"
    assert format_time(3725) == "1:02:05.0"
    assert format_time(3725, precise=False) == "1:02:05"
    assert format_time(59.96) == "1:00.0"  # rounded before splitting: never "0:60.0"


def test_ctrl_c_cancels_cleanly_and_the_next_run_resumes(tmp_path, short_clip, models_env):
    db = tmp_path / "lib.sqlite"
    env = dict(os.environ, **models_env)
    proc = subprocess.Popen([sys.executable, "-m", "core", "index", str(short_clip), "--db", str(db),
                             "--stride", "1"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + 120
    while b"tracks=" not in seen and time.monotonic() < deadline:   # wait for the first progress item
        chunk = proc.stderr.read1(4096)
        if not chunk:
            break
        seen += chunk
    assert b"tracks=" in seen, seen
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = (seen + err).decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "cancelled at frame" in err and "run the same command again" in err
    with Store(db) as store:
        (video,) = store.list_videos()
        run = store.latest_run(video.id, status=None)
        assert run.status == "cancelled" and 0 < run.frames_done < 60
        done_before = run.frames_done
        assert store.integrity_check() == "ok"
    again = run_cli("index", short_clip, "--db", db, "--stride", 1, env_extra=models_env)
    assert again.returncode == 0, again.stderr
    assert "indexed 60 frames" in again.stdout
    with Store(db) as store:
        run = store.latest_run(store.list_videos()[0].id)
        assert run.status == "done" and run.frames_done == 60 and done_before < 60


def test_json_to_unwritable_place_is_an_error(library, man_photo, models_env, tmp_path):
    db, _, _ = library
    proc = run_cli("search", "--query", man_photo, "--db", db, "--json", tmp_path / "no" / "dir" / "h.json",
                   env_extra=models_env)
    assert_one_line_error(proc, "h.json", "cannot write")


def test_installed_entry_points_run_the_same_programs(library, tmp_path):
    """``pip install`` puts ``reid-search`` (the CLI) and ``reid-search-gui`` (the window) on the PATH."""
    db, clip, _ = library
    bindir = Path(sys.executable).parent
    listed = subprocess.run([bindir / "reid-search", "list", "--db", db], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert str(clip.resolve()) in listed.stdout
    usage = subprocess.run([bindir / "reid-search", "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: reid-search ")
    gui = subprocess.run([bindir / "reid-search-gui", "--help"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert gui.returncode == 0 and "--video FILE" in gui.stdout, gui.stderr


def test_export_writes_the_evidence_of_a_saved_query(library, man_photo, models_env, tmp_path):
    db, clip, _ = library
    proc = run_cli("search", "--query", man_photo, "--db", db, "--video", clip, env_extra=models_env)
    assert proc.returncode == 0, proc.stderr
    query_id = int(proc.stdout.split()[1].rstrip(":"))
    out = tmp_path / "evidence"
    exported = run_cli("export", query_id, "--db", db, "--out", out, "--clips", "--margin", 0.5,
                       "--threshold", 0.6, "--top", 2)
    assert exported.returncode == 0, exported.stderr
    record = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert record["query"]["id"] == query_id and record["threshold"] == 0.6
    assert 1 <= len(record["hits"]) <= 2 and all(h["score"] >= 0.6 for h in record["hits"])
    clips = sorted((out / "clips").glob("*.mp4"))
    assert clips and len(clips) == sum(len(h["clips"]) for h in record["hits"])
    assert f"exported to {out}" in exported.stdout and "clip" in exported.stdout
    assert cv2.imread(str(out / "contact_sheet.png")) is not None
    # Without --clips: the sheet, the CSV and the record only.
    again = run_cli("export", query_id, "--db", db, "--out", tmp_path / "sheet-only")
    assert again.returncode == 0, again.stderr
    assert not list((tmp_path / "sheet-only" / "clips").glob("*.mp4"))
    assert (tmp_path / "sheet-only" / "hits.csv").is_file()
    missing = run_cli("export", 4242, "--db", db, "--out", tmp_path / "x")
    assert_one_line_error(missing, "4242")
