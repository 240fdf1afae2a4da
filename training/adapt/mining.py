"""Mine an indexed library for adaptation: training tracks, held-out tracks, must-not-link pairs.

The library is read through ``core.store.Store`` (each video's newest finished run) and the
crops are cut from the videos at the stored sighting boxes. Layout of the work folder::

    crops/train/v<video>_t<track>/c<video>_f<frame>.jpg     up to max_crops per training track
    crops/heldout/v<video>_t<track>/c<video>_f<frame>.jpg   held-out tracks, one crop a second
    mined.json                                              everything below, to reload

``crops/train`` is a ``generic`` dataset (one folder per track), so the supervised recipes
can train on the same split. **Held out** are the tracks that *start* in the last
``holdout`` share of each video's duration: none of their crops is used for training or
clustering. **Must-not-link**: two tracks with a sighting in the same frame of the same video
are two different people.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import DataError
from training.mine_tracks import cut_crops, spread

FORMAT = "reid-adapt-mined/1"


@dataclass(frozen=True)
class MinedTrack:
    """One track of the library.

    Attributes:
        key: Folder name ``v<video>_t<track>``.
        video_id: Library video id (its camera).
        run_id: The indexing run it comes from.
        track_id: Tracker id within the run.
        first_s: First sighting time.
        last_s: Last sighting time.
        heldout: Held out of training (used only by the before/after check).
    """

    key: str
    video_id: int
    run_id: int
    track_id: int
    first_s: float
    last_s: float
    heldout: bool


@dataclass(frozen=True)
class MinedCrop:
    """One crop written to disk.

    Attributes:
        path: The JPEG file.
        track: Index into :attr:`MinedLibrary.tracks`.
        camera: Camera id (the video id).
        frame: Frame index in the video.
        time_s: Its time in seconds.
        box: ``(x1, y1, x2, y2)`` pixels in the frame.
    """

    path: str
    track: int
    camera: int
    frame: int
    time_s: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class MinedLibrary:
    """What :func:`mine_library` wrote.

    Attributes:
        root: The work folder.
        tracks: Every mined track (training and held out).
        train: Crops of the training tracks.
        heldout: Crops of the held-out tracks.
        cannot_link: ``(i, j)`` track index pairs (``i < j``) seen in one frame: different people.
        reid_models: Names of the ReID models that indexed the runs used.
        settings: The mining settings.
    """

    root: Path
    tracks: tuple[MinedTrack, ...]
    train: tuple[MinedCrop, ...]
    heldout: tuple[MinedCrop, ...]
    cannot_link: tuple[tuple[int, int], ...]
    reid_models: tuple[str, ...]
    settings: dict[str, Any]

    @property
    def train_tracks(self) -> np.ndarray:
        """``(T,)`` indices of the tracks that have training crops, increasing."""
        return np.unique([c.track for c in self.train]).astype(np.int64)

    def cannot_link_matrix(self, track_indices: np.ndarray) -> np.ndarray:
        """``(T, T)`` bool: True where two of these tracks were seen in one frame."""
        pos = {int(t): i for i, t in enumerate(track_indices)}
        m = np.zeros((len(pos), len(pos)), bool)
        for a, b in self.cannot_link:
            if a in pos and b in pos:
                m[pos[a], pos[b]] = m[pos[b], pos[a]] = True
        return m

    def save(self) -> Path:
        """Write ``mined.json`` in :attr:`root`."""
        data = {"format": FORMAT, "settings": self.settings, "reid_models": list(self.reid_models),
                "tracks": [asdict(t) for t in self.tracks],
                "cannot_link": [list(p) for p in self.cannot_link],
                "train": [asdict(c) for c in self.train], "heldout": [asdict(c) for c in self.heldout]}
        path = self.root / "mined.json"
        path.write_text(json.dumps(data))
        return path

    @classmethod
    def load(cls, root: str | Path) -> MinedLibrary | None:
        """Read ``root/mined.json`` (``None`` when missing, of another format or with missing crops)."""
        root = Path(root)
        try:
            data = json.loads((root / "mined.json").read_text())
        except (OSError, ValueError):
            return None
        if data.get("format") != FORMAT:
            return None
        crops = {split: tuple(MinedCrop(**{**c, "box": tuple(c["box"])}) for c in data[split])
                 for split in ("train", "heldout")}
        if not all(Path(c.path).is_file() for split in crops.values() for c in split):
            return None
        return cls(root, tuple(MinedTrack(**t) for t in data["tracks"]), crops["train"], crops["heldout"],
                   tuple(tuple(p) for p in data["cannot_link"]), tuple(data["reid_models"]), data["settings"])


def _clear_crops(folder: Path) -> None:
    """Remove the crops of an earlier mining (only our own ``v*_t*/c*_f*.jpg`` files)."""
    for f in folder.glob("v*_t*/c*_f*.jpg"):
        f.unlink()


def mine_library(db: str | Path, root: str | Path, *, holdout: float = 0.25, min_track_len: int = 8,
                 max_crops: int = 8, min_height: int = 48, heldout_step_s: float = 1.0,
                 video_ids: list[int] | None = None, progress: bool = True) -> MinedLibrary:
    """Cut training and held-out crops of an indexed library into ``root`` (see the module docstring).

    Args:
        db: The app's library database.
        root: Work folder (``crops/`` and ``mined.json`` are written there).
        holdout: Share of each video's duration, at its end, whose new tracks are held out.
        min_track_len: Skip tracks with fewer sightings at least ``min_height`` tall.
        max_crops: Crops per training track, evenly spread over its sightings.
        min_height: Skip boxes shorter than this (pixels).
        heldout_step_s: Held-out crops are cut at frames at least this far apart; every held-out
            track seen in such a frame gets a crop (so same-frame pairs exist).
        video_ids: Only these videos (default: every video with a finished run).
        progress: tqdm bars while cutting.

    Raises:
        DataError: No such database, unknown video id, or no usable track.
    """
    from core.store import Store

    db, root = Path(db), Path(root)
    settings: dict[str, Any] = {"db": str(db.resolve()), "holdout": holdout, "min_track_len": min_track_len,
                "max_crops": max_crops, "min_height": min_height, "heldout_step_s": heldout_step_s,
                "video_ids": video_ids}
    tracks: list[MinedTrack] = []
    train: list[MinedCrop] = []
    heldout: list[MinedCrop] = []
    cannot: set[tuple[int, int]] = set()
    models: set[str] = set()
    for split in ("train", "heldout"):
        (root / "crops" / split).mkdir(parents=True, exist_ok=True)
        _clear_crops(root / "crops" / split)
    settings["runs"] = library_runs(db, video_ids)
    settings["skipped"] = []
    with Store(db) as store:
        for video_id, run_id in settings["runs"]:
            video, run = store.get_video(video_id), store.get_run(run_id)
            if not Path(video.path).exists():
                settings["skipped"].append(f"{video.path}: video file not found")
                continue
            models.add(run.reid_name)
            split_s = video.duration_s * (1.0 - holdout)
            wanted: dict[int, list[tuple[Path, np.ndarray]]] = defaultdict(list)
            planned: list[tuple[int, int, float, np.ndarray, bool]] = []  # (track, frame, time, box, heldout)
            in_frame: dict[int, list[int]] = defaultdict(list)
            heldout_at: dict[int, list[tuple[int, float, np.ndarray]]] = defaultdict(list)
            for t in store.tracks(run.id):
                s = store.sightings(t.pk)
                b = s.boxes
                tall = np.flatnonzero(b[:, 3] - b[:, 1] >= min_height)
                if len(tall) < min_track_len:
                    continue
                index = len(tracks)
                for f in np.unique(s.frames).tolist():
                    in_frame[f].append(index)  # every sighting counts for must-not-link
                tracks.append(MinedTrack(f"v{video.id:03d}_t{t.track_id:05d}", video.id, run.id, t.track_id,
                                         t.first_s, t.last_s, bool(t.first_s >= split_s)))
                if tracks[-1].heldout:
                    inside = ((b[:, 0] > 2) & (b[:, 1] > 2) & (b[:, 2] < video.width - 2)
                              & (b[:, 3] < video.height - 2))
                    for i in tall[inside[tall]]:
                        heldout_at[int(s.frames[i])].append((index, float(s.times_s[i]), b[i]))
                else:
                    for i in tall[spread(len(tall), max_crops)]:
                        planned.append((index, int(s.frames[i]), float(s.times_s[i]), b[i], False))
            for members in in_frame.values():
                cannot.update(combinations(sorted(members), 2))
            last_t = -np.inf
            for f in sorted(heldout_at):
                if heldout_at[f][0][1] - last_t >= heldout_step_s:
                    last_t = heldout_at[f][0][1]
                    planned += [(ti, f, ts, box, True) for ti, ts, box in heldout_at[f]]
            for ti, f, ts, box, held in planned:
                folder = root / "crops" / ("heldout" if held else "train") / tracks[ti].key
                wanted[f].append((folder, box))
                crop = MinedCrop(str(folder / f"c{video.id}_f{f:06d}.jpg"), ti, video.id, f, ts,
                                 tuple(float(v) for v in box))
                (heldout if held else train).append(crop)
            if wanted:
                cut_crops(video.path, video.id, wanted, progress)
    # cut_crops skips boxes that are tiny after clipping: keep only crops that were written
    train = [c for c in train if Path(c.path).is_file()]
    heldout = [c for c in heldout if Path(c.path).is_file()]
    if not train:
        raise DataError(f"{db}: no track with {min_track_len}+ sightings at least {min_height} px tall "
                        "to adapt on (index more footage first)")
    lib = MinedLibrary(root, tuple(tracks), tuple(train), tuple(heldout), tuple(sorted(cannot)),
                       tuple(sorted(models)), settings)
    lib.save()
    return lib


def library_runs(db: str | Path, video_ids: list[int] | None = None) -> list[list[int]]:
    """``[video id, run id]`` of each video's newest finished run (only ``video_ids`` when given).

    Raises:
        DataError: No such database, or an unknown video id.
    """
    from core.store import Store

    if not Path(db).is_file():
        raise DataError(f"{db}: no such library database")
    with Store(db) as store:
        videos = store.list_videos()
        if video_ids is not None:
            unknown = set(video_ids) - {v.id for v in videos}
            if unknown:
                ids = ", ".join(map(str, sorted(unknown)))
                raise DataError(f"{db}: no video with id {ids} in this library")
            videos = [v for v in videos if v.id in set(video_ids)]
        runs = [(v.id, store.latest_run(v.id)) for v in videos]
    return [[vid, run.id] for vid, run in runs if run is not None]


def load_or_mine(db: str | Path, root: str | Path, *, progress: bool = True,
                 **kwargs: Any) -> tuple[MinedLibrary, bool]:
    """The mining in ``root`` if done with the same settings on the same runs, else :func:`mine_library`.

    Returns:
        ``(library, mined anew)``.
    """
    lib = MinedLibrary.load(root)
    want = {"db": str(Path(db).resolve()), "runs": library_runs(db, kwargs.get("video_ids")), **kwargs}
    if lib is not None and all(lib.settings.get(k) == v for k, v in want.items()):
        return lib, False
    return mine_library(db, root, progress=progress, **kwargs), True
