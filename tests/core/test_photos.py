"""Photo collections (core.photos, core.photo_index) on real photos: the 16 Market-1501 camera photos,
vtest frames dumped to a folder, and a real JPEG written with EXIF time and orientation."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.engine import Engine
from core.export import hits_json
from core.photo_index import media_kind
from core.photos import PhotoCollection, classify_folder, load_photo
from core.search import DEFAULT_THRESHOLD
from core.store import Store
from core.video import open_source
from tests.conftest import shared_file
from tests.core.test_cli import run_cli
from tests.realdata import IDENTITY_0001, box_iou, cut_clip

MARKET = "reid_images/market1501_songwsx/full_frames"
QUERY_C6 = "reid_images/market1501_songwsx/query/0001_c6s1_009601_00.jpg"
MIN_FOUND_AT_DEFAULT = 13
"""Photos of 0001 among the hits at the default threshold: 15 of 16 measured (fp32 and int8 detector)."""


def _engine(db: Path, detector: Path, reid: Path, **kwargs) -> Engine:
    return Engine(db, detector=detector, reid=reid, device="cpu", precision="fp32", **kwargs)


@pytest.fixture(scope="module")
def market(tmp_path_factory, detector_model_path, reid_model_path):
    """The 16 Market photos indexed as a photo collection (auto: the folder is classified as photos)."""
    folder = shared_file(MARKET)
    engine = _engine(tmp_path_factory.mktemp("market") / "lib.sqlite", detector_model_path, reid_model_path)
    items = list(engine.index(folder))
    yield engine, folder, items
    engine.close()


def test_market_photos_are_a_collection_with_every_person_stored(market):
    engine, folder, items = market
    assert classify_folder(folder).kind == "photos"
    assert "read as a photo collection" in items[0].note and "--images sequence" in items[0].note
    assert items[-1].done and items[-1].photos and items[-1].frames_done == 16
    (video,) = engine.videos()
    assert video.status == "indexed" and video.run.settings["kind"] == "photos"
    record = engine.find_video(folder)
    assert record.kind == "photos" and record.frame_count == 16
    photos = engine.store.photos(record.id)
    assert [Path(p.path).name for p in photos] == sorted(f.name for f in folder.glob("*.jpg"))
    tracks = engine.store.tracks(video.run.id)
    assert len(tracks) == items[-1].tracks and len(tracks) > 16        # other people are there too
    assert all(t.n_sightings == 1 for t in tracks)                       # one detection, one "track"
    for p in photos:                                                     # she is found in every photo
        seen = engine.store.sightings_in_frame(video.run.id, p.frame)
        iou = box_iou(np.array([IDENTITY_0001[Path(p.path).stem]]), seen.boxes)[0]
        assert iou.max() >= 0.5, (p.path, iou)
    # linking keeps the detections apart: one person per detection
    people = engine.store.run_people(video.run.id)
    assert len(people) == len(tracks)


def test_searching_the_collection_for_0001_gives_her_photos_boxed(market):
    engine, folder, _ = market
    result = engine.search([shared_file(QUERY_C6)])
    shown = result.above(DEFAULT_THRESHOLD)
    assert len(shown) >= MIN_FOUND_AT_DEFAULT, [(Path(h.photo_path).name, h.score) for h in result.hits[:20]]
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    names = [Path(h.photo_path).stem for h in shown]
    assert len(set(names)) == len(names)                                 # one hit per photo of her
    for hit in shown:
        assert Path(hit.photo_path).parent == folder.resolve()
        her = np.array([IDENTITY_0001[Path(hit.photo_path).stem]])
        assert box_iou(her, np.array([hit.best_box]))[0, 0] >= 0.5
    assert engine.load_query(result.query_id).hits == result.hits        # reopened: photos kept
    rec = json.loads(hits_json(shown))[0]
    assert rec["photo"] == shown[0].photo_path and rec["video"] == str(folder.resolve())


def test_resumed_photo_run_equals_an_uninterrupted_one(market, tmp_path, detector_model_path,
                                                       reid_model_path):
    engine, folder, _ = market
    whole = engine.store.sightings_in_frame(engine.videos()[0].run.id, 0, 15)
    from core.index_settings import IndexSettings

    settings = IndexSettings(det_batch=4, commit_every=4)
    with _engine(tmp_path / "lib.sqlite", detector_model_path, reid_model_path, settings=settings) as e:
        cancel = threading.Event()
        run = e.index(folder, cancel=cancel)
        assert next(run).frames_done == 4                                # one batch, then stop
        cancel.set()
        rest = list(run)
        assert len(rest) == 1 and not rest[0].done and rest[0].frames_done == 4
        assert e.videos()[0].status == "partial"
        items = list(e.index(folder))
        assert items[0].frames_done == 8 and items[0].processed == 4 and items[-1].done
        again = e.store.sightings_in_frame(e.videos()[0].run.id, 0, 15)
    assert np.array_equal(again.frames, whole.frames) and np.array_equal(again.track_ids, whole.track_ids)
    assert np.allclose(again.boxes, whole.boxes, atol=0.01)


def _dump_frames(video: Path, folder: Path) -> None:
    folder.mkdir()
    with open_source(video) as src:
        for frame in src.iter_frames():
            assert cv2.imwrite(str(folder / f"frame_{frame.index:04d}.png"), frame.image)


def test_vtest_frames_are_a_sequence_with_the_tracks_of_the_video(tmp_path, vtest_path, detector_model_path,
                                                                 reid_model_path):
    clip = cut_clip(vtest_path, tmp_path / "clip.mp4", 0, 60)
    frames = tmp_path / "frames"
    _dump_frames(clip, frames)                        # the clip's own decoded frames, lossless
    kind = classify_folder(frames)
    assert kind.kind == "sequence" and kind.images == 60
    with _engine(tmp_path / "lib.sqlite", detector_model_path, reid_model_path, stride=2) as e:
        folder_items = list(e.index(frames))
        assert "read as a sequence of video frames" in folder_items[0].note and not folder_items[-1].photos
        list(e.index(clip))
        runs = {Path(v.path).name: v.run.id for v in e.videos()}

        def tracks(run_id):
            seen = e.store.sightings_in_frame(run_id, 0, 59)
            return sorted((int(t), int(f), tuple(np.round(b, 1))) for t, f, b in
                          zip(seen.track_ids, seen.frames, seen.boxes, strict=True))

        assert e.find_video(frames).kind == "video"
        assert tracks(runs["frames"]) == tracks(runs["clip.mp4"]) and tracks(runs["clip.mp4"])
        # a library of a video and a photo collection, searched together
        list(e.index(shared_file(MARKET)))
        both = e.search([shared_file(QUERY_C6)])
    assert both.hits[0].photo_path and Path(both.hits[0].photo_path).stem in IDENTITY_0001
    assert {bool(h.photo_path) for h in both.hits} == {True, False}
    assert all(Path(h.video_path).name != "frames" or not h.photo_path for h in both.hits)


def _exif_jpeg(path: Path, upright: np.ndarray, taken: str | None, orientation: int = 1) -> None:
    """Write ``upright`` (BGR) as a JPEG stored turned so that EXIF ``orientation`` undoes it."""
    img = Image.fromarray(np.ascontiguousarray(upright[:, :, ::-1]))
    if orientation == 6:                              # viewers turn it 90 degrees clockwise to show it
        img = img.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    img.save(path, quality=95, exif=exif)


def test_exif_time_and_orientation_are_read_from_real_jpegs(tmp_path, detector_model_path, reid_model_path):
    frame = cv2.imread(str(shared_file(MARKET) / "c1s1_001051.jpg"))
    x1, y1, x2, y2 = IDENTITY_0001["c1s1_001051"]
    crop = frame[y1 - 40:y2 + 40, x1 - 40:x2 + 40]                       # her, upright, 260 x 400
    (tmp_path / "b").mkdir()
    _exif_jpeg(tmp_path / "z_first.jpg", crop, "2024:05:01 10:00:00", orientation=6)
    _exif_jpeg(tmp_path / "b" / "a_second.jpg", frame[:400, :300], "2024:05:01 10:00:42")
    with Image.open(tmp_path / "z_first.jpg") as stored:
        assert stored.size == (crop.shape[0], crop.shape[1])          # stored on its side
    kind = classify_folder(tmp_path)
    assert kind.kind == "photos" and kind.reason == "images in sub-folders"
    coll = PhotoCollection.open(tmp_path)
    assert coll.timed and [p.rel for p in coll.photos] == ["z_first.jpg", "b/a_second.jpg"]   # by time
    first, second = coll.photos
    assert first.taken == datetime(2024, 5, 1, 10, 0, 0) and (first.time_s, second.time_s) == (0.0, 42.0)
    assert first.orientation == 6 and (first.width, first.height) == (crop.shape[1], crop.shape[0])
    image, scale = load_photo(first)
    assert image.shape == crop.shape and scale == 1.0
    assert np.abs(image.astype(int) - crop).mean() < 6                  # upright (JPEG loss only)
    turned = np.ascontiguousarray(np.rot90(crop))[:crop.shape[0], :crop.shape[1]]
    assert np.abs(image[:turned.shape[0], :turned.shape[1]].astype(int) - turned).mean() > 20
    small, s = load_photo(first, max_side=200)
    assert max(small.shape[:2]) == 200 and abs(s - 200 / crop.shape[0]) < 0.01
    _exif_jpeg(tmp_path / "c_untimed.jpg", crop, None)                  # one photo without a time:
    names = [p.rel for p in PhotoCollection.open(tmp_path).photos]      # natural order of the paths
    assert names == ["b/a_second.jpg", "c_untimed.jpg", "z_first.jpg"]
    # indexed and searched: her hit in the turned photo is boxed upright and carries its EXIF time
    with _engine(tmp_path / "lib.sqlite", detector_model_path, reid_model_path) as e:
        assert list(e.index(tmp_path))[-1].done
        hits = e.search([shared_file(QUERY_C6)]).hits
    turned_hit = next(h for h in hits if Path(h.photo_path).name == "z_first.jpg")
    assert turned_hit.photo_taken == "2024-05-01T10:00:00" and turned_hit.best_frame == 2
    her = (40, 40, 40 + x2 - x1, 40 + y2 - y1)                          # where she is in the upright crop
    assert box_iou(np.array([her]), np.array([turned_hit.best_box]))[0, 0] >= 0.5, turned_hit.best_box
    assert json.loads(hits_json([turned_hit]))[0]["photo_taken"] == "2024-05-01T10:00:00"
    assert all(not h.photo_taken for h in hits if Path(h.photo_path).name == "c_untimed.jpg")


def test_images_override_and_a_single_image_file(tmp_path, detector_model_path, reid_model_path):
    market = shared_file(MARKET)
    few = tmp_path / "few"
    few.mkdir()
    for name in ("c1s1_002301.jpg", "c1s1_002326.jpg", "c1s1_002351.jpg"):
        (few / name).symlink_to(market / name)
    assert classify_folder(few).kind == "sequence"                      # one camera, every 25th frame
    assert media_kind(few, "photos") == ("photos", f"{few}: read as a photo collection (--images photos).")
    env = {"REID_MODELS_DIR": str(detector_model_path.parent)}
    db = tmp_path / "lib.sqlite"
    args = ("--db", db, "--detector", detector_model_path, "--reid", reid_model_path, "--device", "cpu",
            "--precision", "fp32")
    proc = run_cli("index", few, "--images", "photos", *args, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert "read as a photo collection (--images photos)" in proc.stderr and "indexed 3 photos" in proc.stdout
    single = market / "c1s1_002401.jpg"
    proc = run_cli("index", single, *args, env_extra=env)
    assert proc.returncode == 0 and "indexed 1 photo," in proc.stdout, proc.stderr
    proc = run_cli("search", "--query", shared_file(QUERY_C6), "--json", "-", *args, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert {Path(h["photo"]).name for h in hits} >= {"c1s1_002401.jpg", "c1s1_002326.jpg"}
    with Store(db) as store:
        kinds = {Path(v.path).name: v.kind for v in store.list_videos()}
    assert kinds == {"few": "photos", "c1s1_002401.jpg": "photos"}
