"""core.engine.Engine on real data: vtest.avi indexed once (tests/core/conftest.py), real models."""

from __future__ import annotations

import dataclasses
import shutil

import cv2
import numpy as np
import pytest

from core.engine import Engine, SearchResult
from core.errors import ModelError, QueryError, StoreError
from core.search import SCORE_FLOOR, segment_gap_frames, split_segments
from core.video import open_source


def counts(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                for t in ("videos", "index_runs", "tracks", "sightings", "embeddings", "queries", "hits")}


@pytest.fixture(scope="module")
def frame_52(vtest_path):
    with open_source(vtest_path) as src:
        return src.read(52).image


@pytest.fixture(scope="module")
def frame_search(vtest_library, frame_52) -> SearchResult:
    """A whole vtest frame as the query (the largest person in it is used)."""
    return vtest_library.engine.search([frame_52])


def test_videos_lists_the_indexed_video(vtest_library):
    infos = vtest_library.engine.videos()
    assert len(infos) == 1
    v = infos[0]
    assert v.id == vtest_library.video_id and v.path == str(vtest_library.video.resolve())
    assert (v.frame_count, v.fps, v.width, v.height) == (795, 10.0, 768, 576)
    assert v.duration_s == pytest.approx(79.5)
    assert v.indexed and v.status == "indexed"
    run = vtest_library.engine.store.get_run(vtest_library.run_id)
    assert v.tracks == run.tracks_done >= 10          # 3-8 people in view at a time, 80 s
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.tracks = 0


def test_engine_reports_models_and_providers(vtest_library):
    engine = vtest_library.engine
    assert engine.detector_path == vtest_library.detector_path
    assert engine.reid_path == vtest_library.reid_path
    assert engine.providers == {"detector": "CPUExecutionProvider", "reid": "CPUExecutionProvider"}
    assert engine.notes == ()


