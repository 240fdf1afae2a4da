"""core.video on the real vtest.avi, clips cut from it, image folders and broken inputs."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import VideoError
from core.video import VideoSource, fingerprint, natural_key, open_source
from tests.conftest import shared_file

VTEST_FRAMES = 795
# Frames checked for exact random access, in a shuffled order (forward and backward jumps, neighbours).
PROBE = [0, 1, 2, 57, 58, 300, 301, 433, 794, 793, 120, 699, 10, 511]
random.Random(7).shuffle(PROBE)


def _one_sentence(err: pytest.ExceptionInfo[VideoError], path: Path) -> None:
    msg = str(err.value)
    assert str(path) in msg
    assert "\n" not in msg and msg.endswith(".")


@pytest.fixture(scope="session")
def vtest_reference(vtest_path: Path) -> dict[int, np.ndarray]:
    """Frames of PROBE decoded by plain sequential cv2 reading (independent of core.video)."""
    cap = cv2.VideoCapture(str(vtest_path))
    wanted, out, i = set(PROBE), {}, 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = image
        i += 1
    cap.release()
    assert i == VTEST_FRAMES
    return out


@pytest.fixture(scope="session")
def clip_path(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-frame mp4v clip cut from vtest.avi (frames 100-139), written by cv2."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    cap = cv2.VideoCapture(str(vtest_path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (768, 576))
    for _ in range(40):
        ok, image = cap.read()
        assert ok
        writer.write(image)
    writer.release()
    cap.release()
    return path


@pytest.fixture(scope="session")
def truncated_path(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 30 % of vtest.avi's bytes (as an interrupted copy leaves it)."""
    data = vtest_path.read_bytes()
    path = tmp_path_factory.mktemp("trunc") / "vtest_cut.avi"
    path.write_bytes(data[: int(len(data) * 0.3)])
    return path


def test_vtest_properties(vtest_path: Path) -> None:
    with open_source(vtest_path) as src:
        assert isinstance(src, VideoSource)
        assert not src.is_image_folder
        assert src.frame_count == VTEST_FRAMES
        assert src.fps == pytest.approx(10.0)
        assert (src.width, src.height) == (768, 576)
        assert src.duration_s == pytest.approx(79.5)
        assert src.time_source == "container"
        assert src.frames_decoded is None  # nothing has reached the end yet


def test_vtest_iter_stride_2(vtest_path: Path, vtest_reference: dict[int, np.ndarray]) -> None:
    with open_source(vtest_path) as src:
        frames = list(src.iter_frames(stride=2))
        assert len(frames) == 398
        assert [f.index for f in frames] == list(range(0, VTEST_FRAMES, 2))
        assert np.allclose([f.time_s for f in frames], np.arange(0, VTEST_FRAMES, 2) / 10.0, atol=1e-6)
        assert all(f.image.shape == (576, 768, 3) and f.image.dtype == np.uint8 for f in frames)
        by_index = {f.index: f.image for f in frames}
        for i, ref in vtest_reference.items():
            if i % 2 == 0:
                assert np.array_equal(by_index[i], ref), i
        assert src.frames_decoded == VTEST_FRAMES
        assert not src.truncated


def test_vtest_iter_start_and_protocol(vtest_path: Path, vtest_reference: dict[int, np.ndarray]) -> None:
    with open_source(vtest_path) as src:
        frames = list(src.iter_frames(stride=7, start=300))
        assert [f.index for f in frames] == list(range(300, VTEST_FRAMES, 7))
        assert np.array_equal(frames[0].image, vtest_reference[300])
        assert frames[0].time_s == pytest.approx(30.0)
        head = []
        for frame in src:  # iterating a source gives every frame in order
            head.append(frame)
            if len(head) == 3:
                break
        assert [f.index for f in head] == [0, 1, 2]
        assert np.array_equal(head[2].image, vtest_reference[2])


def test_vtest_read_exact_random_order(vtest_path: Path, vtest_reference: dict[int, np.ndarray]) -> None:
    with open_source(vtest_path) as src:
        for i in PROBE:
            frame = src.read(i)
            assert frame.index == i
            assert frame.time_s == pytest.approx(i / 10.0)
            assert np.array_equal(frame.image, vtest_reference[i]), f"frame {i} differs"
        # After reading i, the decoder sits at i + 1: the next read is a plain read.
        assert src._trust.trusted  # seeks were used, not a sequential decode of everything
        src.read(57)
        assert src._cap is not None and src._cap.pos == 58
        assert np.array_equal(src.read(58).image, vtest_reference[58])


