"""Plain-dict registries whose missing-key error lists the valid keys."""

from __future__ import annotations

from typing import Any


class Registry(dict):
    """A ``dict`` of name -> factory; ``registry[name]`` on an unknown name raises a helpful KeyError.

    Args:
        kind: What the entries are, used in the error message (e.g. ``"dataset"``).
        entries: Initial name -> value mapping.
    """

    def __init__(self, kind: str, entries: dict[str, Any] | None = None) -> None:
        super().__init__(entries or {})
        self.kind = kind

    def __missing__(self, key: str) -> Any:
        raise KeyError(f"unknown {self.kind} {key!r}; valid {self.kind}s: {', '.join(sorted(self))}")
