"""Properties of planning and of the service that must hold for any input.

Each test says one thing that is always true: a plan is a pure function of
its inputs; recording order never matters; the stored window always equals
what planning from scratch gives; rolling is idempotent and catches up;
shrinking then growing the window is the identity; nothing recorded is ever
lost; the one rule of resolution matches a brute-force oracle; a day's plan
keeps its structural invariants.

The strategies live in ``strategies.py``. Sizes are small so the suite runs
in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loomcore import (
    Enrolment,
    Intent,
    Loom,
    LoomError,
    MemoryStore,
    OneOff,
    Organisation,
    PlanInputs,
    Program,
    Record,
    Reschedule,
    Venue,
    Weekday,
    Weekly,
    Withdrawal,
    _inputs,
    _routing,
    plan_day,
    shipped_catalogue,
)
from strategies import (
    GHOST,
    RECORDED_AT,
    IdCounter,
    ManualClock,
    Op,
    RecordOp,
    ResizeOp,
    RetractOp,
    day_at,
    days_in_range,
    organisations,
    scenarios,
    service_runs,
)

SERVICE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PURE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- helpers


CATALOGUE = shipped_catalogue()


def inputs_of(
    organisation: Organisation, records: Iterable[Record], *, billed: bool = False
) -> PlanInputs:
    records = list(records)
    return PlanInputs(
        organisation=organisation,
        catalogue=CATALOGUE if billed else None,
        intents=[r for r in records if isinstance(r, Intent)],
        one_offs=[r for r in records if isinstance(r, OneOff)],
    )


def history(loom: Loom) -> tuple[object, ...]:
    """What the store holds apart from its logs (roll timings are wall-clock)."""
    store = loom.store
    return (
        store.revision(),
        store.records(),
        store.retractions(),
        store.planned_days(),
        store.window_weeks(),
        store.organisation(),
    )


def store_state(loom: Loom) -> tuple[object, ...]:
    """Everything an operation that raised must have left as it was."""
    return (*history(loom), loom.store.audit_log(), loom.store.roll_log())


def active_records(loom: Loom) -> list[Record]:
    retracted = {r.target_id for r in loom.store.retractions()}
    return [r for r in loom.store.records() if r.id not in retracted]


def from_scratch(loom: Loom) -> PlanInputs:
    """Planning inputs built from the store's records, ignoring any cache."""
    active = active_records(loom)
    return PlanInputs(
        organisation=loom.store.organisation(),
        timezone=loom.timezone,
        catalogue=loom.catalogue,
        intents=[r for r in active if isinstance(r, Intent)],
        one_offs=[r for r in active if isinstance(r, OneOff)],
    )


def new_loom(
    organisation: Organisation, roster: Iterable[Record], weeks: int = 4
) -> tuple[Loom, ManualClock]:
    clock = ManualClock()
    loom = Loom(MemoryStore(), clock=clock, id_factory=IdCounter())
    loom.load(organisation, roster, weeks=weeks)
    return loom, clock


def apply(loom: Loom, clock: ManualClock, op: Op) -> bool:
    """Run one operation. Returns whether it succeeded.

    An operation that raises a :class:`LoomError` must leave the store as it
    was (same revision, records, retractions, planned days and settings).
    """
    before = store_state(loom)
    try:
        if isinstance(op, RecordOp):
            loom.record(op.record, by="prop")
        elif isinstance(op, RetractOp):
            ids = [r.id for r in loom.store.records()] or [GHOST]
            loom.retract(ids[op.pick % len(ids)], by="prop")
        elif isinstance(op, ResizeOp):
            loom.resize_window(op.weeks, by="prop")
        else:
            clock.advance(timedelta(days=op.days, hours=op.hours))
            if op.roll:
                loom.roll()
    except LoomError:
        assert store_state(loom) == before, f"{op!r} raised but changed the store"
        return False
    return True


def run(
    organisation: Organisation, roster: Iterable[Record], ops: Iterable[Op]
) -> tuple[Loom, ManualClock]:
    loom, clock = new_loom(organisation, roster)
    for op in ops:
        apply(loom, clock, op)
    return loom, clock


def assert_stored_days_match_scratch(loom: Loom, *, complete: bool) -> None:
    inputs = from_scratch(loom)
    window = loom.window()
    for d in window.days():
        stored = loom.day(d)
        if stored is None:
            assert not complete, f"{d} is missing from the window"
            continue
        assert stored == plan_day(inputs, d), f"stored plan of {d} differs from scratch"


