"""How a library file can be opened: read-write, or read-only (and why), as an SQLite URI.

A library is opened read-only when this process cannot write it: the file is read-only
for this user, it is immutable (``chattr +i``), it lives on a read-only drive or mount
(``EROFS``), or its folder cannot be written (SQLite in WAL mode creates ``-wal`` and
``-shm`` files beside the database). :func:`write_block` says which, in words.

The read-only URI is ``file:...?mode=ro``. When SQLite could not even create the
``-shm`` file beside it (folder not writable and no ``-shm`` there), it adds
``immutable=1``: SQLite then reads the file without locks or the WAL, which is right for
a library on read-only media, where nothing can change it (the last commits of a
library that still has a ``-wal`` file there are not seen).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote


def write_block(path: Path) -> str | None:
    """Why this process cannot write the library at ``path`` (``None`` when it can).

    Args:
        path: The database file (it may not exist yet: then its folder counts).

    Returns:
        A few words for a sentence (``"the file is read-only"``), or ``None``.
    """
    folder = path.parent
    target = path if path.exists() else folder
    if not target.exists():
        return None  # the folder will be created: no reason known yet
    try:
        if os.statvfs(target).f_flag & os.ST_RDONLY:
            return "it is on a read-only drive"
    except OSError:
        pass
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} cannot be written"
    return None


def sqlite_uri(path: Path, *, read_only: bool) -> str:
    """The ``file:`` URI to open ``path`` with (``sqlite3.connect(uri, uri=True)``).

    Args:
        path: The database file (absolute).
        read_only: Open with ``mode=ro`` (adding ``immutable=1`` where SQLite could not make
            its ``-shm`` file, see the module notes).
    """
    uri = "file:" + quote(str(path), safe="/")
    if not read_only:
        return uri
    shm = path.with_name(path.name + "-shm")
    if not shm.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        return uri + "?mode=ro&immutable=1"
    return uri + "?mode=ro"