class _SeekSpy:
    """A real OpenCV capture that records every position it is asked to seek to."""

    def __init__(self, cap: cv2.VideoCapture, seeks: list[float]) -> None:
        self._cap, self._seeks = cap, seeks

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES:
            self._seeks.append(value)
        return self._cap.set(prop, value)

    def __getattr__(self, name: str):
        return getattr(self._cap, name)


def test_read_sequential_fallback_is_exact(vtest_path: Path, vtest_reference: dict[int, np.ndarray],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The path used when a container's seeks cannot be trusted gives the same frames, without seeking."""
    import core.video_file as video_mod

    seeks: list[float] = []
    real_open = video_mod._open_capture
    monkeypatch.setattr(video_mod, "_open_capture", lambda path: _SeekSpy(real_open(path), seeks))
    with open_source(vtest_path) as src:
        src.read(0)
        assert src._cap is not None
        src._trust.trusted = False  # what a failed seek check or a seek landing elsewhere leaves
        src._cap.cap = _SeekSpy(src._cap.cap, seeks)
        seeks.clear()
        for i in [433, 120, 301, 10]:
            assert np.array_equal(src.read(i).image, vtest_reference[i]), i
            assert src._cap.pos == i + 1
        assert seeks == []  # every frame was decoded through, from where it was or from frame 0


def test_mp4v_clip(clip_path: Path, vtest_reference: dict[int, np.ndarray]) -> None:
    with open_source(clip_path) as src:
        assert src.frame_count == 40
        assert src.fps == pytest.approx(10.0)
        sequential = [f.image for f in src.iter_frames()]
        assert len(sequential) == 40 and src.frames_decoded == 40
        for i in [39, 0, 17, 5, 6, 31, 30]:
            frame = src.read(i)
            assert frame.time_s == pytest.approx(i / 10.0)
            assert np.array_equal(frame.image, sequential[i]), i
        # Lossy re-encode of vtest frame 120 is close to the original, not another frame.
        diff = np.abs(sequential[20].astype(int) - vtest_reference[120].astype(int)).mean()
        assert diff < 8
        with pytest.raises(VideoError, match="no frame 40"):
            src.read(40)


def test_image_folder(tmp_path: Path) -> None:
    sizes = {"img1.png": (40, 30), "img2.png": (48, 32), "img10.png": (20, 64), "IMG3.PNG": (40, 30)}
    colours = {}
    for k, (name, (h, w)) in enumerate(sizes.items()):
        image = np.full((h, w, 3), (10 * k, 50, 200 - k), np.uint8)
        image[0, 0] = (k, k, k)
        colours[name] = image
        assert cv2.imwrite(str(tmp_path / name), image)
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    order = ["img1.png", "img2.png", "IMG3.PNG", "img10.png"]
    with open_source(tmp_path) as src:
        assert src.is_image_folder
        assert [p.name for p in src.files] == order
        assert src.frame_count == 4 and src.fps == 1.0 and src.duration_s == 4.0
        assert (src.height, src.width) == (40, 30)
        frames = list(src.iter_frames())
        assert [f.index for f in frames] == [0, 1, 2, 3]
        assert [f.time_s for f in frames] == [0.0, 1.0, 2.0, 3.0]
        for frame, name in zip(frames, order, strict=True):
            assert np.array_equal(frame.image, colours[name])  # own size kept
        assert np.array_equal(src.read(3).image, colours["img10.png"])
        assert [f.index for f in src.iter_frames(stride=2, start=1)] == [1, 3]
        with pytest.raises(VideoError, match="holds 4 images"):
            src.read(4)
    with open_source(tmp_path, fps=5.0) as src:
        assert [f.time_s for f in src.iter_frames()] == pytest.approx([0.0, 0.2, 0.4, 0.6])


def test_mot17_image_folder() -> None:
    folder = shared_file("mot17_mini/train/MOT17-02-FRCNN/img1")
    files = sorted(folder.glob("*.jpg"))
    with open_source(folder) as src:
        assert src.frame_count == len(files) >= 4
        assert (src.width, src.height) == (1920, 1080)
        frames = list(src.iter_frames())
        assert len(frames) == len(files)
        for frame, file in zip(frames, files, strict=True):
            assert np.array_equal(frame.image, cv2.imread(str(file)))
        assert np.array_equal(src.read(2).image, frames[2].image)


def test_natural_key() -> None:
    names = ["f10.jpg", "f2.jpg", "f1.jpg", "F3.jpg", "f02b.jpg", "a.jpg"]
    assert sorted(names, key=natural_key) == ["a.jpg", "f1.jpg", "f2.jpg", "f02b.jpg", "F3.jpg", "f10.jpg"]


def test_truncated_video(truncated_path: Path, vtest_path: Path,
                         vtest_reference: dict[int, np.ndarray]) -> None:
    with open_source(truncated_path) as src:
        assert src.frame_count == VTEST_FRAMES  # the header still claims the full length
        frames = list(src.iter_frames())
        n = len(frames)
        assert 0 < n < VTEST_FRAMES * 0.5
        assert [f.index for f in frames] == list(range(n))
        assert src.frames_decoded == n and src.truncated
        for i, ref in vtest_reference.items():
            if i < n - 1:  # the last decoded frame may be partly damaged
                assert np.array_equal(frames[i].image, ref), i
        with pytest.raises(VideoError, match=f"only {n} frames decode of the {VTEST_FRAMES}") as err:
            src.verify()
        _one_sentence(err, truncated_path)
    with open_source(truncated_path) as src:  # fresh source: read past the end finds the end itself
        with pytest.raises(VideoError, match=f"no frame 500: only {n} frames decode") as err:
            src.read(500)
        _one_sentence(err, truncated_path)
        assert src.truncated
        assert np.array_equal(src.read(120).image, vtest_reference[120])
    with open_source(vtest_path) as src:
        assert src.verify() == VTEST_FRAMES


def test_truncated_video_random_reads(truncated_path: Path, vtest_reference: dict[int, np.ndarray]) -> None:
    """A truncated AVI lost its seek index: OpenCV's seeks land on wrong frames, reads must not."""
    with open_source(truncated_path) as src:
        for i in [120, 57, 10, 58, 1]:
            assert np.array_equal(src.read(i).image, vtest_reference[i]), i
        assert src._trust.trusted is False


@pytest.mark.parametrize("kind", ["text", "empty", "missing", "empty_folder", "no_images", "bad_image"])
def test_bad_inputs(tmp_path: Path, kind: str) -> None:
    if kind == "text":
        path = tmp_path / "notes.avi"
        path.write_text("this is not a video\n" * 100)
        expected = "not a video"
    elif kind == "empty":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
        expected = "empty"
    elif kind == "missing":
        path = tmp_path / "nowhere.mp4"
        expected = "does not exist"
    elif kind == "empty_folder":
        path = tmp_path / "frames"
        path.mkdir()
        expected = "contains no images"
    elif kind == "no_images":
        path = tmp_path / "frames"
        path.mkdir()
        (path / "readme.txt").write_text("x")
        expected = "contains no images"
    else:
        path = tmp_path / "frames"
        path.mkdir()
        (path / "0001.png").write_text("not really a png")
        expected = "cannot be decoded"
    with pytest.raises(VideoError, match=expected) as err:
        open_source(path)
    _one_sentence(err, path)


def test_bad_image_in_middle_of_folder(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "1.png"), image)
    (tmp_path / "2.png").write_bytes(b"\x89PNG broken")
    cv2.imwrite(str(tmp_path / "3.png"), image)
    with open_source(tmp_path) as src:
        frames = src.iter_frames()
        assert next(frames).index == 0
        with pytest.raises(VideoError, match="2.png"):
            next(frames)


