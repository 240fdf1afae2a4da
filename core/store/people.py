"""The part of :class:`core.store.Store` for people: the tracks of a run linked together (core.linking)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from core.store.database import Database, select_in
from core.store.migrations import now
from core.store.records import LinkingRecord, Sightings, sightings_from_rows
from core.store.tables import LinkingTable, SightingTable, TrackPersonTable, TrackTable


class PeopleStore(Database):
    """Which tracks of a run are one person, and when each run was linked."""

    def sightings_near_ends(self, run_id: int, frames: int) -> Sightings:
        """The sightings of every track of a run within ``frames`` frames of the track's first or last one.

        Returns:
            Sightings sorted by track database id, then frame (``split_by_track`` splits them).
        """
        near = ((SightingTable.frame <= TrackTable.first_frame + int(frames))
                | (SightingTable.frame >= TrackTable.last_frame - int(frames)))
        query = (select(SightingTable.track_pk, TrackTable.track_id, SightingTable.frame,
                        SightingTable.time_s, SightingTable.x1, SightingTable.y1, SightingTable.x2,
                        SightingTable.y2, SightingTable.score)
                 .join(TrackTable, TrackTable.id == SightingTable.track_pk)
                 .where(TrackTable.run_id == int(run_id), near)
                 .order_by(SightingTable.track_pk, SightingTable.frame))
        with self._session() as session:
            return sightings_from_rows(session.execute(query).all())

    def save_people(self, run_id: int, people: Mapping[int, int], *, settings: Mapping[str, Any],
                    elapsed_s: float) -> LinkingRecord:
        """Store a run's people, replacing an earlier linking of it, in one transaction.

        Args:
            run_id: The run.
            people: ``{track_pk: person}`` for every track of the run (``person``: the smallest
                tracker id of the person's tracks).
            settings: The linking settings used (stored as JSON).
            elapsed_s: Seconds the linking took.

        Returns:
            The linking's record.
        """
        record = LinkingRecord(run_id=int(run_id), created=now(), settings_json=json.dumps(dict(settings),
                                                                                          sort_keys=True),
                               people=len(set(people.values())), elapsed_s=float(elapsed_s))
        with self._session(write=True) as session:
            session.execute(delete(TrackPersonTable).where(TrackPersonTable.run_id == record.run_id))
            session.execute(delete(LinkingTable).where(LinkingTable.run_id == record.run_id))
            if people:
                rows = [{"track_pk": int(pk), "run_id": record.run_id, "person": int(p)}
                        for pk, p in people.items()]
                session.execute(insert(TrackPersonTable), rows)
            session.add(LinkingTable(run_id=record.run_id, created=record.created,
                                     settings=record.settings_json, people=record.people,
                                     elapsed_s=record.elapsed_s))
        return record

    def linkings(self, run_ids: Sequence[int] | None = None) -> dict[int, LinkingRecord]:
        """``{run_id: its linking}`` of the linked runs among ``run_ids`` (``None``: all runs)."""
        query = select(*LinkingTable.__table__.columns)
        with self._session() as session:
            rows = (session.execute(query).all() if run_ids is None
                    else select_in(session, query, LinkingTable.run_id, run_ids))
        return {r.run_id: LinkingRecord(run_id=r.run_id, created=r.created, settings_json=r.settings,
                                        people=r.people, elapsed_s=r.elapsed_s) for r in rows}

    def people_of(self, track_pks: Sequence[int]) -> dict[int, tuple[int, int]]:
        """``{track_pk: (run_id, person)}`` of the given tracks that belong to a linked run."""
        query = select(TrackPersonTable.track_pk, TrackPersonTable.run_id, TrackPersonTable.person)
        with self._session() as session:
            rows = select_in(session, query, TrackPersonTable.track_pk, track_pks)
        return {int(r.track_pk): (int(r.run_id), int(r.person)) for r in rows}

    def run_people(self, run_id: int) -> dict[int, list[int]]:
        """``{person: [track_pk, ...]}`` of a linked run (``{}`` when it is not linked)."""
        query = (select(TrackPersonTable.person, TrackPersonTable.track_pk)
                 .where(TrackPersonTable.run_id == int(run_id)).order_by(TrackPersonTable.track_pk))
        out: dict[int, list[int]] = {}
        with self._session() as session:
            for person, pk in session.execute(query):
                out.setdefault(int(person), []).append(int(pk))
        return out

    def person_tracks(self, people: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
        """``{(run_id, person): [track_pk, ...]}`` of the given people."""
        out: dict[tuple[int, int], list[int]] = {}
        by_run: dict[int, set[int]] = {}
        for run_id, person in people:
            by_run.setdefault(int(run_id), set()).add(int(person))
        with self._session() as session:
            for run_id, persons in by_run.items():
                query = (select(TrackPersonTable.person, TrackPersonTable.track_pk)
                         .where(TrackPersonTable.run_id == run_id).order_by(TrackPersonTable.track_pk))
                for r in select_in(session, query, TrackPersonTable.person, sorted(persons)):
                    out.setdefault((run_id, int(r.person)), []).append(int(r.track_pk))
        return out
