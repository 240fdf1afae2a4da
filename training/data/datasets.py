"""Person re-identification datasets parsed by their naming rules into ``(path, pid, camid)`` lists.

Every dataset is a function ``(root) -> ReidData``; ``root`` may be the dataset's own
folder or the folder that holds it (e.g. ``/data`` or ``/data/Market-1501-v15.09.15``).
Camera ids are 0-based; training person ids are relabelled to ``0..num_train_pids-1``
while query/gallery ids keep their original numbers (so the distractor id 0 of
Market-1501 stays distinct from every real person).

Supported (``DATASETS`` keys):

* ``market1501``: ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with names
  ``0002_c1s1_000451_03.jpg`` (person 2, camera 1). Junk images (person ``-1``) are dropped;
  distractors (person ``0000``) stay in the gallery, as in the official protocol.
* ``dukemtmcreid``: same folders and rule as Market-1501 (``0001_c2_f0046182.jpg``).
* ``msmt17``: v1 (``MSMT17_V1/train``, ``test``) or v2 (``MSMT17_V2/mask_train_v2``,
  ``mask_test_v2``) with the list files ``list_train.txt``, ``list_val.txt`` (both used for
  training), ``list_query.txt``, ``list_gallery.txt``; each line ``0000/0000_000_01_0303morning_0015_0.jpg 0``
  and the camera is the third ``_`` field of the file name (1-based in the name).
* ``cuhk03_np_detected`` / ``cuhk03_np_labeled``: the CUHK03-NP new protocol
  (``cuhk03-np/detected`` or ``labeled``), Market-style folders and names (``0001_c1_1.png``).
* ``generic``: ``root/<identity>/<images>`` (see :func:`generic`), e.g. what
  ``python -m training.mine_tracks`` writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from training.errors import DataError
from training.registry import Registry

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
"""File endings read as images (case-insensitive)."""

Item = tuple[str, int, int]
"""One sample: ``(image path, person id, camera id)``."""

_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
_CAM_TOKEN = re.compile(r"(?:^|[_\-.])c(\d+)(?=$|[_\-.s])")


@dataclass(frozen=True)
class ReidData:
    """A parsed dataset.

    Attributes:
        name: Registry name of the dataset.
        train: Training items; pids relabelled to ``0..num_train_pids-1``.
        query: Query items (original pids), may be empty.
        gallery: Gallery items (original pids), may be empty.
    """

    name: str
    train: tuple[Item, ...]
    query: tuple[Item, ...] = ()
    gallery: tuple[Item, ...] = ()

    @property
    def num_train_pids(self) -> int:
        """Number of training identities (classifier size)."""
        return len({pid for _, pid, _ in self.train})

    @property
    def num_train_cams(self) -> int:
        """Number of distinct training cameras."""
        return len({cam for _, _, cam in self.train})

    def summary(self) -> str:
        """One line per split: images, identities and cameras."""
        lines = [f"dataset {self.name}"]
        for split in ("train", "query", "gallery"):
            items = getattr(self, split)
            pids = {p for _, p, _ in items}
            cams = {c for _, _, c in items}
            lines.append(f"  {split:8s} {len(items):7d} images {len(pids):6d} ids {len(cams):4d} cameras")
        return "\n".join(lines)


def relabel(items: Iterable[Item]) -> tuple[Item, ...]:
    """Map person ids to ``0..P-1`` in sorted order of the original ids."""
    items = list(items)
    mapping = {pid: i for i, pid in enumerate(sorted({pid for _, pid, _ in items}))}
    return tuple((path, mapping[pid], cam) for path, pid, cam in items)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _find_root(root: str | Path, names: tuple[str, ...], marker: str, dataset: str) -> Path:
    """Return the folder holding ``marker``: ``root`` itself or ``root/<one of names>``."""
    root = Path(root)
    for cand in (root, *(root / n for n in names)):
        if (cand / marker).is_dir() or (cand / marker).is_file():
            return cand
    raise DataError(f"{root}: not a {dataset} folder (no {marker} in it or in "
                    f"{', '.join(names)} below it)")


def _parse_market_folder(folder: Path, dataset: str, *, keep_distractors: bool) -> list[Item]:
    """Parse a folder of Market-style names ``PPPP_cC...``; junk (-1) dropped."""
    if not folder.is_dir():
        raise DataError(f"{folder}: missing folder of the {dataset} dataset")
    items = []
    for path in _images(folder):
        m = _MARKET_NAME.match(path.name)
        if m is None:
            raise DataError(f"{path}: file name does not follow the {dataset} rule 'PPPP_cC...'")
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1 or (pid == 0 and not keep_distractors):
            continue
        items.append((str(path), pid, cam - 1))
    return items


def _market_style(root: str | Path, name: str, folder_names: tuple[str, ...]) -> ReidData:
    base = _find_root(root, folder_names, "bounding_box_train", name)
    train = _parse_market_folder(base / "bounding_box_train", name, keep_distractors=False)
    query = _parse_market_folder(base / "query", name, keep_distractors=False)
    gallery = _parse_market_folder(base / "bounding_box_test", name, keep_distractors=True)
    if not train:
        raise DataError(f"{base / 'bounding_box_train'}: no training images")
    return ReidData(name, relabel(train), tuple(query), tuple(gallery))


def market1501(root: str | Path) -> ReidData:
    """Market-1501 (Zheng et al. 2015): 751 training ids, 6 cameras."""
    return _market_style(root, "market1501", ("Market-1501-v15.09.15", "Market-1501", "market1501"))


def dukemtmcreid(root: str | Path) -> ReidData:
    """DukeMTMC-reID (Zheng et al. 2017): 702 training ids, 8 cameras."""
    return _market_style(root, "dukemtmcreid", ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmcreid"))


def cuhk03_np_detected(root: str | Path) -> ReidData:
    """CUHK03-NP, detected boxes (new protocol of Zhong et al. 2017): 767 training ids."""
    return _market_style(Path(root) / "detected" if (Path(root) / "detected").is_dir()
                         else Path(root) / "cuhk03-np" / "detected", "cuhk03_np_detected", ())


def cuhk03_np_labeled(root: str | Path) -> ReidData:
    """CUHK03-NP, hand-labelled boxes (new protocol): 767 training ids."""
    return _market_style(Path(root) / "labeled" if (Path(root) / "labeled").is_dir()
                         else Path(root) / "cuhk03-np" / "labeled", "cuhk03_np_labeled", ())


def _parse_msmt_list(list_file: Path, image_dir: Path) -> list[Item]:
    if not list_file.is_file():
        raise DataError(f"{list_file}: missing list file of MSMT17")
    items = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            rel, pid = parts[0], int(parts[1])
            cam = int(Path(rel).name.split("_")[2]) - 1
        except (IndexError, ValueError):
            raise DataError(f"{list_file}:{n}: expected 'PPPP/PPPP_NNN_CC_....jpg PID', "
                            f"got {line!r}") from None
        items.append((str(image_dir / rel), pid, cam))
    return items


def msmt17(root: str | Path) -> ReidData:
    """MSMT17 (Wei et al. 2018), v1 or v2 layout: 1041 training ids (train + val lists), 15 cameras."""
    root = Path(root)
    layouts = ((root, "train", "test"), (root / "MSMT17_V1", "train", "test"),
               (root / "MSMT17", "train", "test"), (root, "mask_train_v2", "mask_test_v2"),
               (root / "MSMT17_V2", "mask_train_v2", "mask_test_v2"))
    found = [lay for lay in layouts if (lay[0] / "list_train.txt").is_file() and (lay[0] / lay[1]).is_dir()]
    if not found:
        raise DataError(f"{root}: not an MSMT17 folder (no list_train.txt with train/ or mask_train_v2/ "
                        "in it or in MSMT17_V1/, MSMT17_V2/ below it)")
    base, train_dir, test_dir = found[0]
    train = _parse_msmt_list(base / "list_train.txt", base / train_dir)
    if (base / "list_val.txt").is_file():
        train += _parse_msmt_list(base / "list_val.txt", base / train_dir)
    query = _parse_msmt_list(base / "list_query.txt", base / test_dir)
    gallery = _parse_msmt_list(base / "list_gallery.txt", base / test_dir)
    return ReidData("msmt17", relabel(train), tuple(query), tuple(gallery))


def _camera_of(path: Path, identity_dir: Path) -> int | None:
    """Camera from a ``cN`` token of the file name, else from a sub-folder name, else None."""
    m = _CAM_TOKEN.search(path.stem)
    if m:
        return int(m.group(1))
    if path.parent != identity_dir:
        sub = path.parent.relative_to(identity_dir).parts[0]
        m = re.fullmatch(r"c?(?:am(?:era)?)?_?(\d+)", sub, re.IGNORECASE)
        if m:
            return int(m.group(1))
        return None
    return None


def parse_identity_folders(folder: str | Path) -> list[Item]:
    """Parse ``folder/<identity>/<images>`` (identity = sub-folder name, original ids kept as ranks).

    Cameras: a ``cN`` token in the file name (``c3_f000120.jpg``, ``x_c3s1.jpg``, ``c3.png``)
    gives camera ``N``; otherwise images in a sub-folder of the identity folder named
    ``N``, ``cN``, ``camN`` or ``cameraN`` get camera ``N``; any other sub-folder name gets
    its own camera number (in sorted order of the names, after the numbered ones);
    images directly in the identity folder without a token get camera 0.

    Returns:
        Items with pids numbered by sorted identity-folder name (``0..P-1``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    identities = sorted(d for d in folder.iterdir() if d.is_dir())
    raw: list[tuple[str, int, int | None, str | None]] = []
    for pid, ident in enumerate(identities):
        for path in sorted(ident.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            cam = _camera_of(path, ident)
            sub = path.parent.relative_to(ident).parts[0] if path.parent != ident else None
            raw.append((str(path), pid, cam, sub))
    numbered = {c for _, _, c, _ in raw if c is not None}
    extra = {s: max(numbered, default=0) + 1 + i
             for i, s in enumerate(sorted({s for _, _, c, s in raw if c is None and s is not None}))}
    return [(p, pid, c if c is not None else (extra[s] if s is not None else 0)) for p, pid, c, s in raw]


def generic(root: str | Path) -> ReidData:
    """A folder of identity folders: ``root/<identity>/<images>``.

    If ``root`` holds ``train/`` (and optionally ``query/`` and ``gallery/``), each of
    those is parsed as identity folders; the same identity folder name in query and
    gallery is the same person. Otherwise all of ``root`` is training data with no
    evaluation split. Camera ids follow :func:`parse_identity_folders`; the evaluation
    protocol ignores gallery images of the query's identity seen by the query's camera,
    so give query and gallery images different cameras.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if not (root / "train").is_dir():
        train = parse_identity_folders(root)
        if not train:
            raise DataError(f"{root}: no images in identity sub-folders (expected root/<identity>/<images>)")
        return ReidData("generic", tuple(train))
    train = parse_identity_folders(root / "train")
    if not train:
        raise DataError(f"{root / 'train'}: no images in identity sub-folders")
    query: list[Item] = []
    gallery: list[Item] = []
    if (root / "query").is_dir() and (root / "gallery").is_dir():
        names = sorted({d.name for split in ("query", "gallery")
                        for d in (root / split).iterdir() if d.is_dir()})
        ids = {n: i for i, n in enumerate(names)}
        for split, out in (("query", query), ("gallery", gallery)):
            for path, _, cam in parse_identity_folders(root / split):
                out.append((path, ids[Path(path).relative_to(root / split).parts[0]], cam))
    return ReidData("generic", tuple(train), tuple(query), tuple(gallery))


DATASETS: Registry = Registry("dataset", {
    "market1501": market1501,
    "dukemtmcreid": dukemtmcreid,
    "msmt17": msmt17,
    "cuhk03_np_detected": cuhk03_np_detected,
    "cuhk03_np_labeled": cuhk03_np_labeled,
    "generic": generic,
})
"""Dataset name -> ``(root) -> ReidData``."""


def build_dataset(name: str, root: str | Path) -> ReidData:
    """Parse dataset ``name`` found at ``root``.

    Raises:
        KeyError: Unknown name (the message lists the valid names).
        DataError: The folder does not hold that dataset.
    """
    factory: Callable[[str | Path], ReidData] = DATASETS[name]
    return factory(root)
