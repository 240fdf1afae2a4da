"""core.search: query photos (crops and whole pictures) on real images, scores, segments."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.errors import QueryError
from core.search import (
    combine,
    embed_photo,
    embed_query,
    main_person,
    segment_gap_frames,
    similarity,
    split_segments,
)
from core.video import open_source

MARKET_QUERY = ("reid_images/market1501_songwsx/query/0001_c1s1_001051_00.jpg",
                "reid_images/market1501_songwsx/query/0001_c6s1_009601_00.jpg")


@pytest.fixture(scope="module")
def market_crops(shared_data):
    return [shared_data / p for p in MARKET_QUERY]


@pytest.fixture(scope="module")
def vtest_frame_52(vtest_path):
    with open_source(vtest_path) as src:
        return src.read(52).image


# --------------------------------------------------------------------------- scores and segments


def test_similarity_clips_cosine_to_unit_interval():
    out = similarity(np.array([-0.4, 0.0, 0.37, 1.0, 1.00001]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.0, 0.37, 1.0, 1.0], rtol=1e-6)


def test_segment_gap_is_two_strides_or_one_second():
    assert segment_gap_frames(10.0, 2) == 10      # vtest: 1 s = 10 frames > 2 strides
    assert segment_gap_frames(25.0, 2) == 25
    assert segment_gap_frames(1.0, 2) == 4        # image folder at 1 fps: two strides win
    assert segment_gap_frames(30.0, 20) == 40


def test_split_segments_cuts_only_long_gaps():
    frames = np.array([10, 12, 14, 20, 22, 40, 42, 44, 70])
    times = frames / 10.0
    segs = split_segments(frames, times, max_gap=10)
    # 14 -> 20 is a 6-frame gap (kept), 22 -> 40 and 44 -> 70 are cut
    assert [(s.start_frame, s.end_frame) for s in segs] == [(10, 22), (40, 44), (70, 70)]
    assert [(s.start_s, s.end_s) for s in segs] == [(1.0, 2.2), (4.0, 4.4), (7.0, 7.0)]
    # a gap of exactly max_gap stays in one segment
    assert len(split_segments(np.array([0, 10]), np.array([0.0, 1.0]), max_gap=10)) == 1
    assert split_segments(np.zeros(0, np.int64), np.zeros(0), 10) == ()


def test_main_person_prefers_upright_boxes():
    boxes = np.array([[0, 0, 120, 60],      # large, lying (e.g. a false "Fall" on an object)
                      [10, 10, 40, 90],     # upright, 30 x 80
                      [50, 10, 70, 60]],    # upright, smaller
                     np.float32)
    assert main_person(boxes) == 1
    assert main_person(boxes[[0]]) == 0


# --------------------------------------------------------------------------- query photos


def test_tight_crop_is_used_whole(market_crops, person_detector, reid_embedder):
    q = embed_photo(market_crops[0], 0, person_detector, reid_embedder)
    assert q.box is None
    assert "used the whole photo as a person crop" in q.note and str(market_crops[0]) in q.note
    image = cv2.imread(str(market_crops[0]))
    np.testing.assert_allclose(q.vector, reid_embedder.embed_crops([image])[0], atol=1e-6)
    assert abs(np.linalg.norm(q.vector) - 1) < 1e-5


def test_whole_frame_uses_the_largest_person_and_says_so(vtest_frame_52, person_detector, reid_embedder):
    dets = person_detector.detect([vtest_frame_52])[0]
    assert len(dets) >= 3                       # several pedestrians in view at frame 52
    q = embed_photo(vtest_frame_52, 0, person_detector, reid_embedder)
    assert q.people == len(dets)
    assert q.label == "<array 0>"
    assert q.note.startswith(f"<array 0>: {len(dets)} people found, used the largest at (")
    boxes = dets.boxes
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    upright = h >= w
    expected = boxes[np.argmax(np.where(upright, w * h, -1))]
    np.testing.assert_allclose(q.box, expected)
    assert ", ".join(str(int(round(v))) for v in expected) in q.note
    # the vector is the embedding of that person's box, not of the whole picture
    np.testing.assert_allclose(q.vector, reid_embedder.embed(vtest_frame_52, expected[None]).vectors[0],
                               atol=1e-6)


def test_whole_market_frame_picks_identity_0001(shared_data, market_crops, person_detector, reid_embedder):
    """c1s1_001051.jpg shows identity 0001 (nearest the camera) and one more person."""
    full = embed_photo(shared_data / "reid_images/market1501_songwsx/full_frames/c1s1_001051.jpg", 0,
                       person_detector, reid_embedder)
    assert full.people >= 2 and full.box is not None and "used the largest" in full.note
    crop = embed_photo(market_crops[0], 0, person_detector, reid_embedder)
    image = cv2.imread(str(shared_data / "reid_images/market1501_songwsx/full_frames/c1s1_001051.jpg"))
    dets = person_detector.detect([image])[0]
    others = [b for b in dets.boxes if not np.allclose(b, full.box)]
    other_vecs = reid_embedder.embed(image, np.array(others)).vectors
    # the person chosen is the query identity: far more alike than anyone else in the frame
    assert float(full.vector @ crop.vector) > 0.85
    assert float(full.vector @ crop.vector) > float((other_vecs @ crop.vector).max()) + 0.2


@pytest.mark.parametrize("region", ["grass", "blank", "ground_tall"])
def test_photo_without_a_person_is_refused(region, vtest_frame_52, person_detector, reid_embedder):
    if region == "grass":
        image = np.ascontiguousarray(vtest_frame_52[460:570, 300:700])   # lawn, nobody on it
    elif region == "blank":
        image = np.full((256, 128, 3), 200, np.uint8)
    else:
        image = np.ascontiguousarray(vtest_frame_52[400:560, 300:360])   # tall crop of lawn
    with pytest.raises(QueryError, match=r"^<array 0>: no person found"):
        embed_photo(image, 0, person_detector, reid_embedder)


def test_unreadable_and_missing_photos(tmp_path, person_detector, reid_embedder):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(QueryError, match=r"notes\.jpg: not a readable image"):
        embed_photo(bad, 0, person_detector, reid_embedder)
    with pytest.raises(QueryError, match=r"missing\.png: photo not found"):
        embed_photo(tmp_path / "missing.png", 0, person_detector, reid_embedder)
    with pytest.raises(QueryError, match="is a folder"):
        embed_photo(tmp_path, 0, person_detector, reid_embedder)
    with pytest.raises(QueryError, match="no query photo"):
        embed_query([], person_detector, reid_embedder)


def test_several_photos_are_averaged_then_normalised(market_crops, person_detector, reid_embedder):
    vec, photos = embed_query(market_crops, person_detector, reid_embedder)
    a, b = photos[0].vector, photos[1].vector
    expected = (a + b) / np.linalg.norm(a + b)
    np.testing.assert_allclose(vec, expected, atol=1e-6)
    np.testing.assert_allclose(combine(np.stack([a, b])), expected, atol=1e-6)
    # the combined query is closer to each view than the two views are to each other
    cos_ab = float(a @ b)
    assert 0.5 < cos_ab < 0.99
    for v in (a, b):
        assert float(vec @ v) == pytest.approx(np.sqrt((1 + cos_ab) / 2), abs=1e-5)
        assert float(vec @ v) > cos_ab
    # one photo: the query is that photo's vector
    one, _ = embed_query([market_crops[0]], person_detector, reid_embedder)
    np.testing.assert_allclose(one, a, atol=1e-6)
