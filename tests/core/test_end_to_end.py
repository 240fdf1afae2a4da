"""End to end on real data: find a person who walks through vtest.avi, leaves and comes back.

What was seen by looking at the frames (annotated PNGs of the indexed tracks, stride 2):

* The person: a man in a red-and-navy puffer jacket, dark trousers, white trainers, carrying
  white papers, walking with a blonde woman in a black coat.
* At frame 52 (5.2 s) he walks down the path on the right, box about (494, 209, 540, 301).
* He is in view from about 1.8 s to 14.4 s (walks away up the road), again from about 20.6 s
  (far up the road, coming back) to 37.0 s (leaves at the right edge, frame 370), and again
  from about 50.8 s (on the lawn with the woman, partly hidden behind her) to the end (79.4 s).
* Between about 38 s and 50 s he is not in view (frames 380-500 checked one by one).

Market-1501 identity 0001 never appears in vtest.avi.
"""

from __future__ import annotations

import pytest

from core.search import DEFAULT_THRESHOLD

QUERY_FRAME = 52   # the man's crop (tests/core/conftest.py: man_crop) is cut from this frame


def overlaps(segment, lo: float, hi: float) -> bool:
    return segment.start_s <= hi and segment.end_s >= lo


def test_finds_the_man_when_he_comes_back(vtest_library, man_crop):
    result = vtest_library.engine.search([man_crop])
    hits = result.above(DEFAULT_THRESHOLD)
    assert result.notes == ("<array 0>: used the whole photo as a person crop.",)
    assert hits, "the query person was not found at all"

    # the best hit is the track the query was cut from, seen at frame 52
    first = hits[0]
    assert any(s.start_frame <= QUERY_FRAME <= s.end_frame for s in first.segments)
    assert first.score > 0.9

    segments = [s for h in hits for s in h.segments]
    # the moment of the query ...
    assert any(overlaps(s, 2.0, 14.0) for s in segments)
    # ... he comes back (20.6 s - 37.0 s) ...
    assert any(overlaps(s, 28.0, 36.0) for s in segments)
    # ... and comes back again (50.8 s - 79.4 s)
    assert any(overlaps(s, 58.0, 76.0) for s in segments)

    # nothing above the threshold while he is out of view (38 s - 50 s), and few hits overall:
    # each of his appearances is one or two tracks
    for h in hits:
        assert not all(38.0 <= s.start_s and s.end_s <= 50.0 for s in h.segments), h
    assert len(hits) <= 5

    # stored: reopening the query gives the same hits
    assert vtest_library.engine.load_query(result.query_id).hits == result.hits


@pytest.mark.parametrize("which", ["c1", "c6", "both"])
def test_person_never_in_the_video_gets_no_hit(vtest_library, shared_data, which):
    folder = shared_data / "reid_images/market1501_songwsx/query"
    photos = {"c1": [folder / "0001_c1s1_001051_00.jpg"], "c6": [folder / "0001_c6s1_009601_00.jpg"],
              "both": sorted(folder.glob("0001_*.jpg"))}[which]
    result = vtest_library.engine.search(photos)
    assert result.above(DEFAULT_THRESHOLD) == ()
    assert all(h.score < DEFAULT_THRESHOLD - 0.1 for h in result.hits)   # not even close
