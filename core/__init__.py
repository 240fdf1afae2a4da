"""ReID Video Search engine: detection, tracking, ReID, storage and search. No Qt here."""

__version__ = "0.1.0"