def test_search_result_is_sorted_floored_and_filterable(vtest_library, frame_search):
    r = frame_search
    assert r.query_id > 0 and r.hits
    assert r.notes[0].startswith("<array 0>: ") and "people found, used the largest at (" in r.notes[0]
    scores = [h.score for h in r.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(SCORE_FLOOR <= s <= 1.0 for s in scores)
    assert r.above(0.0) == r.hits
    assert all(h.score >= 0.8 for h in r.above(0.8))
    assert len(r.above(0.8)) == sum(s >= 0.8 for s in scores)
    assert all(h.video_id == vtest_library.video_id for h in r.hits)
    assert len({h.track_id for h in r.hits}) == len(r.hits)


def test_hit_segments_and_best_box_come_from_the_persons_tracks(vtest_library, frame_search):
    """A hit is a person: the segments of all their tracks, the best frame and box of the best one."""
    store = vtest_library.engine.store
    tracks = {t.track_id: t for t in store.tracks(vtest_library.run_id)}
    gap = segment_gap_frames(10.0, 2)
    for hit in frame_search.hits:
        assert hit.track_id in hit.track_ids
        seen = [store.sightings(tracks[t].pk) for t in hit.track_ids]
        assert [s.frames[0] for s in seen] == sorted(s.frames[0] for s in seen)   # tracks in time order
        frames = np.concatenate([s.frames for s in seen])
        order = np.argsort(frames)
        times = np.concatenate([s.times_s for s in seen])
        assert hit.segments == split_segments(frames[order], times[order], gap)
        assert hit.segments[0].start_frame == frames[0] and hit.segments[-1].end_frame == frames[-1]
        for a, b in zip(hit.segments, hit.segments[1:], strict=False):
            assert b.start_frame - a.end_frame > gap          # segments are separated by real gaps
        best = store.sightings(tracks[hit.track_id].pk)
        i = int(np.flatnonzero(best.frames == hit.best_frame)[0])
        assert hit.best_box == tuple(float(v) for v in best.boxes[i])
        assert hit.best_time_s == pytest.approx(hit.best_frame / 10.0)
    # no track is in two hits, and some person of vtest is several tracks joined into one hit
    all_tracks = [t for h in frame_search.hits for t in h.track_ids]
    assert len(all_tracks) == len(set(all_tracks))
    assert any(len(h.track_ids) > 1 for h in frame_search.hits)


def test_stored_query_reopens_with_identical_hits(vtest_library, frame_search):
    again = vtest_library.engine.load_query(frame_search.query_id)
    assert again.hits == frame_search.hits
    assert again.notes == frame_search.notes and again.threshold == frame_search.threshold
    listed = vtest_library.engine.queries()
    assert frame_search.query_id in [q.id for q in listed]
    q = next(q for q in listed if q.id == frame_search.query_id)
    assert q.photos == ("<array 0>",) and q.video_ids == (vtest_library.video_id,)
    assert q.hits == len(frame_search.hits)
    assert [x.id for x in vtest_library.engine.queries(vtest_library.video)] == [x.id for x in listed]
    # a new engine (a restart of the app) sees the same
    with Engine(vtest_library.db_path, detector=vtest_library.detector_path, reid=vtest_library.reid_path,
                device="cpu") as other:
        assert other.load_query(frame_search.query_id).hits == frame_search.hits
    with pytest.raises(StoreError, match="query 999999 is not in the library"):
        vtest_library.engine.load_query(999999)


def test_videos_can_be_named_by_path_or_id(vtest_library, frame_52):
    e = vtest_library.engine
    by_path = e.search([frame_52], videos=[vtest_library.video])
    by_id = e.search([frame_52], videos=[vtest_library.video_id])
    assert by_path.hits == by_id.hits and by_path.query_id != by_id.query_id


def test_unknown_video_is_a_clear_error_and_leaves_the_library_intact(vtest_library, frame_52, tmp_path):
    e = vtest_library.engine
    before = counts(e.store)
    other = tmp_path / "holiday.mp4"
    with pytest.raises(StoreError, match=r"holiday\.mp4: this video is not in the library"):
        e.search([frame_52], videos=[other])
    with pytest.raises(StoreError, match="video 4242 is not in the library"):
        e.search([frame_52], videos=[4242])
    with pytest.raises(QueryError, match="no person found"):
        e.search([np.full((200, 100, 3), 90, np.uint8)])
    assert counts(e.store) == before
    assert e.store.integrity_check() == "ok"


def test_boxes_at_processed_and_skipped_frames(vtest_library):
    e = vtest_library.engine
    at52 = e.boxes_at(vtest_library.video, 52)
    assert len(at52) >= 3
    assert at52.boxes.shape == (len(at52), 4) and (at52.det_index == -1).all()
    s = e.store.sightings_in_frame(vtest_library.run_id, 52)
    assert sorted(at52.track_ids.tolist()) == sorted(s.track_ids.tolist())
    at53 = e.boxes_at(vtest_library.video_id, 53)    # stride 2: frame 53 was not processed
    np.testing.assert_array_equal(at53.track_ids, at52.track_ids)
    np.testing.assert_array_equal(at53.boxes, at52.boxes)
    assert len(e.boxes_at(vtest_library.video_id, 100000)) == 0


def test_search_reads_no_video_and_keeps_to_the_videos_asked(tmp_path, short_clip, vtest_path,
                                                            detector_model_path, reid_model_path, frame_52):
    """Index a clip and an image folder, remove the clip's file, search: hits come from the library alone."""
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(short_clip, clip)
    folder = tmp_path / "stills"
    folder.mkdir()
    with open_source(vtest_path) as src:
        for i in range(6):
            cv2.imwrite(str(folder / f"{i:03d}.png"), src.read(50 + i).image)
    with Engine(tmp_path / "lib.sqlite", detector=detector_model_path, reid=reid_model_path,
                device="cpu", stride=1) as e:
        for video in (clip, folder):
            items = list(e.index(video))
            assert items[-1].done and items[-1].tracks > 0
        assert list(e.index(clip))[0].skipped                   # a second call is a no-op
        clip.unlink()
        ids = {v.path: v.id for v in e.videos()}
        clip_id, folder_id = ids[str(clip.resolve())], ids[str(folder.resolve())]
        both = e.search([frame_52])
        only_clip = e.search([frame_52], videos=[clip])         # known by its stored path
        only_folder = e.search([frame_52], videos=[folder_id])
        assert {h.video_id for h in both.hits} == {clip_id, folder_id}
        # the same people; query expansion draws on what is searched, so scores may differ a little
        for only, video_id in ((only_clip, clip_id), (only_folder, folder_id)):
            mine = {h.track_ids: h.score for h in both.hits if h.video_id == video_id}
            assert sorted(h.track_ids for h in only.hits) == sorted(mine)
            assert all(abs(h.score - mine[h.track_ids]) < 0.05 for h in only.hits)
        assert all(h.video_path == str(clip.resolve()) for h in only_clip.hits)
        assert e.load_query(both.query_id).hits == both.hits
        assert [q.id for q in e.queries(folder_id)] == [only_folder.query_id, both.query_id]


def test_cuda_request_without_cuda_falls_back_with_a_note(tmp_path, detector_model_path, reid_model_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with Engine(tmp_path / "lib.sqlite", detector=detector_model_path, reid=reid_model_path,
                device="cuda") as e:
        assert e.providers == {"detector": "CPUExecutionProvider", "reid": "CPUExecutionProvider"}
        assert len(e.notes) == 1 and "CUDA was requested" in e.notes[0]
    with pytest.raises(ValueError, match="device must be one of auto, cuda, cpu"):
        Engine(tmp_path / "lib.sqlite", detector=detector_model_path, reid=reid_model_path, device="gpu")


def test_missing_default_models_name_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_MODELS_DIR", str(tmp_path / "no_models"))
    with pytest.raises(ModelError, match=r"python -m core\.models fetch"):
        Engine(tmp_path / "lib.sqlite")


def test_default_models_come_from_the_manifest(tmp_path, monkeypatch, detector_model_path):
    monkeypatch.setenv("REID_MODELS_DIR", str(detector_model_path.parent))
    with Engine(tmp_path / "lib.sqlite", device="cpu") as e:
        assert e.detector_path.name == "yolov8s_people_normal_fall.onnx"
        assert e.detector.person_classes == ("Normal", "Fall")
        assert e.reid_path.name == "osnet_x0_25_msmt17.onnx"
        assert e.embedder.input_size == (256, 128)
        with pytest.raises(StoreError, match="no video of the library"):
            e.search([np.zeros((10, 10, 3), np.uint8)])


def test_tracker_comes_from_the_registry_with_the_detectors_thresholds(tmp_path, monkeypatch,
                                                                       detector_model_path):
    monkeypatch.setenv("REID_MODELS_DIR", str(detector_model_path.parent))
    with Engine(tmp_path / "lib.sqlite", device="cpu", tracker="bytetrack") as e:
        tracker = e.tracker_factory()
        # the Normal/Fall model's manifest entry lowers the thresholds to its confidence scale
        assert (type(tracker).__name__, tracker.config.high_thresh, tracker.config.new_track_thresh) == (
            "ByteTracker", 0.4, 0.45)
    with pytest.raises(KeyError, match="unknown tracker 'sort'; valid names: bytetrack"):
        Engine(tmp_path / "other.sqlite", device="cpu", tracker="sort")
    assert not (tmp_path / "other.sqlite").exists()  # refused before the library was touched


def test_detector_input_size_is_a_setting_of_the_run(tmp_path, detector_model_path, reid_model_path):
    kw = {"detector": detector_model_path, "reid": reid_model_path, "device": "cpu", "precision": "fp32"}
    with Engine(tmp_path / "lib.sqlite", **kw) as plain, Engine(tmp_path / "lib.sqlite", **kw,
                                                                   detect_size=640) as same, \
            Engine(tmp_path / "lib.sqlite", **kw, detect_size=960) as large:
        assert plain.detector.imgsz == same.detector.imgsz == (640, 640)
        assert large.detector.imgsz == (960, 960)
        assert plain.settings_key == same.settings_key != large.settings_key  # another size, another run
        assert large.worker_spec(1).detect_size == 960  # worker processes build the same detector
        assert large.photo_detector.imgsz == (640, 640)  # query photos keep the model's own size
        assert (type(plain.tracker_factory()).__name__, plain.tracker_factory().needs_embeddings) == (
            "BufferedByteTracker", True)  # the default tracker
    with pytest.raises(ValueError, match="multiple of its stride"):
        Engine(tmp_path / "lib.sqlite", **kw, detect_size=650)


def test_check_photo_finds_the_person_and_refuses_things_on_the_ground(vtest_library, tmp_path, vtest_path):
    e = vtest_library.engine
    with open_source(vtest_path) as src:
        frame = src.read(6).image
    man = tmp_path / "man.png"
    cv2.imwrite(str(man), frame[160:245, 480:520])          # a walking man, cut tightly
    check = e.check_photo(man)
    assert check.label == str(man) and check.people == 1 and check.whole and check.size == (40, 85)
    whole = e.check_photo(frame)                              # a whole frame: the largest upright person
    assert whole.people >= 3 and not whole.whole
    x1, y1, x2, y2 = whole.box
    assert y2 - y1 > x2 - x1
    bag = tmp_path / "bag.png"
    cv2.imwrite(str(bag), frame[480:535, 60:170])            # a yellow bag on the lawn: a "Fall" to YOLO
    with pytest.raises(QueryError, match=r"bag\.png: no standing or walking person found"):
        e.check_photo(bag)
    with pytest.raises(QueryError, match="no person found"):
        e.check_photo(np.full((200, 100, 3), 90, np.uint8))
