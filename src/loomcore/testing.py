"""The store contract: tests every :class:`loomcore.Store` must pass.

Subclass :class:`StoreContract` in your own test suite and implement
``make_store()`` to return a fresh, empty store; pytest collects the
subclass (its name must start with ``Test``) and runs every test below
against your store::

    from loomcore import MemoryStore
    from loomcore.testing import StoreContract

    class TestMemoryStore(StoreContract):
        def make_store(self):
            return MemoryStore()

This module imports pytest; ``import loomcore`` never imports it.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest

from . import (
    AlreadyRetractedError,
    AuditEntry,
    BillingLine,
    Cancellation,
    DayPlan,
    DuplicateIdError,
    Enrolment,
    Instance,
    Organisation,
    Participant,
    PlanInputs,
    PlannedDay,
    Program,
    ProgramChange,
    Reschedule,
    Retraction,
    RollEntry,
    Store,
    UnknownRecordError,
    Venue,
    Weekly,
    plan_day,
    shipped_catalogue,
)

__all__ = ["StoreContract", "sample_organisation"]

_AT = datetime(2026, 9, 1, tzinfo=UTC)
_CATALOGUE = shipped_catalogue()


def sample_organisation() -> Organisation:
    """A small organisation for store tests: one venue, three people, two programs."""
    return Organisation(
        name="Contract test provider",
        registration_number="4050000123",
        abn="51824753556",
        venues=[Venue(id="hall", name="Hall", capacity=2)],
        participants=[
            Participant(id="ann", name="Ann", ndis_number="430000001", needs_transport=True),
            Participant(id="bob", name="Bob", ndis_number="430000002", wheelchair=True),
            Participant(id="cat", name="Cat", ndis_number="430000003"),
        ],
        programs=[
            Program(
                id="wed",
                name="Wednesday group",
                recurrence=Weekly(weekdays=["WE"]),
                start_time=time(9),
                end_time=time(15),
                venue_id="hall",
                transport=True,
                active_from=date(2026, 1, 1),
            ),
            Program(
                id="sat",
                name="Saturday outing",
                recurrence=Weekly(weekdays=["SA"]),
                start_time=time(10),
                end_time=time(16),
                venue_id="hall",
                active_from=date(2026, 1, 1),
            ),
        ],
    )


def _enrol(id: str, who: str, start: date, end: date | None = None, minutes: int = 0) -> Enrolment:
    return Enrolment(
        id=id,
        program_id="wed",
        participant_id=who,
        start=start,
        end=end,
        recorded_at=_AT + timedelta(minutes=minutes),
        recorded_by="tester",
    )


def _plan(day: date, store: Store) -> PlannedDay:
    records = store.load_records(day, day)
    inputs = PlanInputs(
        organisation=store.organisation(),
        catalogue=_CATALOGUE,
        intents=records.intents,
        one_offs=records.one_offs,
    )
    return PlannedDay(plan=plan_day(inputs, day), revision=store.revision(), planned_at=_AT)


class StoreContract:
    """The tests every store passes. Subclass and implement :meth:`make_store`."""

    def make_store(self) -> Store:
        """Return a new, empty store."""
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> Store:
        return self.make_store()

    # ------------------------------------------------------------ a new store

    def test_new_store_is_empty(self, store: Store) -> None:
        assert store.revision() == 0
        assert store.organisation() == Organisation()
        assert store.records() == ()
        assert store.retractions() == ()
        assert store.changes_since(0) == ()
        assert store.window_weeks() is None
        assert store.planned_days() == ()
        assert store.audit_log() == ()
        assert store.roll_log() == ()

    # ------------------------------------------------------------ organisation

    def test_organisation_round_trips_and_counts_as_a_change(self, store: Store) -> None:
        org = sample_organisation()
        assert store.set_organisation(org) == 1
        assert store.organisation() == org
        (change,) = store.changes_since(0)
        assert (change.revision, change.kind, change.record) == (1, "organisation", None)

    # ------------------------------------------------------------ records

    def test_records_get_increasing_revisions_and_come_back_equal(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        a = _enrol("a", "ann", date(2026, 10, 7))
        b = ProgramChange(
            id="b",
            program_id="wed",
            start=date(2026, 10, 14),
            end=date(2026, 10, 14),
            start_time=time(10),
            recorded_at=_AT,
        )
        assert store.add_record(a) == 2
        assert store.add_record(b) == 3
        assert store.revision() == 3
        assert store.get_record("a") == a
        assert store.get_record("b") == b
        assert store.records() == (a, b)
        assert [(c.revision, c.kind, c.record) for c in store.changes_since(1)] == [
            (2, "record", a),
            (3, "record", b),
        ]
        assert store.changes_since(3) == ()

    def test_duplicate_record_id_is_refused_and_changes_nothing(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        store.add_record(_enrol("a", "ann", date(2026, 10, 7)))
        with pytest.raises(DuplicateIdError) as info:
            store.add_record(_enrol("a", "bob", date(2026, 10, 7)))
        assert info.value.id == "a"
        assert store.revision() == 2
        assert store.get_record("a").participant_id == "ann"  # type: ignore[union-attr]

    def test_unknown_record_is_a_lookup_error(self, store: Store) -> None:
        with pytest.raises(UnknownRecordError) as info:
            store.get_record("nope")
        assert isinstance(info.value, LookupError)
        assert info.value.id == "nope"

    # ------------------------------------------------------------ retractions

    def test_retraction_keeps_the_record(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        a = _enrol("a", "ann", date(2026, 10, 7))
        store.add_record(a)
        r = Retraction(id="r1", target_id="a", recorded_at=_AT, recorded_by="tester", reason="typo")
        assert store.add_retraction(r) == 3
        assert store.get_record("a") == a
        assert store.records() == (a,)
        assert store.retractions() == (r,)
        (change,) = store.changes_since(2)
        assert (change.kind, change.record) == ("retraction", a)
        assert store.load_records(date(2026, 10, 1), date(2026, 10, 31)).intents == ()

    @pytest.mark.parametrize(
        ("target", "retraction_id", "error"),
        [
            ("nope", "r2", UnknownRecordError),
            ("a", "r2", AlreadyRetractedError),
            ("b", "r1", DuplicateIdError),
            ("b", "a", DuplicateIdError),
        ],
    )
    def test_bad_retractions_are_refused_and_change_nothing(
        self, store: Store, target: str, retraction_id: str, error: type[Exception]
    ) -> None:
        store.set_organisation(sample_organisation())
        store.add_record(_enrol("a", "ann", date(2026, 10, 7)))
        store.add_record(_enrol("b", "bob", date(2026, 10, 7)))
        store.add_retraction(Retraction(id="r1", target_id="a", recorded_at=_AT))
        revision, retractions = store.revision(), store.retractions()
        with pytest.raises(error):
            store.add_retraction(Retraction(id=retraction_id, target_id=target, recorded_at=_AT))
        assert store.revision() == revision
        assert store.retractions() == retractions

    def test_record_id_cannot_reuse_a_retraction_id(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        store.add_record(_enrol("a", "ann", date(2026, 10, 7)))
        store.add_retraction(Retraction(id="r1", target_id="a", recorded_at=_AT))
        with pytest.raises(DuplicateIdError):
            store.add_record(_enrol("r1", "bob", date(2026, 10, 7)))

    # ------------------------------------------------------------ loading records

    def test_load_records_returns_what_can_shape_the_range(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        inside = _enrol("inside", "ann", date(2026, 10, 7), date(2026, 10, 21))
        open_ended = _enrol("open", "bob", date(2020, 1, 1))
        covering_move_origin = _enrol("origin", "cat", date(2026, 11, 4), date(2026, 11, 4))
        one_off = Cancellation(id="c", program_id="wed", date=date(2026, 10, 14), recorded_at=_AT)
        move = Reschedule(
            id="m",
            program_id="wed",
            date=date(2026, 11, 4),
            to_date=date(2026, 10, 16),
            recorded_at=_AT,
        )
        later_move = Reschedule(
            id="m2",
            program_id="wed",
            date=date(2026, 11, 4),
            to_date=date(2026, 11, 6),
            recorded_at=_AT + timedelta(minutes=1),
        )
        for r in (inside, open_ended, covering_move_origin, one_off, move, later_move):
            store.add_record(r)
        loaded = store.load_records(date(2026, 10, 10), date(2026, 10, 20))
        assert {inside, open_ended, covering_move_origin} <= set(loaded.intents)
        # the later move of 4 Nov wins, so planning 16 Oct must see it too
        assert {one_off, move, later_move} <= set(loaded.one_offs)

    def test_load_records_leaves_out_retracted_records(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        store.add_record(_enrol("a", "ann", date(2026, 10, 7)))
        store.add_record(
            Cancellation(id="c", program_id="wed", date=date(2026, 10, 14), recorded_at=_AT)
        )
        store.add_retraction(Retraction(id="r1", target_id="a", recorded_at=_AT))
        store.add_retraction(Retraction(id="r2", target_id="c", recorded_at=_AT))
        loaded = store.load_records(date.min, date.max)
        assert (loaded.intents, loaded.one_offs) == ((), ())

    # ------------------------------------------------------------ planned days

    def test_planned_days_round_trip_exactly(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        store.add_record(_enrol("a", "ann", date(2026, 10, 1)))
        store.add_record(_enrol("b", "bob", date(2026, 10, 1)))
        store.add_record(_enrol("c", "cat", date(2026, 10, 1)))
        day = date(2026, 10, 7)
        planned = _plan(day, store)
        assert planned.plan.instances, "the sample must plan something"
        store.put_day(planned)
        back = store.get_day(day)
        assert back == planned
        assert back is not None
        inst = back.plan.instances[0]
        assert inst.start.utcoffset() == timedelta(hours=11)
        assert inst.start.astimezone(ZoneInfo("Australia/Sydney")).time() == time(9)

    def test_put_day_replaces_the_whole_day(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        store.add_record(_enrol("a", "ann", date(2026, 10, 1)))
        day = date(2026, 10, 7)
        store.put_day(_plan(day, store))
        empty = PlannedDay(plan=DayPlan(date=day), revision=store.revision(), planned_at=_AT)
        store.put_day(empty)
        assert store.get_day(day) == empty
        assert store.planned_days() == (empty,)

    def test_put_day_of_a_day_partly_changed_reads_back_the_new_plan(self, store: Store) -> None:
        day = date(2026, 10, 7)
        first = self._billed_day(store, day).plan.instances[0]
        second = attrs.evolve(first, id=f"{first.id}-b", program_id=f"{first.program_id}-b")
        changed = attrs.evolve(
            first, billing_lines=first.billing_lines[:1], cancellation_reason="x"
        )
        for n, instances in enumerate(
            [
                (first, second),
                (second, first),  # the same instances, the other way round
                (second, changed),  # one of them changed
                (changed,),  # the other gone
                (changed, second),  # back again
            ]
        ):
            planned = PlannedDay(
                plan=DayPlan(date=day, instances=instances), revision=n + 1, planned_at=_AT
            )
            assert store.put_day(planned) is True
            assert store.get_day(day) == planned
            lines = tuple(line for inst in instances for line in inst.billing_lines)
            assert store.ledger(day, day)[0].lines == lines

    def test_put_day_never_replaces_a_later_revision(self, store: Store) -> None:
        day = date(2026, 10, 7)
        newer = PlannedDay(plan=DayPlan(date=day), revision=5, planned_at=_AT)
        older = PlannedDay(plan=DayPlan(date=day), revision=4, planned_at=_AT + timedelta(hours=1))
        same = PlannedDay(plan=DayPlan(date=day), revision=5, planned_at=_AT + timedelta(hours=2))
        assert store.put_day(newer) is True
        assert store.put_day(older) is False
        assert store.get_day(day) == newer
        assert store.put_day(same) is True
        assert store.get_day(day) == same

    def test_put_days_writes_each_day_as_put_day_would(self, store: Store) -> None:
        wednesdays = [date(2026, 10, 7) + timedelta(weeks=n) for n in range(4)]
        first = self._billed_day(store, wednesdays[0]).plan.instances[0]
        changed = attrs.evolve(first, billing_lines=first.billing_lines[:1])
        other = attrs.evolve(first, id=f"{first.id}-b", program_id=f"{first.program_id}-b")

        def planned(day: date, revision: int, *instances: Instance) -> PlannedDay:
            moved = tuple(attrs.evolve(i, date=day) for i in instances)
            return PlannedDay(
                plan=DayPlan(date=day, instances=moved), revision=revision, planned_at=_AT
            )

        def lines(*days: PlannedDay) -> list[tuple[BillingLine, ...]]:
            return [tuple(x for i in d.plan.instances for x in i.billing_lines) for d in days]

        exported, newer = planned(wednesdays[3], 1, first), planned(wednesdays[2], 9, first)
        given = [planned(wednesdays[0], 1, first), newer, exported]
        assert store.put_days(given) == [True, True, True]
        assert store.mark_exported(wednesdays[3], wednesdays[3], "claims-1", _AT) == 1
        given = [
            planned(wednesdays[2], 8, changed),  # older than the stored plan: kept
            planned(wednesdays[1], 2, first),  # new
            planned(wednesdays[0], 2, changed),  # partly changed
            planned(wednesdays[3], 2, changed),  # exported: the plan changes, its lines stay
        ]
        assert store.put_days(given) == [False, True, True, True]
        assert store.planned_days() == (given[2], given[1], newer, given[3])
        assert [d.lines for d in store.ledger()] == lines(given[2], given[1], newer, exported)
        again = [
            planned(wednesdays[0], 3, other),
            planned(wednesdays[0], 3, other, changed),  # the same date again: the last wins
        ]
        assert store.put_days(again) == [True, True]
        assert store.put_days([]) == []
        assert store.get_day(wednesdays[0]) == again[1]
        assert store.ledger(wednesdays[0], wednesdays[0])[0].lines == lines(again[1])[0]

    def test_planned_days_and_delete_days_by_range(self, store: Store) -> None:
        days = [date(2026, 10, 1) + timedelta(days=i) for i in range(10)]
        for d in reversed(days):
            store.put_day(PlannedDay(plan=DayPlan(date=d), revision=1, planned_at=_AT))
        assert [p.date for p in store.planned_days()] == days
        assert [p.date for p in store.planned_days(days[2], days[4])] == days[2:5]
        assert [p.date for p in store.planned_days(None, days[1])] == days[:2]
        assert [p.date for p in store.planned_days(days[8], None)] == days[8:]
        assert store.delete_days(days[2], days[4]) == 3
        assert store.delete_days(days[2], days[4]) == 0
        assert store.delete_days(days[8], None) == 2
        assert store.delete_days(None, days[0]) == 1
        assert [p.date for p in store.planned_days()] == [days[1], *days[5:8]]
        assert store.get_day(days[3]) is None

    def test_day_revisions_name_each_stored_plans_revision(self, store: Store) -> None:
        days = [date(2026, 10, 1) + timedelta(days=i) for i in range(6)]
        for n, d in enumerate(days):
            store.put_day(PlannedDay(plan=DayPlan(date=d), revision=10 + n, planned_at=_AT))
        assert store.day_revisions() == {d: 10 + n for n, d in enumerate(days)}
        assert store.day_revisions(days[1], days[2]) == {days[1]: 11, days[2]: 12}
        assert store.day_revisions(None, days[0]) == {days[0]: 10}
        store.put_day(PlannedDay(plan=DayPlan(date=days[5]), revision=30, planned_at=_AT))
        store.delete_days(days[3], days[3])
        assert store.day_revisions(days[3], None) == {days[4]: 14, days[5]: 30}

    # ------------------------------------------------------------ settings and logs

    def test_window_weeks(self, store: Store) -> None:
        store.set_window_weeks(6)
        assert store.window_weeks() == 6
        store.set_window_weeks(2)
        assert store.window_weeks() == 2

    def test_logs_keep_order(self, store: Store) -> None:
        entries = [
            AuditEntry(at=_AT + timedelta(seconds=i), by="ops", action="record", subject=str(i))
            for i in range(3)
        ]
        for e in entries:
            store.append_audit(e)
        assert store.audit_log() == tuple(entries)
        rolls = [
            RollEntry(
                started_at=_AT,
                finished_at=_AT + timedelta(seconds=1),
                today=date(2026, 10, 1) + timedelta(days=i),
                window_start=date(2026, 10, 1),
                window_end=date(2026, 10, 28),
                status="ok" if i else "failed",
                error="" if i else "RuntimeError: boom",
                days_planned=i,
            )
            for i in range(2)
        ]
        for r in rolls:
            store.append_roll(r)
        assert store.roll_log() == tuple(rolls)

    # ------------------------------------------------------------ concurrency

    def test_roll_lock_is_exclusive(self, store: Store) -> None:
        inside = 0
        most = 0
        guard = threading.Lock()

        def hold() -> None:
            nonlocal inside, most
            with store.roll_lock():
                with guard:
                    inside += 1
                    most = max(most, inside)
                _time.sleep(0.02)
                with guard:
                    inside -= 1

        threads = [threading.Thread(target=hold) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert most == 1

    def test_concurrent_records_all_land_with_unique_revisions(self, store: Store) -> None:
        store.set_organisation(sample_organisation())
        revisions: list[int] = []
        guard = threading.Lock()

        def add(n: int) -> None:
            for i in range(10):
                rev = store.add_record(_enrol(f"t{n}-{i}", "ann", date(2026, 10, 7), minutes=i))
                with guard:
                    revisions.append(rev)

        threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(revisions) == list(range(2, 42))
        assert len(store.records()) == 40
        assert store.revision() == 41

    # ------------------------------------------------------------ billing ledger

    def _billed_day(self, store: Store, day: date) -> PlannedDay:
        store.set_organisation(sample_organisation())
        store.add_record(_enrol("a", "ann", date(2026, 10, 1)))
        store.add_record(_enrol("b", "bob", date(2026, 10, 1), minutes=1))
        planned = _plan(day, store)
        assert planned.plan.instances[0].billing_lines, "the sample must bill something"
        return planned

    def test_ledger_keeps_the_lines_of_purged_days(self, store: Store) -> None:
        day = date(2026, 10, 7)
        planned = self._billed_day(store, day)
        store.put_day(planned)
        lines = planned.plan.instances[0].billing_lines
        assert [(d.date, d.lines, d.exported) for d in store.ledger()] == [(day, lines, False)]
        assert store.delete_days(None, day) == 1
        assert store.ledger(day, day)[0].lines == lines

    def test_exported_lines_are_never_replaced(self, store: Store) -> None:
        day = date(2026, 10, 7)
        planned = self._billed_day(store, day)
        store.put_day(planned)
        other = date(2026, 10, 14)
        store.put_day(_plan(other, store))
        assert store.mark_exported(day, day, "claims-1", _AT) == 1
        assert store.mark_exported(day, other, "claims-2", _AT) == 1  # only the 14th is new
        with pytest.raises(DuplicateIdError):
            store.mark_exported(day, other, "claims-1", _AT)
        # a later plan of the day (say, a regenerated past day) bills nothing
        empty = PlannedDay(plan=DayPlan(date=day), revision=store.revision() + 1, planned_at=_AT)
        assert store.put_day(empty) is True
        kept = store.ledger(day, day)[0]
        assert kept.lines == planned.plan.instances[0].billing_lines
        assert (kept.export_id, kept.exported_at) == ("claims-1", _AT)
        assert store.get_day(day) == empty  # the plan itself is replaced

    def test_days_not_exported_follow_their_latest_plan(self, store: Store) -> None:
        day = date(2026, 10, 7)
        store.put_day(self._billed_day(store, day))
        empty = PlannedDay(plan=DayPlan(date=day), revision=store.revision() + 1, planned_at=_AT)
        store.put_day(empty)
        assert store.ledger(day, day)[0].lines == ()
