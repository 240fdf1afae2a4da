"""The part of :class:`core.store.Store` for saved searches, their hits and the user's marks on them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from core.errors import StoreError
from core.store.database import Database, select_in
from core.store.migrations import now
from core.store.records import (
    QueryRecord,
    QuerySummary,
    hit_from_row,
    hit_track_pks,
    hit_values,
    photo_file,
    query_summary_from_row,
    vector_bytes,
    vector_from_bytes,
)
from core.store.tables import (
    MARKS,
    HitTable,
    MarkTable,
    PhotoTable,
    QueryTable,
    RunTable,
    TrackTable,
    VideoTable,
)
from core.types import Hit

HitRows = Sequence[tuple[int | Sequence[int], Hit]]
"""Hits to store: ``(track_pk, hit)`` or ``((best track_pk, other track_pks ...), hit)`` pairs."""


def _insert_hits(session: Session, query_id: int, hits: HitRows) -> None:
    if hits:
        session.execute(insert(HitTable), [hit_values(query_id, pks, h) for pks, h in hits])


def hit_mark(track_pks: Sequence[int], marks: Mapping[int, str]) -> str:
    """The mark of a hit made of these tracks.

    ``"confirmed"`` when one of them is, else ``"rejected"`` when one of them is, else ``""``.
    """
    found = {marks.get(int(pk), "") for pk in track_pks}
    return next((m for m in MARKS if m in found), "")


def mark_rank(mark: str) -> int:
    """Where a hit with this mark goes in a result: confirmed first (0), unmarked (1), rejected last (2)."""
    return {"confirmed": 0, "": 1}.get(mark, 2)


class QueryStore(Database):
    """Saved searches (queries), their hits and marks."""

    def save_query(self, *, photos: Sequence[str], video_ids: Sequence[int], threshold: float,
                   reid_sha256: str, hits: HitRows, notes: Sequence[str] = (),
                   vector: np.ndarray | None = None, like_tracks: Sequence[int] = ()) -> int:
        """Store a search and its hits.

        Args:
            photos: Photo paths (or labels such as ``"<array 0>"``).
            video_ids: Videos searched.
            threshold: Threshold asked for.
            reid_sha256: ReID model that embedded the photos.
            hits: ``(track_pk or track_pks, hit)`` pairs, best first (see :data:`HitRows`).
            notes: Notes to keep with the search.
            vector: ``(D,)`` query vector (kept so the search can be re-ranked later).
            like_tracks: The tracks whose embeddings made the query ("find similar").

        Returns:
            The new query id.
        """
        with self._session(write=True) as session:
            q = QueryTable(created=now(), photos=json.dumps([str(p) for p in photos]),
                           video_ids=json.dumps([int(v) for v in video_ids]), threshold=float(threshold),
                           reid_sha256=reid_sha256, notes=json.dumps([str(n) for n in notes]),
                           vector=vector_bytes(vector), like_tracks=json.dumps([int(t) for t in like_tracks]))
            session.add(q)
            session.flush()
            _insert_hits(session, q.id, hits)
            return q.id

    def replace_hits(self, query_id: int, hits: HitRows, *, threshold: float | None = None) -> None:
        """Replace a saved search's hits (a re-ranking), and its threshold when given, in one transaction.

        Raises:
            StoreError: No such query.
        """
        with self._session(write=True) as session:
            q = session.get(QueryTable, int(query_id))
            if q is None:
                raise StoreError(f"query {query_id} is not in the library {self.path}.")
            if threshold is not None:
                q.threshold = float(threshold)
            session.execute(delete(HitTable).where(HitTable.query_id == q.id))
            _insert_hits(session, q.id, hits)

    def set_marks(self, query_id: int, marks: Mapping[int, str | None]) -> None:
        """Set (``"confirmed"`` / ``"rejected"``) or clear (``None`` / ``""``) marks of tracks for a query.

        Raises:
            StoreError: No such query.
            ValueError: An unknown mark.
        """
        for mark in marks.values():
            if mark and mark not in MARKS:
                raise ValueError(f"mark must be one of {MARKS}, got {mark!r}")
        with self._session(write=True) as session:
            if session.get(QueryTable, int(query_id)) is None:
                raise StoreError(f"query {query_id} is not in the library {self.path}.")
            pks = [int(pk) for pk in marks]
            if pks:
                session.execute(delete(MarkTable).where(MarkTable.query_id == int(query_id),
                                                  MarkTable.track_pk.in_(pks)))
            rows = [{"query_id": int(query_id), "track_pk": int(pk), "mark": m, "created": now()}
                    for pk, m in marks.items() if m]
            if rows:
                session.execute(insert(MarkTable), rows)

    def marks(self, query_id: int) -> dict[int, str]:
        """``{track_pk: mark}`` of a query."""
        with self._session() as session:
            return {int(pk): m for pk, m in session.execute(
                select(MarkTable.track_pk, MarkTable.mark).where(MarkTable.query_id == int(query_id)))}

    def load_query(self, query_id: int) -> QueryRecord:
        """A saved search with its hits (confirmed first, then best score first, rejected last) and marks.

        Raises:
            StoreError: No such query.
        """
        with self._session() as session:
            q = session.get(QueryTable, int(query_id))
            if q is None:
                raise StoreError(f"query {query_id} is not in the library {self.path}.")
            rows = session.execute(
                select(HitTable, TrackTable.track_id, VideoTable.id, VideoTable.path, PhotoTable.path,
                       PhotoTable.taken)
                .join(TrackTable, TrackTable.id == HitTable.track_pk)
                .join(RunTable, RunTable.id == TrackTable.run_id)
                .join(VideoTable, VideoTable.id == RunTable.video_id)
                .outerjoin(PhotoTable, (PhotoTable.video_id == VideoTable.id)
                           & (PhotoTable.frame == HitTable.best_frame) & (VideoTable.kind == "photos"))
                .where(HitTable.query_id == q.id).order_by(HitTable.id)).all()
            all_pks = [hit_track_pks(r[0]) for r in rows]
            members = {int(r.id): (int(r.track_id), int(r.first_frame)) for r in select_in(
                session, select(TrackTable.id, TrackTable.track_id, TrackTable.first_frame), TrackTable.id,
                [pk for pks in all_pks for pk in pks])}
            marks = {int(pk): m for pk, m in session.execute(
                select(MarkTable.track_pk, MarkTable.mark).where(MarkTable.query_id == q.id))}
            found = []
            for (h, track_id, video_id, video_path, photo, taken), pks in zip(rows, all_pks, strict=True):
                known = sorted((members[pk][1], members[pk][0]) for pk in pks if pk in members)
                hit = hit_from_row(h, video_id=video_id, video_path=video_path, track_id=track_id,
                                   track_ids=[tid for _, tid in known], mark=hit_mark(pks, marks),
                                   photo_path="" if photo is None else photo_file(video_path, photo),
                                   photo_taken=taken or "")
                found.append((mark_rank(hit.mark), -hit.score, h.id, hit, pks))
            found.sort(key=lambda x: x[:3])
            return QueryRecord(summary=query_summary_from_row(q, len(rows)), hits=tuple(x[3] for x in found),
                               track_pks=tuple(x[4][0] for x in found), hit_tracks=tuple(x[4] for x in found),
                               vector=vector_from_bytes(q.vector), marks=marks)

    def list_queries(self, video_id: int | None = None) -> list[QuerySummary]:
        """Saved searches, newest first, optionally only those that searched ``video_id``."""
        counts = (select(HitTable.query_id, func.count(HitTable.id).label("n"))
                  .group_by(HitTable.query_id).subquery())
        query = (select(QueryTable, func.coalesce(counts.c.n, 0))
                 .outerjoin(counts, counts.c.query_id == QueryTable.id).order_by(QueryTable.id.desc()))
        with self._session() as session:
            out = [query_summary_from_row(q, n) for q, n in session.execute(query)]
        if video_id is not None:
            out = [q for q in out if int(video_id) in q.video_ids]
        return out

    def delete_query(self, query_id: int) -> None:
        """Remove a saved search, its hits and marks."""
        with self._session(write=True) as session:
            session.execute(delete(QueryTable).where(QueryTable.id == int(query_id)))
