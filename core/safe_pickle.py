"""Unpickling of resume states that cannot run code hidden in a hostile library file.

A library is a file users copy and share; the resume state of an interrupted run is a
pickle inside it (:mod:`core.pipeline`). A plain ``pickle.loads`` of a crafted blob
calls any function it names (``os.system``...). :func:`loads` resolves only the
globals a resume state is made of: classes defined in the engine's own modules
(``core.*``), filterpy's Kalman filters, numpy's arrays, dtypes, scalar types and their
reconstructors (not ``numpy.memmap``, which opens files), and a few harmless builtins. Anything else raises
:class:`pickle.UnpicklingError` (the run then starts again from the first frame).

Calling an allowed class with a blob's arguments builds an object of a known kind
and runs nothing else: the engine's classes that touch files or models
(``Store``, ``Engine``, video sources, ONNX sessions ...) are refused by name prefix
of their module (:data:`REFUSED_MODULES`).
"""

from __future__ import annotations

import builtins
import io
import pickle
from typing import Any

import numpy as np

ALLOWED_BUILTINS = frozenset({"set", "frozenset", "slice", "range", "complex", "bytearray", "tuple", "list",
                              "dict", "int", "float", "bool", "str", "bytes"})
"""Builtins a resume state may name."""

NUMPY_FUNCTIONS = frozenset({
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
})
"""numpy's pickle reconstructors (arrays, scalars, buffers)."""

REFUSED_MODULES = ("core.store", "core.engine", "core.video", "core.onnx_model", "core.detection",
                   "core.reid", "core.index", "core.fileio", "core.export", "core.models", "core.repair",
                   "core.cli", "core.library", "core.parallel", "core.prefetch", "core.clips")
"""Engine modules whose classes open files, databases or models: never built from a blob."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        top = module.split(".")[0]
        if module == "builtins" and name in ALLOWED_BUILTINS:
            return getattr(builtins, name)
        if (module, name) in NUMPY_FUNCTIONS:
            return super().find_class(module, name)
        if "." not in name and not name.startswith("__") and (
                module.startswith("filterpy.kalman") or top in ("core", "numpy")
                and not module.startswith(REFUSED_MODULES)):
            found = super().find_class(module, name)
            if isinstance(found, type) and (top != "numpy" or found in (np.dtype, np.ndarray)
                                            or issubclass(found, np.generic)):
                return found
        raise pickle.UnpicklingError(f"a resume state may not name {module}.{name}")


def loads(data: bytes) -> Any:
    """Unpickle ``data`` allowing only the globals of a resume state (see the module notes).

    Raises:
        pickle.UnpicklingError: The data names anything else, or is not a pickle.
    """
    return _Unpickler(io.BytesIO(data)).load()
