"""The one rule: the covering intent with the latest start wins, ties by recorded_at, then id."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, date, datetime, time, timedelta

import attrs
import pytest

from builders import seed_organisation
from loomcore import (
    Absence,
    Cancellation,
    DuplicateIdError,
    Enrolment,
    InvalidRecordError,
    PlanInputs,
    ProgramChange,
    Reschedule,
    StaffLeave,
    StaffSwap,
    Withdrawal,
    _inputs,
    plan_day,
)
from loomcore._demo import demo_scenario
from loomcore._parallel import _portable

T0 = datetime(2026, 9, 1, tzinfo=UTC)
D = date(2026, 10, 14)


def enrol(id: str, start: date, end: date | None = None, at: int = 0, yes: bool = True):  # type: ignore[no-untyped-def]
    cls = Enrolment if yes else Withdrawal
    return cls(
        id=id,
        program_id="centre-wed",
        participant_id="sarah",
        start=start,
        end=end,
        recorded_at=T0 + timedelta(minutes=at),
    )


def resolve(intents: list[object], day: date = D) -> tuple[object, str]:
    inputs = PlanInputs(organisation=seed_organisation(), intents=intents)  # type: ignore[arg-type]
    r = inputs.resolve(("enrolled", "centre-wed", "sarah"), day, "template")
    return r.value, r.source


CASES = [
    ("nothing recorded: the template", [], ("template", "")),
    ("one covering intent", [enrol("a", date(2026, 10, 7))], (True, "a")),
    ("starts after the day: not covering", [enrol("a", date(2026, 10, 15))], ("template", "")),
    ("ended before the day", [enrol("a", date(2026, 10, 1), date(2026, 10, 13))], ("template", "")),
    ("ends on the day: covering", [enrol("a", date(2026, 10, 1), D)], (True, "a")),
    (
        "latest start wins",
        [enrol("a", date(2026, 10, 1)), enrol("b", date(2026, 10, 7), yes=False)],
        (False, "b"),
    ),
    (
        "latest start wins even if recorded earlier",
        [enrol("a", date(2026, 10, 1), at=9), enrol("b", date(2026, 10, 7), at=1, yes=False)],
        (False, "b"),
    ),
    (
        "same start: later recorded_at wins",
        [enrol("a", date(2026, 10, 7), at=2, yes=False), enrol("b", date(2026, 10, 7), at=1)],
        (False, "a"),
    ),
    (
        "same start and time: larger id wins",
        [enrol("b", date(2026, 10, 7), yes=False), enrol("a", date(2026, 10, 7))],
        (False, "b"),
    ),
    (
        "temporary change ends: the earlier open intent answers again",
        [
            enrol("a", date(2026, 1, 1)),
            enrol("b", date(2026, 10, 1), date(2026, 10, 10), yes=False),
        ],
        (True, "a"),
    ),
    (
        "temporary change in force",
        [
            enrol("a", date(2026, 1, 1)),
            enrol("b", date(2026, 10, 10), date(2026, 10, 20), yes=False),
        ],
        (False, "b"),
    ),
]


@pytest.mark.parametrize(("intents", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_one_rule(intents: list[object], expected: tuple[object, str]) -> None:
    assert resolve(intents) == expected
    assert resolve(list(reversed(intents))) == expected


def test_a_long_run_of_updates_keeps_every_record_id_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the ids are shared with the inputs updated and folded in every few
    # edits (here: every 3); each step must still refuse a duplicate, take
    # out only what it holds, and leave the inputs it came from unchanged
    monkeypatch.setattr(_inputs._Ids, "_FOLD_AT", 3)
    steps = [PlanInputs(organisation=seed_organisation(), intents=[enrol("r0", D)])]
    held = [{"r0"}]
    for n in range(1, 12):
        last = steps[-1]
        if n % 3 == 0:  # take one out
            gone = sorted(held[-1])[0]
            steps.append(last.updated(remove=[enrol(gone, D)]))
            held.append(held[-1] - {gone})
        elif n % 4 == 0:  # replace one under its own id
            same = sorted(held[-1])[-1]
            steps.append(last.updated(add=[enrol(same, D, at=n)], remove=[enrol(same, D)]))
            held.append(set(held[-1]))
        else:
            steps.append(last.updated(add=[enrol(f"r{n}", D, at=n)]))
            held.append(held[-1] | {f"r{n}"})
    for inputs, ids in zip(steps, held, strict=True):
        assert sorted(r.id for r in inputs.intents) == sorted(ids)
        for n in range(12):
            assert (f"r{n}" in inputs._ids) == (f"r{n}" in ids)
        for present in ids:
            with pytest.raises(DuplicateIdError, match=repr(present)):
                inputs.updated(add=[enrol(present, D)])
        for absent in {f"r{n}" for n in range(12)} - ids:
            with pytest.raises(InvalidRecordError, match=repr(absent)):
                inputs.updated(remove=[enrol(absent, D)])


def test_records_added_in_parts_read_as_one_tuple_and_stay_few_parts() -> None:
    # each update adds its records after the others, the last part joined
    # with them while no larger (a binary counter): every step must read as
    # the records it holds, once each, in the order they came, with parts
    # shrinking from first to last and about log2 of the records in number
    steps = [PlanInputs(organisation=seed_organisation(), intents=[enrol("r0", D)])]
    held = [["r0"]]
    for n in range(1, 80):
        last = steps[-1]
        if n % 7 == 0:  # take out the oldest, from whichever part holds it
            gone = held[-1][0]
            steps.append(last.updated(remove=[enrol(gone, D)]))
            held.append(held[-1][1:])
        else:
            steps.append(last.updated(add=[enrol(f"r{n}", D, at=n)]))
            held.append([*held[-1], f"r{n}"])
            sizes = [len(p) for p in steps[-1]._intent_parts]
            assert sizes == sorted(sizes, reverse=True)
            assert len(sizes) <= len(held[-1]).bit_length() + 1
    assert max(len(p) for s in steps for p in s._intent_parts) > 2  # parts were joined
    for inputs, ids in zip(steps, held, strict=True):
        assert [r.id for r in inputs.intents] == ids
        assert [r.id for r in inputs.intents] == ids  # read again: the same
        # a copy made with attrs keeps the records, as PlanInputs' converters see them
        copy = attrs.evolve(inputs, timezone="Australia/Perth")
        assert [r.id for r in copy.intents] == ids
        assert copy.one_offs == ()
        assert all(f"'{i}'" in repr(inputs) for i in ids)
        again = pickle.loads(pickle.dumps(inputs, pickle.HIGHEST_PROTOCOL))
        assert [r.id for r in again.intents] == ids


def test_records_taken_out_of_a_large_part_are_read_past_then_folded_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # parts of more than 3 records are not copied to take one out (the
    # record is named as gone), until more than 4 are gone: then all are
    # copied once without them. Every step must read as its records, and so
    # must its copies and pickles while it still names records as gone; a
    # new record may join meanwhile, and an id taken out may come back as a
    # new record (which a later removal then copies out of its small part)
    monkeypatch.setattr("loomcore._inputs._COPIED_AT_MOST", 3)
    monkeypatch.setattr("loomcore._inputs._HIDDEN_AT_MOST", 4)
    first = PlanInputs(
        organisation=seed_organisation(), intents=[enrol(f"r{n}", D) for n in range(40)]
    )
    resolve_in(first)  # the index built: every step updates it
    steps, held = [first], [[f"r{n}" for n in range(40)]]
    for n in range(40):
        last = steps[-1]
        if n % 10 == 9:  # an id taken out just before comes back, recorded later
            back = f"r{n - 1}"
            steps.append(last.updated(add=[enrol(back, D, at=100 + n, yes=False)]))
            held.append([*held[-1], back])
        elif n % 10 == 5:  # a new record joins while others are named as gone
            steps.append(last.updated(add=[enrol(f"new{n}", D, at=200 + n)]))
            held.append([*held[-1], f"new{n}"])
        elif n % 10 == 0 and n:  # the record that came back is taken out again
            again = f"r{n - 2}"
            steps.append(last.updated(remove=[enrol(again, D)]))
            held.append([i for i in held[-1] if i != again])
            assert again not in steps[-1]._intent_parts.gone  # copied out of its small part
        else:
            steps.append(last.updated(remove=[enrol(f"r{n}", D)]))
            held.append([i for i in held[-1] if i != f"r{n}"])
    naming = [s for s in steps if s._intent_parts.gone]
    assert len(naming) > 4  # the large part was read past, not copied ...
    assert any(s._intent_parts[0] is first._intent_parts[0] for s in naming)  # ... kept as it was
    assert all(len(s._intent_parts.gone) <= 4 for s in steps)  # folded out when many
    for inputs, ids in zip(steps, held, strict=True):
        gone = inputs._intent_parts.gone
        # copies taken while the parts still name records as gone (reading
        # the records folds them out of the inputs read)
        copies = [
            pickle.loads(pickle.dumps(inputs, pickle.HIGHEST_PROTOCOL)),
            attrs.evolve(inputs, timezone="Australia/Perth"),
            copy.deepcopy(inputs),
            pickle.loads(pickle.dumps(_portable(inputs), pickle.HIGHEST_PROTOCOL)),
        ]
        assert copies[0]._intent_parts.gone == gone
        for made in copies:
            assert [r.id for r in made.intents] == ids
        fresh = PlanInputs(organisation=seed_organisation(), intents=list(inputs.intents))
        assert [r.id for r in inputs.intents] == ids
        assert resolve_in(inputs) == resolve_in(fresh)
        assert inputs.named_on("enrolled", "centre-wed", D) == fresh.named_on(
            "enrolled", "centre-wed", D
        )
        for taken_out in sorted(gone):
            with pytest.raises(InvalidRecordError, match=repr(taken_out)):
                inputs.updated(remove=[enrol(taken_out, D)])
    # the record that came back and stayed is the new one, read as such
    came_back = [r for r in steps[-1].intents if isinstance(r, Withdrawal)]
    assert [r.id for r in came_back] == ["r38"]
    with pytest.raises(AttributeError):
        steps[-1]._intent_parts.gone = frozenset()  # the parts are shared: read-only


def test_a_one_off_taken_out_of_a_large_part_leaves_the_intents_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each kind's parts name only its own records as gone: a one-off taken
    # out leaves the intents' parts (and the reading of them) untouched
    monkeypatch.setattr("loomcore._inputs._COPIED_AT_MOST", 3)
    absences = [
        Absence(
            id=f"a{n}",
            program_id="centre-wed",
            date=D,
            participant_id="sarah",
            recorded_at=T0 + timedelta(minutes=n),
        )
        for n in range(10)
    ]
    first = PlanInputs(
        organisation=seed_organisation(),
        intents=[enrol(f"r{n}", D) for n in range(10)],
        one_offs=absences,
    )
    first.one_offs_for("centre-wed", D)  # the index built
    after = first.updated(remove=[absences[4]])
    assert after._one_off_parts.gone == {"a4"}
    assert not after._intent_parts.gone
    assert after._intent_parts is first._intent_parts
    assert [o.id for o in after.one_offs] == [f"a{n}" for n in range(10) if n != 4]
    fresh = PlanInputs(
        organisation=seed_organisation(), intents=first.intents, one_offs=after.one_offs
    )
    assert after.one_offs_for("centre-wed", D) == fresh.one_offs_for("centre-wed", D)
    assert after.one_offs_touching(D) == fresh.one_offs_touching(D)


def resolve_in(inputs: PlanInputs) -> object:
    return inputs.resolve(("enrolled", "centre-wed", "sarah"), D, False)


def test_one_update_that_touches_a_date_twice_reads_as_built_afresh() -> None:
    # two absences added on one date, then one of them taken out while a
    # third is added on it: each step answers for the date as inputs built
    # from its records do, and the steps before are left as they were
    def absent(id: str, who: str, at: int) -> Absence:
        return Absence(
            id=id,
            program_id="centre-wed",
            date=D,
            participant_id=who,
            recorded_at=T0 + timedelta(minutes=at),
        )

    a, b, c = absent("a", "sarah", 1), absent("b", "john", 2), absent("c", "sarah", 3)
    first = PlanInputs(organisation=seed_organisation(), one_offs=[absent("z", "john", 0)])
    assert first.one_offs_for("centre-wed", D)  # its index is built
    second = first.updated(add=[a, b])
    third = second.updated(add=[c], remove=[a, b])
    for inputs, held in ((first, ["z"]), (second, ["z", "a", "b"]), (third, ["z", "c"])):
        scratch = PlanInputs(organisation=seed_organisation(), one_offs=inputs.one_offs)
        assert [o.id for o in inputs.one_offs] == held
        for ask in (inputs, scratch):
            assert [o.id for o in ask.one_offs_for("centre-wed", D)] == held
            assert [o.id for o in ask.one_offs_touching(D)] == held


def test_updated_inputs_keep_the_organisations_lookups_and_only_those() -> None:
    first = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D)])
    made = (first.participants, first.programs, first.zone)
    second = first.updated(add=[enrol("b", D + timedelta(days=7), at=1)])
    # the very dictionaries: no lookup of the organisation is built again
    kept = (second.participants, second.programs, second.zone)
    assert all(a is b for a, b in zip(kept, made, strict=True))
    # a lookup the first never made is made afresh, from the same organisation
    assert second.staff == {s.id: s for s in seed_organisation().staff}
    assert (
        second.resolve(("enrolled", "centre-wed", "sarah"), D + timedelta(days=7), None).source
        == "b"
    )


def test_each_program_field_is_its_own_question() -> None:
    time_change = ProgramChange(
        id="t",
        program_id="centre-wed",
        start=date(2026, 10, 1),
        start_time=time(10),
        recorded_at=T0,
    )
    venue_change = ProgramChange(
        id="v",
        program_id="centre-wed",
        start=date(2026, 10, 7),
        venue_id="small-room",
        recorded_at=T0,
    )
    inputs = PlanInputs(organisation=seed_organisation(), intents=[time_change, venue_change])
    # the later venue change does not undo the earlier time change
    assert inputs.resolve(("field", "centre-wed", "start_time"), D, time(9)).value == time(10)
    assert inputs.resolve(("field", "centre-wed", "venue_id"), D, "centre").value == "small-room"
    assert inputs.resolve(("field", "centre-wed", "end_time"), D, time(15)).source == ""


def test_updated_inputs_refuse_a_duplicate_or_a_missing_record_by_id() -> None:
    inputs = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D)])
    with pytest.raises(DuplicateIdError, match="'a'"):
        inputs.updated(add=[enrol("a", D + timedelta(days=7))])
    with pytest.raises(InvalidRecordError, match="'ghost'"):
        inputs.updated(remove=[enrol("ghost", D)])
    # a record taken out and one with its id put back in one call is a replacement
    moved = inputs.updated(add=[enrol("a", D + timedelta(days=7))], remove=[enrol("a", D)])
    assert moved.resolve(("enrolled", "centre-wed", "sarah"), D, "template").value == "template"
    # the inputs updated are left as they were
    assert inputs.resolve(("enrolled", "centre-wed", "sarah"), D, "template").value is True


def test_what_ifs_giving_one_id_to_different_records_each_plan_as_from_scratch() -> None:
    # What is remembered is shared between inputs updated from one another;
    # a record replaced under its own id, or two what-ifs from one base each
    # adding a different record under the same id, must still plan as
    # inputs built from scratch do (here: a staff swap, read by staffing).
    scenario = demo_scenario(date(2026, 3, 2))
    base = PlanInputs(
        organisation=scenario.organisation,
        intents=scenario.intents,
        one_offs=scenario.exceptions,
    )
    day = date(2026, 3, 4)
    inst = next(i for i in plan_day(base, day).instances if i.shifts)
    lead = next(s.staff_id for s in inst.shifts if s.staff_id)
    others = [s.id for s in scenario.organisation.staff if s.id != lead][:2]

    def swap(who: str) -> StaffSwap:
        return StaffSwap(
            id="what-if",
            program_id=inst.program_id,
            date=day,
            out_staff_id=lead,
            in_staff_id=who,
            recorded_at=T0,
        )

    def from_scratch(inputs: PlanInputs) -> PlanInputs:
        return PlanInputs(
            organisation=inputs.organisation, intents=inputs.intents, one_offs=inputs.one_offs
        )

    first, second = (base.updated(add=[swap(who)]) for who in others)
    replaced = first.updated(add=[swap(others[1])], remove=[swap(others[0])])
    for what_if in (first, second, replaced):
        assert plan_day(what_if, day) == plan_day(from_scratch(what_if), day)
    staffed = [
        {s.staff_id for i in plan_day(w, day).instances if i.id == inst.id for s in i.shifts}
        for w in (first, second)
    ]
    assert others[0] in staffed[0]
    assert others[1] in staffed[1]


def test_leave_drops_only_the_days_it_covers_from_what_the_day_planner_remembers() -> None:
    from loomcore._inputs import DAY_WIDE

    week = D + timedelta(days=7)
    first = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D)])
    plans = {day: plan_day(first, day) for day in (D, week)}
    days = first._memo(DAY_WIDE)
    assert {D, week} <= days.keys()
    leave = StaffLeave(id="l", staff_id="amy", start=D, end=D, recorded_at=T0)
    second = first.updated(add=[leave])
    kept = second._memo(DAY_WIDE)
    # the day the leave covers is dropped; the other is the very same table
    assert D not in kept
    assert kept[week] is days[week]
    assert days is not kept  # the first inputs keep theirs
    assert D in days
    # and the plans are those of inputs made afresh
    fresh = PlanInputs(organisation=seed_organisation(), intents=second.intents)
    for day in (D, week):
        assert plan_day(second, day) == plan_day(fresh, day)
    assert plan_day(first, D) == plans[D]


def test_updated_inputs_name_a_subject_by_its_new_timeline() -> None:
    # sarah stays among those the index names for the program, with a new
    # timeline: named_on must read that one, as inputs made afresh do
    week = D + timedelta(days=7)
    first = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D), enrol("b", D)])
    assert [who for who, _ in first.named_on("enrolled", "centre-wed", week)] == ["sarah"]
    leaves = Withdrawal(
        id="w", program_id="centre-wed", participant_id="sarah", start=week, recorded_at=T0
    )
    second = first.updated(add=[leaves])
    fresh = PlanInputs(organisation=seed_organisation(), intents=second.intents)
    for inputs in (second, fresh):
        assert inputs.named_on("enrolled", "centre-wed", D) == [("sarah", "b")]
        assert inputs.named_on("enrolled", "centre-wed", week) == []
    assert first.named_on("enrolled", "centre-wed", week) == [("sarah", "b")]  # unchanged
    assert second._intent_index.named.folded() == fresh._intent_index.named.folded()


def test_inputs_extended_past_every_day_they_planned_share_what_they_remember() -> None:
    week = D + timedelta(days=7)
    first = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D)])
    plans = {day: plan_day(first, day) for day in (D, D + timedelta(days=1))}
    later = [
        enrol("b", week, yes=False),
        StaffLeave(id="l", staff_id="amy", start=week, end=week, recorded_at=T0),
        Cancellation(id="c", program_id="mon-art", date=week + timedelta(days=5), recorded_at=T0),
    ]
    second = first._extended(later, after=week - timedelta(days=1))
    assert second._memos is first._memos  # nothing planned can change: shared
    fresh = PlanInputs(
        organisation=seed_organisation(), intents=second.intents, one_offs=second.one_offs
    )
    for day in (D, week, week + timedelta(days=5)):
        assert plan_day(second, day) == plan_day(fresh, day)
    # the records added do change the new day (sarah withdrawn, amy away)
    before = PlanInputs(organisation=seed_organisation(), intents=first.intents)
    assert plan_day(second, week) != plan_day(before, week)
    # and the days planned before plan as they did, for both
    for day, plan in plans.items():
        assert plan_day(first, day) == plan == plan_day(second, day)


def test_inputs_extended_with_a_record_on_a_day_planned_drop_that_day() -> None:
    first = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D)])
    plan_day(first, D)
    # the withdrawal begins on a day these inputs planned: not shared
    second = first._extended([enrol("b", D, yes=False)], after=D)
    assert second._memos is not first._memos
    assert ("instances", D) not in second._memo("centre-wed")
    assert [i.attending for i in plan_day(second, D).instances if i.program_id == "centre-wed"] == [
        ()
    ]


def test_inputs_that_planned_past_the_day_given_are_extended_by_copying() -> None:
    week = D + timedelta(days=7)
    first = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D)])
    plan_day(first, week)  # a day after the one given below
    # sarah withdraws from that week on: a record that begins after the
    # day given, yet changes a day these inputs planned
    second = first._extended([enrol("b", week, yes=False)], after=D)
    assert second._memos is not first._memos
    fresh = PlanInputs(organisation=seed_organisation(), intents=second.intents)
    assert plan_day(second, week) == plan_day(fresh, week)
    assert plan_day(second, week) != plan_day(first, week)


def test_inputs_extended_for_a_program_with_a_reschedule_do_not_share() -> None:
    # a program with a reschedule shares nothing, as updated() keeps none of its
    # days: a moved instance is planned on a day other than its own
    week = D + timedelta(days=7)
    move = Reschedule(
        id="m", program_id="centre-wed", date=week, to_date=D + timedelta(days=1), recorded_at=T0
    )
    first = PlanInputs(organisation=seed_organisation(), intents=[enrol("a", D)], one_offs=[move])
    plan_day(first, D + timedelta(days=1))
    second = first._extended([enrol("b", week, yes=False)], after=week - timedelta(days=1))
    assert second._memos is not first._memos
    fresh = PlanInputs(
        organisation=seed_organisation(), intents=second.intents, one_offs=second.one_offs
    )
    assert plan_day(second, D + timedelta(days=1)) == plan_day(fresh, D + timedelta(days=1))
