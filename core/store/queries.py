"""The part of :class:`core.store.Store` for saved searches and their hits."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select

from core.errors import StoreError
from core.store.database import Database
from core.store.migrations import now
from core.store.records import QueryRecord, QuerySummary, hit_from_row, hit_values, query_summary_from_row
from core.store.tables import HitTable, QueryTable, RunTable, TrackTable, VideoTable
from core.types import Hit


class QueryStore(Database):
    """Saved searches (queries) and their hits."""

    def save_query(self, *, photos: Sequence[str], video_ids: Sequence[int], threshold: float,
                   reid_sha256: str, hits: Sequence[tuple[int, Hit]], notes: Sequence[str] = ()) -> int:
        """Store a search and its hits.

        Args:
            photos: Photo paths (or labels such as ``"<array 0>"``).
            video_ids: Videos searched.
            threshold: Threshold asked for.
            reid_sha256: ReID model that embedded the photos.
            hits: ``(track_pk, hit)`` pairs.
            notes: Notes to keep with the search.

        Returns:
            The new query id.
        """
        with self._session(write=True) as session:
            q = QueryTable(created=now(), photos=json.dumps([str(p) for p in photos]),
                           video_ids=json.dumps([int(v) for v in video_ids]), threshold=float(threshold),
                           reid_sha256=reid_sha256, notes=json.dumps([str(n) for n in notes]))
            session.add(q)
            session.flush()
            if hits:
                session.execute(insert(HitTable), [hit_values(q.id, pk, h) for pk, h in hits])
            return q.id

    def load_query(self, query_id: int) -> QueryRecord:
        """A saved search with its hits, best first.

        Raises:
            StoreError: No such query.
        """
        with self._session() as session:
            q = session.get(QueryTable, int(query_id))
            if q is None:
                raise StoreError(f"query {query_id} is not in the library {self.path}.")
            rows = session.execute(
                select(HitTable, TrackTable.track_id, VideoTable.id, VideoTable.path)
                .join(TrackTable, TrackTable.id == HitTable.track_pk)
                .join(RunTable, RunTable.id == TrackTable.run_id)
                .join(VideoTable, VideoTable.id == RunTable.video_id)
                .where(HitTable.query_id == q.id).order_by(HitTable.score.desc(), HitTable.id)).all()
            hits = tuple(hit_from_row(h, video_id=video_id, video_path=video_path, track_id=track_id)
                         for h, track_id, video_id, video_path in rows)
            return QueryRecord(summary=query_summary_from_row(q, len(rows)), hits=hits,
                               track_pks=tuple(r[0].track_pk for r in rows))

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
        """Remove a saved search and its hits."""
        with self._session(write=True) as session:
            session.execute(delete(QueryTable).where(QueryTable.id == int(query_id)))
