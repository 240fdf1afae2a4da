"""The part of :class:`core.store.Store` for tracks, their sightings and their embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from core.store.database import Database, select_in
from core.store.records import (
    NewTrack,
    Sightings,
    StoredEmbeddings,
    TrackRecord,
    embeddings_from_rows,
    sightings_from_rows,
    split_by_track,
    track_from_row,
)
from core.store.tables import EmbeddingTable, RunTable, SightingTable, TrackTable

_TRACK_COLUMNS = [*TrackTable.__table__.columns, RunTable.video_id]
_SIGHTING_COLUMNS = [SightingTable.track_pk, TrackTable.track_id, SightingTable.frame,
                     SightingTable.time_s, SightingTable.x1, SightingTable.y1, SightingTable.x2,
                     SightingTable.y2, SightingTable.score]


def _tracks_query() -> Select[Any]:
    return select(*_TRACK_COLUMNS).join(RunTable, RunTable.id == TrackTable.run_id)


def _sightings_query() -> Select[Any]:
    return select(*_SIGHTING_COLUMNS).join(TrackTable, TrackTable.id == SightingTable.track_pk)


def _of_model(query: Select[Any], reid_sha256: str) -> Select[Any]:
    """``query`` on embeddings limited to the runs of one ReID model."""
    return (query.join(RunTable, RunTable.id == EmbeddingTable.run_id)
            .where(RunTable.reid_sha256 == reid_sha256))


def write_tracks(session: Session, run_id: int, embedding_dim: int, tracks: Sequence[NewTrack]) -> None:
    """Insert whole tracks of a run with three executemany statements (the caller holds the write lock).

    Track ids are given explicitly (``max(id) + 1 ...``), which is safe inside the
    ``BEGIN IMMEDIATE`` transaction, so sightings and embeddings can reference them
    without a round trip per track.

    Raises:
        ValueError: A track's vectors are not ``embedding_dim`` long (nothing is written).
    """
    if not tracks:
        return
    for t in tracks:
        if t.vectors.size and t.vectors.shape[1] != embedding_dim:
            raise ValueError(f"track {t.track_id}: vectors have D={t.vectors.shape[1]}, "
                             f"run expects {embedding_dim}")
    conn = session.connection()
    next_pk = int(conn.execute(select(func.coalesce(func.max(TrackTable.id), 0))).scalar()) + 1
    track_rows, sighting_rows, embedding_rows = [], [], []
    for pk, t in enumerate(tracks, start=next_pk):
        track_rows.append({"id": pk, "run_id": run_id, "track_id": int(t.track_id),
                           "first_frame": int(t.frames[0]), "last_frame": int(t.frames[-1]),
                           "first_s": float(t.times_s[0]), "last_s": float(t.times_s[-1]),
                           "n_sightings": len(t.frames)})
        sighting_rows += [
            {"track_pk": pk, "run_id": run_id, "frame": f, "time_s": ts, "x1": b[0], "y1": b[1],
             "x2": b[2], "y2": b[3], "score": sc}
            for f, ts, b, sc in zip(t.frames.tolist(), t.times_s.tolist(), t.boxes.tolist(),
                                    t.scores.tolist(), strict=True)]
        embedding_rows += [
            {"track_pk": pk, "run_id": run_id, "frame": f,
             "vector": np.ascontiguousarray(v, "<f4").tobytes(), "quality": q}
            for f, v, q in zip(t.emb_frames.tolist(), t.vectors, t.quality.tolist(), strict=True)]
    conn.execute(insert(TrackTable.__table__), track_rows)
    conn.execute(insert(SightingTable.__table__), sighting_rows)
    if embedding_rows:
        conn.execute(insert(EmbeddingTable.__table__), embedding_rows)


class TrackStore(Database):
    """Tracks, sightings and embeddings (written by :meth:`core.store.Store.checkpoint`)."""

    # -- tracks and sightings -----------------------------------------------------------------

    def tracks(self, run_id: int) -> list[TrackRecord]:
        """The run's tracks ordered by tracker id."""
        query = _tracks_query().where(TrackTable.run_id == int(run_id)).order_by(TrackTable.track_id)
        with self._session() as session:
            return [track_from_row(r) for r in session.execute(query)]

    def get_tracks(self, track_pks: Sequence[int] | np.ndarray) -> dict[int, TrackRecord]:
        """Tracks by database id (unknown ids are left out)."""
        with self._session() as session:
            rows = select_in(session, _tracks_query(), TrackTable.id, track_pks)
        return {r.id: track_from_row(r) for r in rows}

    def sightings(self, track_pk: int) -> Sightings:
        """All boxes of one track, by frame."""
        query = (_sightings_query().where(SightingTable.track_pk == int(track_pk))
                 .order_by(SightingTable.frame))
        with self._session() as session:
            return sightings_from_rows(session.execute(query).all())

    def sightings_of(self, track_pks: Sequence[int] | np.ndarray) -> dict[int, Sightings]:
        """Sightings of several tracks in one go.

        Args:
            track_pks: Track database ids (repeats allowed).

        Returns:
            ``{track_pk: its sightings by frame}``; tracks without sightings (unknown ids) are left out.
        """
        query = _sightings_query().order_by(SightingTable.track_pk, SightingTable.frame)
        with self._session() as session:
            rows = select_in(session, query, SightingTable.track_pk, track_pks)  # chunks in track_pk order
        return split_by_track(sightings_from_rows(rows))

    def sightings_in_frame(self, run_id: int, frame_lo: int, frame_hi: int | None = None) -> Sightings:
        """Every track's boxes in frames ``frame_lo..frame_hi`` (inclusive), by (frame, track id).

        Args:
            run_id: The run.
            frame_lo: First frame.
            frame_hi: Last frame (``None``: same as ``frame_lo``).
        """
        frame_hi = frame_lo if frame_hi is None else frame_hi
        query = (_sightings_query()
                 .where(SightingTable.run_id == int(run_id), SightingTable.frame >= int(frame_lo),
                        SightingTable.frame <= int(frame_hi))
                 .order_by(SightingTable.frame, TrackTable.track_id))
        with self._session() as session:
            return sightings_from_rows(session.execute(query).all())

    # -- embeddings ---------------------------------------------------------------------------

    def embedding_rows(self, run_ids: Sequence[int] | None = None, *, reid_sha256: str | None = None,
                       min_id: int | None = None, with_vectors: bool = True) -> StoredEmbeddings:
        """Embeddings ordered by id.

        Args:
            run_ids: Only these runs (``None``: all runs).
            reid_sha256: Only runs of this ReID model.
            min_id: Only ids greater than this.
            with_vectors: Load the vectors (else ``vectors`` is ``(M, 0)``).

        Returns:
            The embeddings; ``vectors`` is ``(M, D)`` float32.

        Raises:
            ValueError: The selected rows have different dimensions (mixed ReID models).
        """
        cols = [EmbeddingTable.id, EmbeddingTable.track_pk, EmbeddingTable.run_id, EmbeddingTable.frame,
                EmbeddingTable.quality]
        if with_vectors:
            cols.append(EmbeddingTable.vector)
        query = select(*cols).order_by(EmbeddingTable.id)
        if reid_sha256 is not None:
            query = _of_model(query, reid_sha256)
        if min_id is not None:
            query = query.where(EmbeddingTable.id > int(min_id))
        with self._session() as session:
            if run_ids is None:
                rows = session.execute(query).all()
            else:
                rows = sorted(select_in(session, query, EmbeddingTable.run_id, run_ids), key=lambda r: r.id)
        return embeddings_from_rows(rows, with_vectors=with_vectors)

    def embedding_ids(self, run_ids: Sequence[int]) -> np.ndarray:
        """``(M,)`` int64 sorted embedding ids of the runs (the FAISS ids)."""
        return self.embedding_rows(run_ids, with_vectors=False).ids

    def embedding_stats(self, reid_sha256: str) -> tuple[int, int]:
        """``(count, max id)`` of the embeddings of one ReID model (``(0, 0)`` when none)."""
        count_max = select(func.count(EmbeddingTable.id), func.coalesce(func.max(EmbeddingTable.id), 0))
        query = _of_model(count_max, reid_sha256)
        with self._session() as session:
            count, max_id = session.execute(query).one()
        return int(count), int(max_id)

    def embedding_counts(self, reid_sha256: str) -> dict[int, int]:
        """``{run_id: number of embeddings}`` of every run of one ReID model that has embeddings."""
        query = _of_model(select(EmbeddingTable.run_id, func.count(EmbeddingTable.id)),
                          reid_sha256).group_by(EmbeddingTable.run_id)
        with self._session() as session:
            return {int(r): int(n) for r, n in session.execute(query)}

    def track_embeddings(self, track_pks: Sequence[int] | np.ndarray) -> dict[int, StoredEmbeddings]:
        """``{track_pk: its embeddings by id}`` of the given tracks (tracks without any are left out)."""
        query = select(EmbeddingTable.id, EmbeddingTable.track_pk, EmbeddingTable.run_id,
                       EmbeddingTable.frame, EmbeddingTable.quality, EmbeddingTable.vector)
        with self._session() as session:
            rows = sorted(select_in(session, query, EmbeddingTable.track_pk, track_pks),
                          key=lambda r: (r.track_pk, r.id))
        emb = embeddings_from_rows(rows, with_vectors=True)
        if len(emb) == 0:
            return {}
        cuts = [0, *(np.flatnonzero(np.diff(emb.track_pks)) + 1).tolist(), len(emb)]
        return {int(emb.track_pks[a]): StoredEmbeddings(
            ids=emb.ids[a:b], track_pks=emb.track_pks[a:b], run_ids=emb.run_ids[a:b], frames=emb.frames[a:b],
            quality=emb.quality[a:b], vectors=emb.vectors[a:b])
            for a, b in zip(cuts[:-1], cuts[1:], strict=True)}

    def track_vectors(self, track_pks: Sequence[int] | np.ndarray) -> dict[int, np.ndarray]:
        """``{track_pk: (K, D) float32 read-only vectors}`` of the tracks (those without are left out)."""
        return {pk: e.vectors for pk, e in self.track_embeddings(track_pks).items()}

    def embedding_info(self, ids: Sequence[int] | np.ndarray) -> dict[int, tuple[int, int]]:
        """``{embedding id: (track_pk, frame)}`` for the given embedding ids (unknown ids are left out)."""
        query = select(EmbeddingTable.id, EmbeddingTable.track_pk, EmbeddingTable.frame)
        with self._session() as session:
            rows = select_in(session, query, EmbeddingTable.id, ids)
        return {int(r.id): (int(r.track_pk), int(r.frame)) for r in rows}
