"""People on real data: tracks linked into people, one hit per person, find similar, confirm / reject.

Hand annotation (checked by eye on contact sheets of every track of vtest.avi at stride 2 and
on full frames around each gap; the same table, one box per track, is in
scripts/calibrate_threshold.py), as (frame, box xyxy):

* the woman in the red jacket walks off the left edge at about 57.6 s and comes back at the same
  place 3.6 s later: (506, (262, 184, 313, 261)) and (710, (507, 125, 544, 190)) are her;
* the man in the red-and-navy puffer jacket is lost behind the blonde woman on the lawn for
  1.4 s: (534, (294, 383, 388, 548)) and (678, (519, 157, 569, 230)) are him;
* the blonde woman in the black coat: (90, (475, 156, 526, 228)) and (664, (263, 345, 329, 484));
* two look-alikes in dark jackets and jeans, the bald man (232, (262, 155, 321, 238)) and the
  dark-haired man (324, (443, 143, 479, 214)), are two people (their tracks' appearance
  similarity is 0.85, higher than some pairs of one person's tracks).
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from core.engine import Engine
from core.linking import centroids
from core.search import DEFAULT_THRESHOLD
from tests.realdata import track_at

RED_WOMAN = ((506, (262, 184, 313, 261)), (710, (507, 125, 544, 190)))
PUFFER_MAN = ((534, (294, 383, 388, 548)), (678, (519, 157, 569, 230)))
BLONDE = ((90, (475, 156, 526, 228)), (664, (263, 345, 329, 484)))
LOOK_ALIKES = ((232, (262, 155, 321, 238)), (324, (443, 143, 479, 214)))


def person_of(store, run_id: int) -> dict[int, int]:
    return {pk: person for person, pks in store.run_people(run_id).items() for pk in pks}


def test_linking_never_joins_tracks_seen_in_the_same_frame(vtest_library):
    store, run_id = vtest_library.engine.store, vtest_library.run_id
    assert run_id in store.linkings([run_id])                     # linked when it was indexed
    people = store.run_people(run_id)
    tracks = store.tracks(run_id)
    assert len(people) < len(tracks) and sum(len(p) for p in people.values()) == len(tracks)
    frames = {pk: set(s.frames.tolist()) for pk, s in store.sightings_of([t.pk for t in tracks]).items()}
    spans = {t.pk: (t.first_frame, t.last_frame) for t in tracks}
    for pks in people.values():
        for i, a in enumerate(pks):
            for b in pks[i + 1:]:
                assert not frames[a] & frames[b], (a, b)
                assert spans[a][1] < spans[b][0] or spans[b][1] < spans[a][0], (a, b)


@pytest.mark.parametrize("pair", [RED_WOMAN, PUFFER_MAN], ids=["red-jacket woman", "puffer-jacket man"])
def test_linking_joins_two_tracks_of_one_person(vtest_library, pair):
    store, run_id = vtest_library.engine.store, vtest_library.run_id
    a, b = (track_at(store, run_id, f, box) for f, box in pair)
    assert a != b                                                 # the tracker lost them in between
    person = person_of(store, run_id)
    assert person[a] == person[b]


def test_linking_keeps_look_alikes_apart(vtest_library):
    store, run_id = vtest_library.engine.store, vtest_library.run_id
    a, b = (track_at(store, run_id, f, box) for f, box in LOOK_ALIKES)
    vectors = store.track_vectors([a, b])
    assert float(np.dot(*centroids([vectors[a], vectors[b]]))) > 0.8   # they do look alike
    person = person_of(store, run_id)
    assert person[a] != person[b]


def test_find_similar_returns_the_persons_other_tracks_first(vtest_library):
    engine, store, run_id = vtest_library.engine, vtest_library.engine.store, vtest_library.run_id
    source, other = (track_at(store, run_id, f, box) for f, box in BLONDE)
    tid = {t.pk: t.track_id for t in store.tracks(run_id)}
    result = engine.search_like(vtest_library.video, tid[source])
    first, second = result.hits[:2]
    assert first.mark == "confirmed" and tid[source] in first.track_ids   # the hit itself, on top
    assert tid[other] in second.track_ids and second.score >= DEFAULT_THRESHOLD
    assert result.photos[0].startswith("<similar to vtest.avi track ")
    reopened = engine.load_query(result.query_id)
    assert reopened.hits == result.hits and engine.queries()[0].similar


def test_confirm_and_reject_rerank_persist_and_reopen(vtest_library, man_crop):
    engine, store = vtest_library.engine, vtest_library.engine.store
    plain = engine.search([man_crop])
    man = plain.hits[0]
    # reject a weak candidate (below the expansion's min score: the expanded query stays the same)
    reject = next(h for h in plain.hits[1:] if h.score < 0.7)
    refined = engine.refine(plain.query_id, reject=[reject])
    assert reject.track_ids not in [h.track_ids for h in refined.hits]
    assert [h.track_ids for h in refined.rejected] == [reject.track_ids]
    # the rule: a candidate loses what it is closer to the rejected hit than to the query, nobody gains
    pk_of = {t.track_id: t.pk for t in store.tracks(vtest_library.run_id)}

    def centroid(track_ids) -> np.ndarray:
        return centroids([np.vstack(list(store.track_vectors([pk_of[t] for t in track_ids]).values()))])[0]

    rejected_c, query = centroid(reject.track_ids), store.load_query(plain.query_id).vector
    before = {h.track_ids: h.score for h in plain.hits}
    margins = {}
    for h in refined.hits:
        c = centroids([store.track_vectors([pk_of[t]])[pk_of[t]] for t in h.track_ids])
        margins[h.track_ids] = float((c @ query - c @ rejected_c).min())   # < 0: more like the rejected
        assert h.score <= before[h.track_ids] + 1e-6, h
        if margins[h.track_ids] > 0.05:
            assert h.score == pytest.approx(before[h.track_ids], abs=1e-4), h
    after = {h.track_ids: h.score for h in refined.hits}
    dropped = [t for t in margins if before[t] - after[t] > 0.01]
    assert dropped and all(margins[t] < 0.05 for t in dropped)
    # confirm the man: on top whatever the threshold; the rejected hit still never comes back
    again = engine.refine(plain.query_id, confirm=[(vtest_library.video, man.track_id)])
    assert again.hits[0].track_ids == man.track_ids and again.hits[0].mark == "confirmed"
    assert again.above(0.99)[:1] == again.hits[:1]
    assert reject.track_ids not in [h.track_ids for h in again.hits]
    # kept with the query: a new engine (a restart) reopens it with its marks
    with Engine(vtest_library.db_path, detector=vtest_library.detector_path, reid=vtest_library.reid_path,
                device="cpu") as other:
        reopened = other.load_query(plain.query_id)
    assert reopened.hits == again.hits and reopened.rejected == again.rejected
    assert reopened.hits[0].mark == "confirmed" and reopened.rejected[0].mark == "rejected"
    # taking the mark back brings it back
    cleared = engine.refine(plain.query_id, clear=[reject])
    assert reject.track_ids in [h.track_ids for h in cleared.hits] and cleared.rejected == ()


def test_empty_result_names_the_best_score(vtest_library, shared_data):
    photo = shared_data / "reid_images/market1501_songwsx/query/0001_c1s1_001051_00.jpg"
    result = vtest_library.engine.search([photo])
    assert result.above(DEFAULT_THRESHOLD) == () and result.hits
    sentence = result.explain()
    best = result.hits[0]
    assert sentence.startswith(f"Nobody reaches similarity {DEFAULT_THRESHOLD:.2f}: the best candidate "
                               f"scores {best.score:.2f} (vtest.avi at ")
    assert "Lower the threshold" in sentence and "click" not in sentence.lower()


@pytest.fixture(scope="module")
def sample_library(tmp_path_factory, detector_model_path, reid_model_path, short_clip):
    """assets/sample_clip.mp4 (20 s) and the first 6 s of vtest.avi indexed into one library."""
    from core.paths import REPO_ROOT

    db = tmp_path_factory.mktemp("sample") / "library.sqlite"
    # float32, every 2nd frame, plain ByteTrack: the settings the sample's two segments were checked
    # with (the default tracker's buffered matching keeps her in one track: nothing left to link)
    engine = Engine(db, detector=detector_model_path, reid=reid_model_path, device="cpu", precision="fp32",
                    stride=2, tracker="bytetrack")
    clip = REPO_ROOT / "assets" / "sample_clip.mp4"
    for video in (clip, short_clip):
        assert list(engine.index(video))[-1].done
    yield engine, clip
    engine.close()


def test_sample_person_is_one_hit_with_two_segments(sample_library):
    from core.paths import REPO_ROOT

    engine, clip = sample_library
    result = engine.search([REPO_ROOT / "assets" / "sample_query.jpg"], videos=[clip])
    hits = result.above(DEFAULT_THRESHOLD)
    assert len(hits) == 1, hits
    (hit,) = hits
    assert len(hit.track_ids) == 2 and len(hit.segments) == 2
    # the tracker lost her for 1.6 s at about 15 s: 13.6-15.2 s and 16.8-19.8 s
    (a, b) = hit.segments
    assert a.start_s < 15.0 < a.end_s < b.start_s < 17.0 < b.end_s
    assert result.explain().startswith(f"1 person found at or above similarity {DEFAULT_THRESHOLD:.2f}")


def test_search_links_a_run_that_has_no_people_yet_and_finds_similar_across_videos(sample_library):
    engine, clip = sample_library
    with sqlite3.connect(engine.db_path) as conn:                 # as a library indexed before linking
        conn.execute("DELETE FROM track_people")
        conn.execute("DELETE FROM linkings")
    assert engine.store.linkings() == {}
    video = engine.find_video(clip)
    run = engine.run_for(video).run
    man = track_at(engine.store, run.id, 52, (494, 209, 540, 301))   # the puffer-jacket man, 5.2 s
    tid = engine.store.get_tracks([man])[man].track_id
    result = engine.search_like(clip, tid)
    assert len(engine.store.linkings()) == 2                      # both videos linked on the way
    assert result.hits[0].video_id == video.id and result.hits[0].mark == "confirmed"
    other = next(h for h in result.hits[1:] if h.video_id != video.id)
    # the best hit in the other video is him too (the same frames: both clips start at vtest's frame 0)
    assert other is result.hits[1] and any(s.start_frame <= 52 <= s.end_frame for s in other.segments)
