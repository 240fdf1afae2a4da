"""Errors the engine raises on bad input.

Each carries one readable sentence that names the file (or thing) and what is
wrong, so the CLI and the GUI can show ``str(err)`` as it is.
"""


class ReidSearchError(Exception):
    """Base class of every error meant to be shown to a user."""


class ModelError(ReidSearchError):
    """A model file is missing, is not ONNX, or is not the kind of model expected."""


class VideoError(ReidSearchError):
    """A video or image folder cannot be read."""


class QueryError(ReidSearchError):
    """A query photo cannot be used (unreadable, no person in it)."""


class StoreError(ReidSearchError):
    """The database is unusable or a requested item is not in it."""


class DamagedLibraryError(StoreError):
    """The library file is damaged (pages unreadable, cut short); ``python -m core repair`` salvages it."""


class ReadOnlyLibraryError(StoreError):
    """The library can be read but not written (read-only file, folder or drive)."""


class BusyError(ReidSearchError):
    """The work is already being done elsewhere.

    For example, another program or window is indexing the same video into the same library
    with the same settings.
    """