def window_plans(loom: Loom) -> dict[date, object]:
    return {d: loom.day(d) for d in loom.window().days()}


# --------------------------------------------------------------------------- a. determinism


@PURE
@given(scenario=scenarios(), data=st.data())
def test_plan_day_is_pure_and_independent_of_recording_order(
    scenario: tuple[Organisation, list[Record]], data: st.DataObject
) -> None:
    organisation, records = scenario
    inputs = inputs_of(organisation, records)
    shuffled_records = data.draw(st.permutations(records), label="records order")
    shuffled_org = Organisation(
        name=organisation.name,
        venues=data.draw(st.permutations(organisation.venues)),
        participants=organisation.participants[::-1],
        staff=organisation.staff,
        vehicles=organisation.vehicles,
        programs=data.draw(st.permutations(organisation.programs), label="programs order"),
    )
    shuffled = inputs_of(shuffled_org, shuffled_records)
    for d in days_in_range():
        plan = plan_day(inputs, d)
        assert plan_day(inputs, d) == plan  # remembered
        _routing._forget()
        assert plan_day(inputs_of(organisation, records), d) == plan  # afresh
        _routing._forget()
        assert plan_day(shuffled, d) == plan


@PURE
@given(scenario=scenarios(), data=st.data())
def test_a_chain_of_updates_equals_inputs_built_from_scratch(
    scenario: tuple[Organisation, list[Record]], data: st.DataObject
) -> None:
    # each update shares the tables of the one before, with its changes
    # over them, folded into new tables past a number of changes (here
    # drawn small, to fold often): every step must read as built afresh,
    # and leave every step before it as it was
    organisation, records = scenario
    fold_at = data.draw(st.sampled_from([1, 2, 512]), label="fold at")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_inputs._Layered, "_FOLD_AT", fold_at)
        first = inputs_of(organisation, [])
        # built now, so that the updates layer over them
        assert None not in (first._intent_index, first._one_off_index)
        chain: list[tuple[PlanInputs, list[Record]]] = [(first, [])]
        waiting = list(records)
        for _ in range(data.draw(st.integers(1, 6), label="steps")):
            inputs, held = chain[-1]
            add = waiting[: data.draw(st.integers(0, min(2, len(waiting))), label="add")]
            del waiting[: len(add)]
            remove = data.draw(
                st.lists(st.sampled_from(held), max_size=2, unique_by=lambda r: r.id)
                if held
                else st.just([]),
                label="remove",
            )
            gone = {r.id for r in remove}
            kept = [r for r in held if r.id not in gone]
            chain.append((inputs.updated(add=add, remove=remove), kept + add))
        for inputs, held in chain:
            scratch = inputs_of(organisation, held)
            assert _index_contents(inputs) == _index_contents(scratch)
            for d in days_in_range():
                assert plan_day(inputs, d) == plan_day(scratch, d)


def _index_contents(inputs: PlanInputs) -> tuple[object, ...]:
    intents, one_offs = inputs._intent_index, inputs._one_off_index
    return (
        {k: list(entries) for k, (_, entries) in intents.timelines.folded().items()},
        # each subject (kind, program) names, in order, with its timeline
        {
            k: [(name, list(entries)) for name, (_, entries) in pairs]
            for k, pairs in intents.named.folded().items()
        },
        one_offs.on.folded(),
        one_offs.moves_to.folded(),
        one_offs.reschedules.folded(),
        one_offs.days.folded(),
    )


