"""Which files are media, in which order, and what identifies them.

The names a user gives (video files, image folders, folders of videos) become the sources
to index; a fingerprint identifies a source's content whatever its name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from core.errors import VideoError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""File name endings (any case) taken as frames in an image folder."""

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv",
                                     ".webm", ".ts", ".mts", ".m2ts", ".flv", ".3gp", ".ogv", ".dav")
"""File name endings (any case) taken as videos in a folder of videos (CLI and GUI alike)."""

FINGERPRINT_EDGE_BYTES = 1 << 20
"""Bytes hashed at the start and at the end of a file by :func:`fingerprint`."""

FINGERPRINT_MIDDLE_CHUNKS = 4
"""Number of evenly spaced chunks hashed from the middle of a file by :func:`fingerprint`."""

FINGERPRINT_CHUNK_BYTES = 64 << 10
"""Size of each middle chunk hashed by :func:`fingerprint`."""


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value: ``img2.png`` < ``img10.png``.

    Args:
        name: A file name.

    Returns:
        A tuple comparable between any two names.
    """
    parts = re.split(r"(\d+)", name)
    return tuple((1, int(p)) if i % 2 else (0, p.lower()) for i, p in enumerate(parts)) + ((0, name),)


def video_files(folder: str | Path) -> list[Path]:
    """The video files directly in ``folder`` (:data:`VIDEO_EXTENSIONS`), in natural name order.

    Sub-folders and other files are ignored.

    Args:
        folder: A folder.

    Returns:
        The videos' paths (empty when there are none).

    Raises:
        VideoError: The folder cannot be listed.
    """
    folder = Path(folder)
    try:
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    except OSError as err:
        raise VideoError(f"{folder}: folder cannot be listed ({err.strerror or err}).") from None
    return sorted(files, key=lambda p: natural_key(p.name))


def expand_sources(items: Sequence[str | Path]) -> list[Path]:
    """Turn what a user names (video files, image folders, folders of videos) into the sources to index.

    A folder holding at least one file with a video ending (:data:`VIDEO_EXTENSIONS`) stands for
    those videos (:func:`video_files`); any other folder is one image sequence. The CLI and the
    GUI both open folders this way.

    Args:
        items: Video files, image folders, or folders of videos.

    Returns:
        Paths in order, each once (by resolved path).

    Raises:
        VideoError: An item does not exist.
    """
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if not path.exists():
            raise VideoError(f"{path}: no such file or folder.")
        files = video_files(path) if path.is_dir() else []
        out += files or [path]
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def list_images(folder: Path) -> list[Path]:
    """Return the image files directly in ``folder``, in natural name order.

    Hidden files (names starting with ``.``) and other extensions are left out.

    Args:
        folder: A directory.

    Returns:
        Paths of the images, in frame order.
    """
    files = [
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def fingerprint(path: str | Path) -> str:
    """Content fingerprint of a video file (or image folder), unchanged by renaming or moving it.

    A file's fingerprint is the SHA-256 hex digest over: its size as 8 little-endian bytes, its first
    and last :data:`FINGERPRINT_EDGE_BYTES`, and :data:`FINGERPRINT_MIDDLE_CHUNKS` chunks of
    :data:`FINGERPRINT_CHUNK_BYTES` at evenly spaced offsets in between (small files are hashed
    whole). It reads at most about 2.3 MiB, so it is fast on multi-GB files; two different videos of
    the same size agree in all sampled bytes only in contrived cases. An image folder's fingerprint is
    the SHA-256 over the fingerprints of its images in frame order (names do not count).

    Args:
        path: A video file or a folder of images.

    Returns:
        64 lowercase hex characters.

    Raises:
        VideoError: If the path does not exist, cannot be read, or is a folder without images.
    """
    path = Path(path)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise VideoError(f"Image folder {path} contains no images ({', '.join(IMAGE_EXTENSIONS)}).")
        digest = hashlib.sha256(b"image-folder")
        for image in images:
            digest.update(bytes.fromhex(fingerprint(image)))
        return digest.hexdigest()
    if not path.exists():
        raise VideoError(f"Video file {path} does not exist.")
    digest = hashlib.sha256()
    try:
        size = path.stat().st_size
        digest.update(size.to_bytes(8, "little"))
        with path.open("rb") as f:
            sampled = 2 * FINGERPRINT_EDGE_BYTES + FINGERPRINT_MIDDLE_CHUNKS * FINGERPRINT_CHUNK_BYTES
            if size <= sampled:
                digest.update(f.read())
            else:
                digest.update(f.read(FINGERPRINT_EDGE_BYTES))
                span = size - 2 * FINGERPRINT_EDGE_BYTES - FINGERPRINT_CHUNK_BYTES
                for k in range(1, FINGERPRINT_MIDDLE_CHUNKS + 1):
                    f.seek(FINGERPRINT_EDGE_BYTES + span * k // (FINGERPRINT_MIDDLE_CHUNKS + 1))
                    digest.update(f.read(FINGERPRINT_CHUNK_BYTES))
                f.seek(size - FINGERPRINT_EDGE_BYTES)
                digest.update(f.read(FINGERPRINT_EDGE_BYTES))
    except OSError as exc:
        raise VideoError(f"Video file {path} cannot be read ({exc.strerror or exc}).") from None
    return digest.hexdigest()
