"""The model manifest: which models the app uses by default, where they come from, how to check them.

``python -m core.models list | fetch | verify`` is the command-line front end.
"""

from core.models.manifest import (
    ModelEntry,
    default_model,
    entry_for_file,
    load_manifest,
    resolve_model,
)

__all__ = ["ModelEntry", "default_model", "entry_for_file", "load_manifest", "resolve_model"]
