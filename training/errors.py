"""Errors of the training package: one readable sentence each, shown as they are by the commands."""

from core.errors import ReidSearchError


class TrainingError(ReidSearchError):
    """Base class of the training package's user-facing errors."""


class DataError(TrainingError):
    """A dataset folder, list file or image cannot be used."""


class ConfigError(TrainingError):
    """A configuration file or ``key=value`` override is invalid."""


class CheckpointError(TrainingError):
    """A checkpoint or weights file cannot be read or does not fit the model."""


class ExportError(TrainingError):
    """ONNX export or its checks failed."""