@PURE
@given(scenario=scenarios(), data=st.data())
def test_updated_inputs_equal_inputs_built_from_scratch(
    scenario: tuple[Organisation, list[Record]], data: st.DataObject
) -> None:
    organisation, records = scenario
    first = data.draw(st.lists(st.booleans(), min_size=len(records), max_size=len(records)))
    base = [r for r, f in zip(records, first, strict=True) if f]
    later = [r for r, f in zip(records, first, strict=True) if not f]
    removed = data.draw(
        st.lists(st.sampled_from(base), unique_by=lambda r: r.id) if base else st.just([])
    )
    billed = data.draw(st.booleans(), label="billed")
    before = inputs_of(organisation, base, billed=billed)
    # planning first builds the indexes and fills the per-program memos,
    # which the update carries over for the programs it leaves alone
    planned_first = data.draw(st.sampled_from([0, 3, len(days_in_range())]), label="days planned")
    for d in days_in_range()[:planned_first]:
        plan_day(before, d)
    after = before.updated(add=later, remove=removed)
    gone = {r.id for r in removed}
    scratch = inputs_of(
        organisation, [*(r for r in base if r.id not in gone), *later], billed=billed
    )
    assert sorted(r.id for r in (*after.intents, *after.one_offs)) == sorted(
        r.id for r in (*scratch.intents, *scratch.one_offs)
    )
    assert _index_contents(after) == _index_contents(scratch)
    for d in days_in_range():
        assert plan_day(after, d) == plan_day(scratch, d)
    # the inputs updated are left as they were, and still plan as they did
    unchanged = inputs_of(organisation, base, billed=billed)
    assert _index_contents(before) == _index_contents(unchanged)
    for d in days_in_range():
        assert plan_day(before, d) == plan_day(unchanged, d)


# --------------------------------------------------------------------------- b. incremental


@settings(SERVICE, max_examples=100)
@given(run_=service_runs())
def test_incremental_planning_equals_planning_from_scratch(
    run_: tuple[Organisation, list[Enrolment], list[Op]],
) -> None:
    organisation, roster, ops = run_
    loom, clock = new_loom(organisation, roster)
    assert_stored_days_match_scratch(loom, complete=True)
    for op in ops:
        apply(loom, clock, op)
        # Every stored window day is current after every operation, rolled or not.
        assert_stored_days_match_scratch(loom, complete=False)
    loom.roll()
    assert_stored_days_match_scratch(loom, complete=True)
    assert loom.health().status == "ok"


def monday_art() -> Organisation:
    """One weekly program on Mondays (``BASE`` is a Monday)."""
    return Organisation(
        venues=[Venue(id="v1", name="Hall", capacity=10)],
        programs=[
            Program(
                id="art",
                name="Art",
                recurrence=Weekly(weekdays={Weekday.MO}),
                start_time=time(10, 0),
                end_time=time(14, 0),
                venue_id="v1",
                active_from=day_at(-14),
            )
        ],
    )


def test_second_reschedule_from_a_date_replans_the_first_ones_landing_day() -> None:
    """A later reschedule from a date supersedes an earlier one; both landing days change.

    Day 0 (Monday) is moved to day 5 by R1. Monday day 7 is moved onto day 0,
    which gives day 0 an instance again, so R2 from day 0 to day 20 is
    accepted. R2 is now the winning move from day 0: day 5 no longer
    receives an instance, so it must be re-planned.
    """
    loom, _clock = new_loom(monday_art(), ())
    loom.record(Reschedule(program_id="art", date=day_at(0), to_date=day_at(5)))
    loom.record(Reschedule(program_id="art", date=day_at(7), to_date=day_at(0)))
    loom.record(Reschedule(program_id="art", date=day_at(0), to_date=day_at(20)))
    assert_stored_days_match_scratch(loom, complete=True)


def test_superseded_move_from_a_past_date_is_planned_from_every_move_of_that_date() -> None:
    """Planning a landing day must see every reschedule of the move's origin date.

    As above, but on day 3: the origin (day 0) is history and R2 lands after
    the window, so only day 5 is re-planned, from records loaded for day 5
    alone. Those leave out R2 (dated day 0 and day 45), so R1 still looks
    like the winning move and day 5 keeps an instance it no longer has.
    """
    loom, clock = new_loom(monday_art(), ())
    clock.advance(timedelta(days=3))
    loom.roll()
    loom.record(Reschedule(program_id="art", date=day_at(0), to_date=day_at(5)))
    loom.record(Reschedule(program_id="art", date=day_at(7), to_date=day_at(0)))
    loom.record(Reschedule(program_id="art", date=day_at(0), to_date=day_at(45)))
    scratch = plan_day(from_scratch(loom), day_at(5))
    assert scratch.instances == ()
    assert loom.preview(day_at(5), day_at(5)) == [scratch]
    assert_stored_days_match_scratch(loom, complete=True)