def test_arguments_and_close(vtest_path: Path) -> None:
    src = open_source(vtest_path)
    with pytest.raises(ValueError):
        src.iter_frames(stride=0)
    with pytest.raises(ValueError):
        src.iter_frames(start=-1)
    with pytest.raises(ValueError):
        src.read(-1)
    with pytest.raises(ValueError):
        open_source(vtest_path, fps=0)
    src.close()
    with pytest.raises(VideoError, match="closed"):
        src.read(0)


def test_fingerprint(vtest_path: Path, truncated_path: Path, tmp_path: Path) -> None:
    original = fingerprint(vtest_path)
    assert len(original) == 64 and int(original, 16) >= 0
    moved = tmp_path / "somewhere" / "renamed.avi"
    moved.parent.mkdir()
    shutil.copyfile(vtest_path, moved)
    assert fingerprint(moved) == original
    assert fingerprint(truncated_path) != original
    data = bytearray(vtest_path.read_bytes())
    data[-100] ^= 0xFF  # inside the last MiB
    changed = tmp_path / "changed.avi"
    changed.write_bytes(bytes(data))
    assert fingerprint(changed) != original
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    other = tmp_path / "other.bin"
    other.write_bytes(b"abd")
    assert fingerprint(small) != fingerprint(other)
    # Image folders: content counts, the folder's name does not.
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    cv2.imwrite(str(a / "1.png"), np.zeros((4, 4, 3), np.uint8))
    shutil.copytree(a, b)
    assert fingerprint(a) == fingerprint(b)
    with pytest.raises(VideoError, match="does not exist"):
        fingerprint(tmp_path / "gone.avi")
