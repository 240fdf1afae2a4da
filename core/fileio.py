"""Small file helpers every part of the engine shares: file digests, image decoding, atomic writes."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from core.errors import ReidSearchError


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | Path, *, cached: bool = False) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks.

    Args:
        path: The file.
        cached: Remember the digest per (resolved path, size, modification time), so asking
            again for an unchanged model file costs a ``stat``, not a read. Leave it off where
            the point is to notice changed bytes (a damaged file keeps its size and time).

    Raises:
        OSError: The file cannot be read.
    """
    resolved = Path(path).resolve()
    if cached:
        st = resolved.stat()
        return _sha256_cached(str(resolved), st.st_size, st.st_mtime_ns)
    return _sha256_cached.__wrapped__(str(resolved), 0, 0)


def decode_image(data: bytes | np.ndarray) -> np.ndarray | None:
    """Decode an encoded image (JPEG, PNG, BMP, WebP, ...) to ``(H, W, 3)`` uint8 BGR.

    EXIF orientation is applied (OpenCV's default), so phone photos come out upright.

    Returns:
        The image, or ``None`` when the bytes are not an image OpenCV can decode.
    """
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        return None
    try:
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        return None


def read_image(path: str | Path) -> np.ndarray | None:
    """Read an image file as ``(H, W, 3)`` uint8 BGR (works with non-ASCII paths, unlike ``cv2.imread``).

    Returns:
        The image, or ``None`` when the file is not a decodable image.

    Raises:
        OSError: The file cannot be read.
    """
    return decode_image(np.fromfile(str(path), np.uint8))


def write_text_atomic(path: str | Path, text: str, *, what: str = "file") -> None:
    """Write UTF-8 text to ``path`` through a temporary file renamed into place.

    Args:
        path: Destination.
        text: Content.
        what: What the file is, for the error sentence (``"JSON file"``).

    Raises:
        ReidSearchError: The file cannot be written (the sentence names it and why).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ReidSearchError(f"{path}: cannot write the {what} ({err.strerror or err}).") from None