def test_roll_plans_a_new_landing_day_from_every_move_of_its_origin() -> None:
    """The roll plans the one day entering the window from records loaded for it alone.

    R1 moves day 7 to day 28 (just past the window), R0 moves day 14 onto
    day 7, R2 moves day 7 to day 50 and supersedes R1. A night later day 28
    enters the window: it must not receive day 7's instance. (Re-saving the
    organisation re-plans the window at the latest revision, so the roll finds
    nothing stale and loads records for day 28 alone.)
    """
    loom, clock = new_loom(monday_art(), ())
    loom.record(Reschedule(program_id="art", date=day_at(7), to_date=day_at(28)))
    loom.record(Reschedule(program_id="art", date=day_at(14), to_date=day_at(7)))
    loom.record(Reschedule(program_id="art", date=day_at(7), to_date=day_at(50)))
    loom.set_organisation(monday_art())
    clock.advance(timedelta(days=1))
    assert loom.roll().days_planned == 1
    assert_stored_days_match_scratch(loom, complete=True)


# --------------------------------------------------------------------------- c. roll twice


@SERVICE
@given(run_=service_runs(max_ops=8))
def test_rolling_twice_equals_rolling_once(
    run_: tuple[Organisation, list[Enrolment], list[Op]],
) -> None:
    loom, clock = run(*run_)
    loom.roll()
    once = loom.store.planned_days()
    second = loom.roll()
    assert second.status == "ok"
    assert second.days_planned == 0
    assert second.days_dropped == 0
    assert loom.store.planned_days() == once
    # Another service on the same store (another host process) agrees.
    other = Loom(loom.store, clock=clock, id_factory=IdCounter("o"))
    assert other.roll().days_planned == 0
    assert loom.store.planned_days() == once


# --------------------------------------------------------------------------- d. catch-up


@SERVICE
@given(run_=service_runs(max_ops=6), nights=st.integers(1, 10))
def test_rolling_every_night_equals_one_roll_after_missed_nights(
    run_: tuple[Organisation, list[Enrolment], list[Op]], nights: int
) -> None:
    nightly, nightly_clock = run(*run_)
    late, late_clock = run(*run_)
    assert history(nightly) == history(late)

    for _ in range(nights):
        nightly_clock.advance(timedelta(days=1))
        nightly.roll()
    late_clock.advance(timedelta(days=nights))
    catch_up = late.roll()

    def plans(loom: Loom) -> dict[date, object]:
        return {p.date: p.plan for p in loom.store.planned_days()}

    assert plans(nightly) == plans(late)
    assert nightly.window() == late.window()
    assert all(d in plans(late) for d in late.window().days())
    assert catch_up.status == "ok"


# --------------------------------------------------------------------------- e. shrink, expand


@SERVICE
@given(
    run_=service_runs(max_ops=6),
    a=st.integers(2, 16),
    b=st.integers(2, 16),
)
def test_shrinking_then_expanding_the_window_is_the_identity(
    run_: tuple[Organisation, list[Enrolment], list[Op]], a: int, b: int
) -> None:
    loom, _clock = run(*run_)
    loom.roll()

    loom.resize_window(16)
    full = window_plans(loom)
    loom.resize_window(2)
    small = loom.window()
    assert all(p.date <= small.end for p in loom.store.planned_days(small.start))
    assert {d: full[d] for d in small.days()} == window_plans(loom)
    loom.resize_window(16)
    assert window_plans(loom) == full

    loom.resize_window(a)
    before = window_plans(loom)
    loom.resize_window(b)
    loom.resize_window(a)
    assert window_plans(loom) == before
    assert None not in before.values()


# --------------------------------------------------------------------------- f. nothing lost


@SERVICE
@given(run_=service_runs(max_ops=16))
def test_nothing_recorded_is_ever_lost(
    run_: tuple[Organisation, list[Enrolment], list[Op]],
) -> None:
    organisation, roster, ops = run_
    loom, clock = new_loom(organisation, roster)
    kept: dict[str, Record] = {r.id: r for r in loom.store.records()}
    retracted: set[str] = set()
    for op in ops:
        before_ids = {r.id for r in loom.store.records()}
        before_retracted = {r.target_id for r in loom.store.retractions()}
        if apply(loom, clock, op) and isinstance(op, RecordOp):
            (new_id,) = {r.id for r in loom.store.records()} - before_ids
            kept[new_id] = loom.store.get_record(new_id)
        retracted |= {r.target_id for r in loom.store.retractions()} - before_retracted

    stored = {r.id: r for r in loom.store.records()}
    assert stored == kept, "a record was lost or changed"

    everything = {r.id for r in loom.intents(include_retracted=True)} | {
        r.id for r in loom.one_offs(include_retracted=True)
    }
    active = {r.id for r in loom.intents()} | {r.id for r in loom.one_offs()}
    assert everything == set(kept)
    assert active == set(kept) - retracted
    for record_id in retracted:
        retraction = loom.retraction_of(record_id)
        assert retraction is not None
        assert retraction.recorded_at is not None


