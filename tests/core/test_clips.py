"""core.clips and the box spans on real data: vtest.avi indexed once (tests/core/conftest.py)."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import cv2
import numpy as np
import pytest

from core.boxes import span_of
from core.clips import (
    ExportOptions,
    ExportProgress,
    ExportReport,
    box_at,
    clip_spans,
    export_evidence,
    video_clock,
)
from core.errors import ReidSearchError
from core.export import hit_record
from core.fileio import sha256_file
from core.store import Sightings
from core.types import Hit, Segment
from core.video import open_source


def _hit(spans, fps=10.0, best=None) -> Hit:
    segs = tuple(Segment(a / fps, b / fps, a, b) for a, b in spans)
    best = spans[0][0] if best is None else best
    return Hit(1, "/v/walk.mp4", 3, 0.9, segs, best, best / fps, (1.0, 2.0, 3.0, 4.0))


def test_clip_spans_widen_segments_by_the_margin_and_merge_overlaps():
    hit = _hit([(30, 60), (75, 90), (300, 320)])
    assert clip_spans(hit, fps=10, frame_count=330, margin_s=1.0) == [(20, 100), (290, 329)]
    assert clip_spans(hit, fps=10, frame_count=330, margin_s=0.0) == [(30, 60), (75, 90), (300, 320)]
    assert clip_spans(_hit([(2, 5)]), fps=25, frame_count=0, margin_s=2.0) == [(0, 55)]


def test_box_at_interpolates_between_close_sightings_only():
    frames = np.array([10, 12, 20], np.int64)
    boxes = np.array([[0, 0, 10, 20], [2, 0, 12, 20], [50, 0, 60, 20]], np.float32)
    seen = Sightings(track_pks=np.ones(3, np.int64), track_ids=np.ones(3, np.int64), frames=frames,
                     times_s=frames / 10.0, boxes=boxes, scores=np.ones(3, np.float32))
    np.testing.assert_allclose(box_at(seen, 12, 4), [2, 0, 12, 20])
    np.testing.assert_allclose(box_at(seen, 11, 4), [1, 0, 11, 20])
    assert box_at(seen, 15, 4) is None          # 8 frames between sightings: the person was lost
    assert box_at(seen, 9, 4) is None and box_at(seen, 21, 4) is None


@pytest.mark.parametrize(("name", "when"), [
    ("cam2_20240501_140322.mp4", datetime(2024, 5, 1, 14, 3, 22)),
    ("2024-05-01 14-03-22.avi", datetime(2024, 5, 1, 14, 3, 22)),
    ("VID_20231231_235959.mp4", datetime(2023, 12, 31, 23, 59, 59)),
    ("20240501140322.mp4", datetime(2024, 5, 1, 14, 3, 22)),
    ("vtest.avi", None), ("clip_2024.mp4", None), ("20241399_250000.mp4", None),
])
def test_video_clock_from_the_file_name(name, when):
    assert video_clock(f"/data/{name}") == when


def test_boxes_between_reads_a_span_that_answers_like_boxes_at(vtest_library):
    e = vtest_library.engine
    first, last = span_of(300)
    span = e.boxes_between(vtest_library.video_id, first, last)
    assert (span.first, span.last, span.stride, span.run_id) == (first, last, 2, vtest_library.run_id)
    for frame in (first, first + 1, 299, 300, 301, last):
        one, many = e.boxes_at(vtest_library.video_id, frame), span.at(frame)
        np.testing.assert_array_equal(one.track_ids, many.track_ids)
        np.testing.assert_array_equal(one.boxes, many.boxes)
    with pytest.raises(ValueError, match="outside"):
        span.at(last + 1)


@pytest.fixture(scope="module")
def man_result(vtest_library):
    """The man in the red jacket at frame 52 (see test_end_to_end.py) searched for."""
    with open_source(vtest_library.video) as src:
        crop = src.read(52).image[205:305, 490:545]
    folder = vtest_library.db_path.parent / "photos"
    folder.mkdir(exist_ok=True)
    photo = folder / "man.png"
    cv2.imwrite(str(photo), crop)
    return vtest_library.engine.search([photo]), photo


def test_hit_track_finds_the_run_and_boxes_behind_a_hit(vtest_library, man_result):
    result, _ = man_result
    best = result.hits[0]
    track = vtest_library.engine.hit_track(best)
    assert track.run.id == vtest_library.run_id
    at = int(np.flatnonzero(track.sightings.frames == best.best_frame)[0])
    np.testing.assert_allclose(track.sightings.boxes[at], best.best_box, atol=0.01)
    assert track.sightings.frames[0] == best.segments[0].start_frame
    assert track.sightings.frames[-1] == best.segments[-1].end_frame


def test_export_writes_clips_sheet_and_a_record_of_what_made_them(vtest_library, man_result, tmp_path):
    result, photo = man_result
    hits = result.above(0.7)[:2]
    assert hits
    options = ExportOptions(clips=True, margin_s=1.0, boxes=True)
    items = list(export_evidence(hits, tmp_path / "out", library=vtest_library.engine, query=result,
                                 threshold=0.7, options=options))
    progress = [i for i in items if isinstance(i, ExportProgress)]
    report = items[-1]
    assert isinstance(report, ExportReport) and report.hits == len(hits)
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1].done == progress[-1].total
    expected = [(rank, span) for rank, h in enumerate(hits, 1) for span in clip_spans(h, 10.0, 795, 1.0)]
    assert len(report.clips) == len(expected)
    assert not list((tmp_path / "out" / "clips").glob(".*"))  # no part file left
    for path, (rank, (first, last)) in zip(report.clips, expected, strict=True):
        hit = hits[rank - 1]
        assert path.name.startswith(f"{rank:02d}_vtest_track{hit.track_id}_{first:06d}-{last:06d}")
        cap = cv2.VideoCapture(str(path))
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
        frames = []
        while True:
            ok, image = cap.read()
            if not ok:
                break
            frames.append(image)
        cap.release()
        assert len(frames) == last - first + 1
        assert frames[0].shape == (576, 768, 3)
        # The box is drawn where the track was seen: green on the box's left edge, mid-height.
        track = vtest_library.engine.hit_track(hit)
        inside = [i for i, f in enumerate(track.sightings.frames) if first <= f <= last]
        i = inside[len(inside) // 2]
        f = int(track.sightings.frames[i])
        x1, y1, _, y2 = (int(round(float(v))) for v in track.sightings.boxes[i])
        b, g, r = (int(c) for c in frames[f - first][(y1 + y2) // 2, max(x1, 1)])
        assert g > 150 and g > r + 60 and g > b + 60, (b, g, r)
        # The time is written on the frame, white in the bottom left corner, where the video has none.
        with open_source(vtest_library.video) as src:
            original = src.read(first).image

        def white(image):
            return int((image[-60:, :320] > 190).all(axis=2).sum())

        assert white(frames[0]) > white(original) + 200
    sheet = cv2.imread(str(report.sheet))
    assert sheet is not None and sheet.shape[1] > 150 * (1 + len(hits))
    record = json.loads(report.record.read_text(encoding="utf-8"))
    assert record["threshold"] == 0.7 and record["options"] == {"clips": True, "margin_s": 1.0, "boxes": True}
    assert record["query"]["id"] == result.query_id
    (p,) = record["query"]["photos"]
    assert p["path"] == str(photo) and p["sha256"] == sha256_file(photo)
    assert (tmp_path / "out" / p["copy"]).read_bytes() == photo.read_bytes()
    (model,) = record["models"]
    assert model["reid_sha256"] == vtest_library.engine.reid_sha256 and model["stride"] == 2
    assert model["detector"] == "yolov8s_people_normal_fall"
    for rank, (rec, hit) in enumerate(zip(record["hits"], hits, strict=True), 1):
        assert {k: rec[k] for k in hit_record(hit)} == json.loads(json.dumps(hit_record(hit)))
        assert rec["rank"] == rank and all((tmp_path / "out" / c).is_file() for c in rec["clips"])
    rows = (tmp_path / "out" / "hits.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + sum(len(h.segments) for h in hits)


def test_export_cancelled_leaves_no_half_clip_and_empty_hits_are_refused(vtest_library, man_result, tmp_path):
    result, _ = man_result
    cancel = threading.Event()
    out = tmp_path / "cancelled"
    for item in export_evidence(result.hits[:1], out, library=vtest_library.engine, query=result,
                                options=ExportOptions(margin_s=0.5), cancel=cancel):
        assert not isinstance(item, ExportReport)
        if isinstance(item, ExportProgress) and item.done > 0:
            cancel.set()
    assert list((out / "clips").iterdir()) == []
    assert not (out / "export.json").exists() and not (out / "contact_sheet.png").exists()
    with pytest.raises(ReidSearchError, match="no hits"):
        list(export_evidence([], out, library=vtest_library.engine))
