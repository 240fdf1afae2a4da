"""core.export: the hits file formats, checked against the documented layout written out by hand."""

from __future__ import annotations

import csv
import json

import pytest

from core.errors import ReidSearchError
from core.export import CSV_COLUMNS, write_hits, write_json
from core.types import Hit, Segment

VIDEO = "/videos/walk.mp4"
HITS = (
    Hit(1, "/videos/walk.mp4", 3, 0.87654321, (Segment(1.0, 4.0, 10, 40), Segment(12.0, 15.0, 120, 150)), 130,
        13.0, (100.0, 50.5, 160.25, 250.0), track_ids=(3, 8)),
    Hit(1, "/videos/walk.mp4", 9, 0.5, (Segment(3.0, 6.0, 30, 60),), 45, 4.5, (1.0, 2.0, 3.0, 4.0)),
)

EXPECTED_JSON = [
    {"video": "/videos/walk.mp4", "track_id": 3, "score": 0.876543,
     "segments": [{"start_s": 1.0, "end_s": 4.0, "start_frame": 10, "end_frame": 40},
                  {"start_s": 12.0, "end_s": 15.0, "start_frame": 120, "end_frame": 150}],
     "best_frame": 130, "best_time_s": 13.0, "best_box": [100.0, 50.5, 160.25, 250.0], "track_ids": [3, 8]},
    {"video": "/videos/walk.mp4", "track_id": 9, "score": 0.5,
     "segments": [{"start_s": 3.0, "end_s": 6.0, "start_frame": 30, "end_frame": 60}],
     "best_frame": 45, "best_time_s": 4.5, "best_box": [1.0, 2.0, 3.0, 4.0], "track_ids": [9]},
]


def test_json_is_the_documented_list_of_hits(tmp_path):
    out = write_hits(HITS, tmp_path / "hits.json")
    assert json.loads(out.read_text(encoding="utf-8")) == EXPECTED_JSON
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, renamed into place


def test_json_to_stdout(capsys):
    assert write_json(HITS, "-") is None
    assert json.loads(capsys.readouterr().out) == EXPECTED_JSON


def test_csv_has_one_row_per_segment(tmp_path):
    out = write_hits(HITS, tmp_path / "hits.CSV")
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [
        [VIDEO, "3", "0.8765", "1", "1.0", "4.0", "10", "40", "130", "13.0", "100.0", "50.5", "160.25",
         "250.0", "3 8", ""],
        [VIDEO, "3", "0.8765", "2", "12.0", "15.0", "120", "150", "130", "13.0", "100.0", "50.5", "160.25",
         "250.0", "3 8", ""],
        [VIDEO, "9", "0.5000", "1", "3.0", "6.0", "30", "60", "45", "4.5", "1.0", "2.0", "3.0", "4.0", "9",
         ""],
    ]


def test_a_photo_hit_names_its_photo(tmp_path):
    photo = Hit(2, "/photos", 7, 0.9, (Segment(3.0, 3.0, 3, 3),), 3, 3.0, (10.0, 20.0, 30.0, 40.0),
                photo_path="/photos/trip/IMG_0004.jpg")
    rec = json.loads(write_hits([photo], tmp_path / "hits.json").read_text(encoding="utf-8"))[0]
    assert rec["photo"] == "/photos/trip/IMG_0004.jpg" and rec["video"] == "/photos"
    assert rec["best_box"] == [10.0, 20.0, 30.0, 40.0] and rec["best_frame"] == 3
    with write_hits([photo], tmp_path / "hits.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][CSV_COLUMNS.index("photo")] == "/photos/trip/IMG_0004.jpg"


def test_other_endings_and_unwritable_places_are_one_sentence(tmp_path):
    with pytest.raises(ValueError, match=r"hits\.txt: choose a file name ending in \.json or \.csv"):
        write_hits(HITS, tmp_path / "hits.txt")
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("a file, not a folder\n")
    with pytest.raises(ReidSearchError, match=r"notes\.txt/hits\.json: cannot write the JSON file"):
        write_hits(HITS, not_a_folder / "hits.json")
    assert not_a_folder.read_text() == "a file, not a folder\n"