# --------------------------------------------------------------------------- g. the one rule


@st.composite
def enrolment_timelines(draw: st.DrawFn) -> list[Intent]:
    """Enrolments and withdrawals of one participant in one program, stamped."""
    n = draw(st.integers(0, 8))
    ids = draw(st.permutations([f"i{k}" for k in range(n)]))
    out: list[Intent] = []
    for k in range(n):
        kind = draw(st.sampled_from((Enrolment, Withdrawal)))
        start = day_at(draw(st.integers(0, 20)))
        length = draw(st.none() | st.integers(0, 10))
        out.append(
            kind(
                id=ids[k],
                recorded_at=draw(st.sampled_from(RECORDED_AT)),
                program_id="art",
                participant_id="p01",
                start=start,
                end=None if length is None else start + timedelta(days=length),
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(timeline=enrolment_timelines())
def test_resolution_matches_brute_force_oracle(timeline: list[Intent]) -> None:
    inputs = PlanInputs(organisation=Organisation(), intents=timeline)
    for offset in range(-2, 34):
        d = day_at(offset)
        covering = [i for i in timeline if i.covers(d)]
        resolved = inputs.resolve(("enrolled", "art", "p01"), d, False)
        # the two quicker questions the planner asks give the same answer
        value = inputs.value(("enrolled", "art", "p01"), d, False)
        named = inputs.named_on("enrolled", "art", d)
        if not covering:
            assert resolved.value is False
            assert resolved.source == ""
            assert value is False
            assert named == []
            continue
        winner = max(covering, key=lambda i: (i.start, i.recorded_at, i.id))
        assert resolved.value is isinstance(winner, Enrolment), d
        assert resolved.source == winner.id
        assert value is resolved.value
        assert named == ([("p01", winner.id)] if resolved.value else [])


# --------------------------------------------------------------------------- h. plan structure


@PURE
@given(scenario=scenarios())
def test_plans_keep_their_structural_invariants(
    scenario: tuple[Organisation, list[Record]],
) -> None:
    organisation, records = scenario
    inputs = inputs_of(organisation, records)
    for d in days_in_range():
        plan = plan_day(inputs, d)
        ids = [i.id for i in plan.instances]
        assert len(ids) == len(set(ids)), f"duplicate instance ids on {d}: {ids}"
        for inst in plan.instances:
            assert inst.date == d
            assert inst.start.tzinfo is not None
            assert inst.end >= inst.start
            pids = [a.participant_id for a in inst.allocations]
            assert pids == sorted(set(pids)), f"{inst.id}: allocations not sorted/unique"
            program = inputs.programs[inst.program_id]
            rule = inputs.resolve(("field", program.id, "staffing"), d, program.staffing).value
            attending = [a.participant_id for a in inst.allocations if a.status == "attending"]
            if inst.cancelled:
                assert attending == []
            n = len(attending)
            load = (
                sum((inputs.participants[p].supervision_weight for p in attending), Decimal(0))
                if rule.weighted
                else Decimal(n)
            )
            expected_leads = rule.leads if n else 0
            expected_support = math.ceil(load / rule.participants_per_support) if n else 0
            assert inst.staff_demand.leads == expected_leads
            assert inst.staff_demand.support == expected_support


# --------------------------------------------------------------------------- the strategies


@settings(max_examples=20, deadline=None)
@given(organisation=organisations())
def test_organisations_are_small_and_valid(organisation: Organisation) -> None:
    assert 2 <= len(organisation.venues) <= 3
    assert 4 <= len(organisation.participants) <= 10
    assert 2 <= len(organisation.staff) <= 5
    assert 1 <= len(organisation.vehicles) <= 2
    assert 2 <= len(organisation.programs) <= 4
