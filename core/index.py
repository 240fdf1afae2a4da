"""FAISS search over the track embeddings of one ReID model.

The database is the truth; the FAISS file is a cache of it. One
:class:`EmbeddingIndex` covers every embedding made by one ReID model (vectors of
different models are not comparable, so they never share an index). FAISS ids are
the ``embeddings.id`` rows of :mod:`core.store`.

Kinds (:data:`INDEX_KINDS`):

* ``"flat"`` (default): exact inner product, ``IndexIDMap2(IndexFlatIP)``. On
  L2-normalised vectors the inner product is the cosine similarity. Fine up to a few
  million vectors (a search is a matrix product).
* ``"flat16"``: the same exhaustive inner-product search over vectors stored as
  float16 (``IndexScalarQuantizer`` ``QT_fp16``): half the memory and about half the
  time of ``flat`` on large libraries (memory bandwidth bound), with cosines within
  ~1e-3 of the exact ones (``scripts/benchmark.py`` prints both).
* ``"ivf"``: ``IndexIVFFlat`` with ``nlist ~ sqrt(n)`` inverted lists trained by
  k-means on the library, searched in ``nprobe`` lists: approximate, much faster for
  very large libraries. Below :data:`IVF_MIN_VECTORS` vectors it falls back to
  ``flat`` (too few points to train lists that help); with ``nprobe >= nlist`` it
  returns the exact results.

Persistence: ``<db>.<reid sha[:16]>.faiss`` next to the database (``.<kind>.faiss`` for
the other kinds), plus a JSON sidecar
``<that>.json`` holding the format version, ReID sha256, dim, kind, the embedding
``count`` and ``max_id`` the file was built from, and the file's size and sha256.
On open the sidecar is compared with the file (damaged or replaced file) and with
the database (``Store.embedding_stats``: embedding ids are never reused, so any
change of the set changes ``(count, max_id)``). A matching file is loaded; when
rows were only added since, just those are added; anything else (missing, stale,
corrupt, other model or kind) is rebuilt from the database, silently. Losing the
file loses nothing. A folder that cannot be written only means the index lives in
memory.

Restricting a search to some runs uses a FAISS ``IDSelectorBatch`` of the runs'
embedding ids passed as search parameters, so FAISS itself skips the others (exact
for ``flat``, and for ``ivf`` the top-k among the allowed vectors of the probed
lists); no over-fetching and re-filtering is needed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.fileio import sha256_file
from core.store import Store

INDEX_KINDS = ("flat", "flat16", "ivf")
"""Supported index kinds."""

IVF_MIN_VECTORS = 4096
"""Below this many vectors an ``ivf`` index is built ``flat`` (exact) instead."""

FORMAT_VERSION = 1
"""Version of the sidecar layout; another version means rebuild."""

IVF_RETRAIN_GROWTH = 4.0
"""An ``ivf`` index whose library grew this many times since training is rebuilt (retrained)."""


def index_path_for(db_path: str | Path, reid_sha256: str, kind: str = "flat") -> Path:
    """Where the FAISS file of ``reid_sha256`` (and ``kind``) for the database ``db_path`` lives.

    ``<db>.<sha[:16]>.faiss`` for ``flat``, ``<db>.<sha[:16]>.<kind>.faiss`` for the others.
    """
    db_path = Path(db_path)
    infix = "" if kind == "flat" else f".{kind}"
    return db_path.with_name(f"{db_path.name}.{reid_sha256[:16]}{infix}.faiss")


class EmbeddingIndex:
    """Nearest-neighbour search over all embeddings of one ReID model in a store.

    Args:
        store: The library.
        reid_sha256: The ReID model whose embeddings to index.
        dim: Embedding dimension D (checked against the stored vectors).
        kind: ``"flat"`` (exact), ``"flat16"`` (exhaustive over float16 vectors) or ``"ivf"``
            (approximate, for very large libraries).
        nprobe: Lists searched by an ``ivf`` index.
        path: FAISS file (default :func:`index_path_for` the store's database).

    Raises:
        KeyError: Unknown ``kind`` (the message lists the valid ones).
    """

    def __init__(self, store: Store, reid_sha256: str, dim: int, *, kind: str = "flat", nprobe: int = 16,
                 path: str | Path | None = None) -> None:
        if kind not in INDEX_KINDS:
            raise KeyError(f"unknown index kind {kind!r}; valid kinds: {', '.join(INDEX_KINDS)}")
        self.store = store
        self.reid_sha256 = reid_sha256
        self.dim = int(dim)
        self.kind = kind
        self.nprobe = max(1, int(nprobe))
        self.path = Path(path) if path is not None else index_path_for(store.path, reid_sha256, kind)
        self.sidecar_path = self.path.with_name(self.path.name + ".json")
        self._lock = threading.RLock()
        self._index: Any = None
        self._meta: dict[str, Any] = {}
        self.last_action = "none"
        """What the last :meth:`refresh` did: ``loaded``, ``current``, ``updated`` or ``rebuilt: <why>``."""

    # -- state ---------------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        """Vectors in the index (after the last refresh)."""
        return int(self._index.ntotal) if self._index is not None else 0

    @property
    def built_kind(self) -> str:
        """The kind really built (``flat`` when an ``ivf`` library is still small)."""
        return str(self._meta.get("built_kind", self.kind))

    def refresh(self) -> str:
        """Bring the index in line with the database (load, add new rows, or rebuild).

        Returns:
            What was done (also in :attr:`last_action`).
        """
        with self._lock:
            count, max_id = self.store.embedding_stats(self.reid_sha256)
            if self._index is None:
                why = self._load()
                if why:
                    return self._rebuild(f"rebuilt: {why}")
                action = "loaded"
            else:
                action = "current"
            if (self._meta["count"], self._meta["max_id"]) == (count, max_id):
                self.last_action = action
                return action
            return self._update(count, max_id)

    def _load(self) -> str:
        """Load the file if it matches its sidecar; return why not ('' when loaded)."""
        try:
            meta = json.loads(self.sidecar_path.read_text())
        except FileNotFoundError:
            return "no index file"
        except (OSError, ValueError) as err:
            return f"unreadable sidecar ({err})"
        if not isinstance(meta, dict):
            return "unreadable sidecar"
        expected = {"format": FORMAT_VERSION, "reid_sha256": self.reid_sha256, "dim": self.dim,
                    "kind": self.kind}
        for key, value in expected.items():
            if meta.get(key) != value:
                return f"sidecar {key} is {meta.get(key)!r}, expected {value!r}"
        try:
            size = self.path.stat().st_size
            if size != meta.get("file_bytes") or sha256_file(self.path) != meta.get("file_sha256"):
                return "index file does not match its sidecar (damaged or replaced)"
            index = faiss.read_index(str(self.path))
        except (OSError, RuntimeError) as err:
            return f"unreadable index file ({str(err).splitlines()[0] if str(err) else err})"
        if index.ntotal != meta.get("count") or index.d != self.dim:
            return "index file does not match its sidecar"
        self._index, self._meta = index, meta
        return ""

    def _new_index(self, vectors: np.ndarray) -> tuple[Any, dict[str, Any]]:
        n = len(vectors)
        if self.kind == "ivf" and n >= IVF_MIN_VECTORS:
            nlist = max(1, min(int(round(math.sqrt(n))), n // 39))
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = self.nprobe
            return index, {"built_kind": "ivf", "nlist": nlist, "trained_on": n}
        if self.kind == "flat16":
            sq = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16,
                                            faiss.METRIC_INNER_PRODUCT)
            return faiss.IndexIDMap2(sq), {"built_kind": "flat16"}
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim)), {"built_kind": "flat"}

    def _rebuild(self, why: str) -> str:
        rows = self.store.embedding_rows(reid_sha256=self.reid_sha256)
        vectors = self._checked(rows.vectors)
        index, extra = self._new_index(vectors)
        if len(rows):
            index.add_with_ids(vectors, rows.ids)
        max_id = int(rows.ids.max()) if len(rows) else 0
        self._index = index
        self._meta = {"format": FORMAT_VERSION, "reid_sha256": self.reid_sha256, "dim": self.dim,
                      "kind": self.kind, "count": len(rows), "max_id": max_id, **extra}
        self._save()
        self.last_action = why
        return why

    def _update(self, count: int, max_id: int) -> str:
        new = self.store.embedding_rows(reid_sha256=self.reid_sha256, min_id=self._meta["max_id"])
        if count - len(new) != self._meta["count"]:
            return self._rebuild("rebuilt: embeddings were removed")
        if self.built_kind == "ivf" and count > IVF_RETRAIN_GROWTH * self._meta["trained_on"]:
            return self._rebuild("rebuilt: library grew, lists retrained")
        if self.kind == "ivf" and self.built_kind == "flat" and count >= IVF_MIN_VECTORS:
            return self._rebuild("rebuilt: library large enough for ivf")
        if len(new):
            self._index.add_with_ids(self._checked(new.vectors), new.ids)
        self._meta.update(count=count, max_id=max_id)
        self._save()
        self.last_action = "updated"
        return "updated"

    def _checked(self, vectors: np.ndarray) -> np.ndarray:
        if len(vectors) and vectors.shape[1] != self.dim:
            raise ValueError(f"stored embeddings of {self.reid_sha256[:12]} have D={vectors.shape[1]}, "
                             f"index expects {self.dim}")
        return np.ascontiguousarray(vectors.reshape(-1, self.dim), np.float32)

    def _save(self) -> None:
        """Write the file then its sidecar, each atomically; a read-only folder is not an error."""
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        try:
            faiss.write_index(self._index, str(tmp))
            os.replace(tmp, self.path)
            meta = dict(self._meta, file_bytes=self.path.stat().st_size, file_sha256=sha256_file(self.path))
            tmp.write_text(json.dumps(meta, indent=1))
            os.replace(tmp, self.sidecar_path)
            self._meta = meta
        except (OSError, RuntimeError):
            with contextlib.suppress(OSError):  # a read-only drive refuses even the unlink (EROFS)
                tmp.unlink(missing_ok=True)

    # -- search --------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, *, run_ids: Sequence[int] | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:
        """Find the ``k`` most similar embeddings of each query.

        Args:
            queries: ``(Q, D)`` float32 query vectors (L2-normalised here again).
            k: Neighbours per query.
            run_ids: Only embeddings of these runs (``None``: all runs of the model).

        Returns:
            ``(scores (Q, k) float32, ids (Q, k) int64)``, best first per row. ``scores`` are
            cosine similarities in ``[-1, 1]``; ``ids`` are ``embeddings.id`` rows. Where fewer
            than ``k`` vectors qualify, the row is padded with id ``-1`` and score ``-inf``.
        """
        q = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        q = q / np.maximum(norms, 1e-12)
        k = max(1, int(k))
        with self._lock:
            self.refresh()
            params = None
            if run_ids is not None:
                allowed = self.store.embedding_ids(run_ids)
                if len(allowed) == 0:
                    return self._empty(len(q), k)
                sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, np.int64))
                if self.built_kind == "ivf":
                    params = faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe)
                else:
                    params = faiss.SearchParameters(sel=sel)
            elif self.built_kind == "ivf":
                params = faiss.SearchParametersIVF(nprobe=self.nprobe)
            if self.ntotal == 0 or len(q) == 0:
                return self._empty(len(q), k)
            scores, ids = self._index.search(q, k, params=params)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        return scores, ids.astype(np.int64)

    @staticmethod
    def _empty(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
