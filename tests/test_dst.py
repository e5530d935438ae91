"""Daylight saving in Sydney: instance times, windows and the nightly roll.

Sydney moves its clocks forward on the first Sunday of October (02:00 becomes
03:00; 2026-10-04) and back on the first Sunday of April (03:00 becomes
02:00; 2026-04-05). A day is a local calendar date, so on those days an
instance's wall-clock times stay as the program says while its real length
changes, a time inside the skipped hour moves later (with a warning), and
the roll still runs exactly once per local date at 00:05.

Real durations are measured in UTC: subtracting two aware datetimes that
share a ``tzinfo`` gives the wall-clock difference, not the elapsed time.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest

from loomcore import (
    Enrolment,
    Instance,
    Intent,
    Loom,
    MemoryStore,
    OneDayChange,
    OneOff,
    Organisation,
    Participant,
    PlanInputs,
    Program,
    Venue,
    Weekday,
    Weekly,
    plan_day,
    window_for,
)
from strategies import IdCounter, ManualClock

SYDNEY = ZoneInfo("Australia/Sydney")
SPRING_FORWARD = date(2026, 10, 4)  # 02:00 AEST -> 03:00 AEDT
FALL_BACK = date(2026, 4, 5)  # 03:00 AEDT -> 02:00 AEST
TRANSITIONS = (FALL_BACK, SPRING_FORWARD)

AEST = timedelta(hours=10)
AEDT = timedelta(hours=11)
EVERY_DAY = Weekly(weekdays=list(Weekday))


def program(id: str, start: time, end: time) -> Program:
    return Program(
        id=id,
        name=id,
        recurrence=EVERY_DAY,
        start_time=start,
        end_time=end,
        venue_id="hall",
        active_from=date(2026, 1, 1),
    )


ORGANISATION = Organisation(
    name="DST test",
    venues=[Venue(id="hall", name="Hall", capacity=10)],
    participants=[Participant(id="p1", name="Pat")],
    programs=[
        program("day", time(9, 0), time(15, 0)),
        program("night", time(1, 0), time(4, 0)),
        program("late-start", time(2, 30), time(5, 0)),
        program("gap-end", time(1, 0), time(2, 30)),
    ],
)
ROSTER = [
    Enrolment(program_id=p.id, participant_id="p1", start=date(2026, 1, 1))
    for p in ORGANISATION.programs
]


INPUTS = PlanInputs(
    organisation=ORGANISATION,
    intents=[
        attrs.evolve(e, id=f"e{i}", recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
        for i, e in enumerate(ROSTER)
    ],
)


def instance_of(program_id: str, day: date) -> Instance:
    (inst,) = [i for i in plan_day(INPUTS, day).instances if i.program_id == program_id]
    return inst


def real_duration(inst: Instance) -> timedelta:
    return inst.end.astimezone(UTC) - inst.start.astimezone(UTC)


def codes(inst: Instance) -> set[str]:
    return {w.code for w in inst.warnings}


# --------------------------------------------------------------------------- instance times


@pytest.mark.parametrize(
    ("day", "offset"),
    [
        (date(2026, 4, 4), AEDT),
        (FALL_BACK, AEST),
        (date(2026, 4, 6), AEST),
        (date(2026, 10, 3), AEST),
        (SPRING_FORWARD, AEDT),
        (date(2026, 10, 5), AEDT),
    ],
)
def test_a_daytime_program_keeps_its_wall_clock_times_and_six_hours(
    day: date, offset: timedelta
) -> None:
    inst = instance_of("day", day)
    assert inst.start == datetime.combine(day, time(9, 0), tzinfo=SYDNEY)
    assert inst.end == datetime.combine(day, time(15, 0), tzinfo=SYDNEY)
    assert inst.start.utcoffset() == offset
    assert inst.end.utcoffset() == offset
    assert real_duration(inst) == timedelta(hours=6)
    assert inst.start.isoformat().endswith("+10:00" if offset == AEST else "+11:00")
    assert "dst-adjusted" not in codes(inst)


@pytest.mark.parametrize(
    ("day", "start_offset", "end_offset", "hours"),
    [
        (date(2026, 10, 3), AEST, AEST, 3),
        (SPRING_FORWARD, AEST, AEDT, 2),
        (date(2026, 4, 4), AEDT, AEDT, 3),
        (FALL_BACK, AEDT, AEST, 4),
    ],
)
def test_a_program_across_the_changeover_hour_runs_its_real_length(
    day: date, start_offset: timedelta, end_offset: timedelta, hours: int
) -> None:
    inst = instance_of("night", day)
    assert inst.start.astimezone(SYDNEY).time() == time(1, 0)
    assert inst.end.astimezone(SYDNEY).time() == time(4, 0)
    assert inst.start.utcoffset() == start_offset
    assert inst.end.utcoffset() == end_offset
    assert real_duration(inst) == timedelta(hours=hours)
    # 01:00 and 04:00 exist on both days: nothing was moved.
    assert "dst-adjusted" not in codes(inst)


def test_a_start_in_the_skipped_hour_moves_later_with_a_warning() -> None:
    inst = instance_of("late-start", SPRING_FORWARD)
    assert inst.start.astimezone(SYDNEY).replace(tzinfo=None) == datetime(2026, 10, 4, 3, 30)
    assert inst.start.utcoffset() == AEDT
    assert inst.start.astimezone(UTC) == datetime(2026, 10, 3, 16, 30, tzinfo=UTC)
    assert inst.end.astimezone(SYDNEY).time() == time(5, 0)
    assert real_duration(inst) == timedelta(hours=1, minutes=30)
    (warning,) = [w for w in inst.warnings if w.code == "dst-adjusted"]
    assert warning.instance_id == inst.id == "late-start/2026-10-04"
    assert warning.program_id == "late-start"


def test_an_end_in_the_skipped_hour_moves_later_with_a_warning() -> None:
    inst = instance_of("gap-end", SPRING_FORWARD)
    assert inst.start.astimezone(SYDNEY).time() == time(1, 0)
    assert inst.end.astimezone(SYDNEY).time() == time(3, 30)
    assert real_duration(inst) == timedelta(hours=1, minutes=30)
    assert "dst-adjusted" in codes(inst)


@pytest.mark.parametrize("day", [date(2026, 10, 3), date(2026, 10, 5), FALL_BACK])
def test_the_skipped_hour_exists_on_other_days(day: date) -> None:
    inst = instance_of("late-start", day)
    assert inst.start.astimezone(SYDNEY).time() == time(2, 30)
    assert "dst-adjusted" not in codes(inst)


def test_a_repeated_time_on_the_fall_back_day_is_its_first_occurrence() -> None:
    inst = instance_of("late-start", FALL_BACK)
    # 02:30 happens twice; the instance starts at the first (still daylight time).
    assert inst.start.utcoffset() == AEDT
    assert inst.start.astimezone(UTC) == datetime(2026, 4, 4, 15, 30, tzinfo=UTC)
    assert real_duration(inst) == timedelta(hours=3, minutes=30)


def test_a_time_given_as_its_second_occurrence_is_still_the_first() -> None:
    # time(2, 30, fold=1) names the second 02:30 of the fall-back night; the
    # rule is the first, whatever fold says. Were it honoured, the plan of
    # inputs that planned the day before the change would keep the first
    # occurrence where inputs built afresh took the second (equal datetimes
    # of one zone compare by wall time alone): the same plan, byte for
    # byte, either way
    second = OneDayChange(
        id="later",
        program_id="late-start",
        date=FALL_BACK,
        start_time=time(2, 30, fold=1),
        recorded_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    plan_day(INPUTS, FALL_BACK)  # what the inputs remember of the day
    warm = plan_day(INPUTS.updated(add=[second]), FALL_BACK)
    cold = plan_day(attrs.evolve(INPUTS, one_offs=[second]), FALL_BACK)
    (inst,) = [i for i in cold.instances if i.program_id == "late-start"]
    assert inst.start.utcoffset() == AEDT
    assert [s.start.utcoffset() for s in inst.shifts] == [AEDT] * len(inst.shifts)
    assert repr(warm) == repr(cold)


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize("weeks", range(2, 17))
@pytest.mark.parametrize("offset", [-8, -1, 0, 1])
@pytest.mark.parametrize("transition", TRANSITIONS)
def test_windows_across_a_transition_hold_exactly_7n_days(
    transition: date, offset: int, weeks: int
) -> None:
    today = transition + timedelta(days=offset)
    window = window_for(today, weeks)
    days = list(window.days())
    assert len(window) == len(days) == 7 * weeks
    assert days[0] == today
    assert days[-1] == today + timedelta(days=7 * weeks - 1)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))


@pytest.mark.parametrize(
    ("local", "today"),
    [
        (datetime(2026, 10, 4, 1, 59), SPRING_FORWARD),
        (datetime(2026, 10, 4, 3, 0), SPRING_FORWARD),
        (datetime(2026, 10, 4, 23, 59), SPRING_FORWARD),
        (datetime(2026, 4, 5, 2, 30), FALL_BACK),
        (datetime(2026, 4, 5, 23, 59), FALL_BACK),
        (datetime(2026, 4, 4, 23, 59), date(2026, 4, 4)),
    ],
)
def test_the_service_window_starts_on_the_local_date(local: datetime, today: date) -> None:
    loom = Loom(MemoryStore(), clock=ManualClock(local.replace(tzinfo=SYDNEY)))
    assert loom.today() == today
    window = loom.window()
    assert window.start == today
    assert len(window) == 28


def test_the_repeated_hour_belongs_to_the_fall_back_day() -> None:
    first = datetime(2026, 4, 4, 15, 30, tzinfo=UTC)  # 02:30 AEDT
    second = datetime(2026, 4, 4, 16, 30, tzinfo=UTC)  # 02:30 AEST
    for instant in (first, second):
        assert Loom(MemoryStore(), clock=ManualClock(instant)).today() == FALL_BACK


# --------------------------------------------------------------------------- next roll


@pytest.mark.parametrize(
    ("roll_day", "offset"),
    [
        (date(2026, 4, 4), AEDT),
        (FALL_BACK, AEDT),  # 00:05 is before the 03:00 change
        (date(2026, 4, 6), AEST),
        (date(2026, 10, 3), AEST),
        (SPRING_FORWARD, AEST),  # 00:05 is before the 02:00 change
        (date(2026, 10, 5), AEDT),
    ],
)
def test_next_roll_is_at_00_05_local_on_and_around_transition_days(
    roll_day: date, offset: timedelta
) -> None:
    loom = Loom(MemoryStore())
    # Noon the day before: the next roll is 00:05 on roll_day.
    now = datetime.combine(roll_day - timedelta(days=1), time(12), tzinfo=SYDNEY)
    nxt = loom.health(now).next_roll_at
    assert nxt.astimezone(SYDNEY).replace(tzinfo=None) == datetime.combine(roll_day, time(0, 5))
    assert nxt.utcoffset() == offset
    assert nxt > now


@pytest.mark.parametrize(
    ("transition", "hours_between"),
    [(SPRING_FORWARD, 23), (FALL_BACK, 25)],
)
def test_the_roll_after_a_transition_day_comes_after_its_real_length(
    transition: date, hours_between: int
) -> None:
    loom = Loom(MemoryStore())
    on_the_day = loom.health(datetime.combine(transition, time(0), tzinfo=SYDNEY)).next_roll_at
    after = loom.health(on_the_day).next_roll_at
    assert after.astimezone(SYDNEY).date() == transition + timedelta(days=1)
    assert after.astimezone(UTC) - on_the_day.astimezone(UTC) == timedelta(hours=hours_between)


def instants(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out = []
    t = start.astimezone(UTC)
    while t <= end:
        out.append(t)
        t += step
    return out


@pytest.mark.parametrize("step", [timedelta(hours=1), timedelta(minutes=5)])
@pytest.mark.parametrize("transition", TRANSITIONS)
def test_next_roll_is_one_per_local_date_never_two_never_skipped(
    transition: date, step: timedelta
) -> None:
    loom = Loom(MemoryStore())
    span = timedelta(days=3) if step >= timedelta(hours=1) else timedelta(days=1)
    start = datetime.combine(transition, time(0), tzinfo=SYDNEY) - span
    end = datetime.combine(transition, time(0), tzinfo=SYDNEY) + span
    seen: list[datetime] = []
    for now in instants(start, end, step):
        nxt = loom.health(now).next_roll_at
        local_now = now.astimezone(SYDNEY)
        expected_day = local_now.date() + timedelta(days=local_now.time() >= time(0, 5))
        assert nxt > now
        assert nxt.astimezone(SYDNEY).time() == time(0, 5)
        assert nxt.astimezone(SYDNEY).date() == expected_day, now
        if not seen or seen[-1] != nxt:
            seen.append(nxt)
    roll_days = [t.astimezone(SYDNEY).date() for t in seen]
    assert len(set(roll_days)) == len(roll_days), "two roll times on one local date"
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(roll_days)), (
        "a local date has no roll"
    )
    assert transition in roll_days
    assert transition + timedelta(days=1) in roll_days


# --------------------------------------------------------------------------- the service overnight


@pytest.mark.parametrize("weeks", [2, 4])
@pytest.mark.parametrize("transition", TRANSITIONS)
def test_an_hourly_clock_rolls_each_local_day_once_across_a_transition(
    transition: date, weeks: int
) -> None:
    clock = ManualClock(datetime.combine(transition - timedelta(days=4), time(12), tzinfo=SYDNEY))
    loom = Loom(MemoryStore(), clock=clock, id_factory=IdCounter())
    loom.load(ORGANISATION, ROSTER, weeks=weeks)
    loom.roll()
    next_roll = loom.health().next_roll_at
    end = datetime.combine(transition + timedelta(days=4), time(12), tzinfo=SYDNEY)
    while clock() < end:
        now = clock.advance(timedelta(hours=1))
        if now >= next_roll:
            entry = loom.roll()
            assert entry.status == "ok"
            next_roll = loom.health().next_roll_at

    log = loom.roll_log()
    todays = [e.today for e in log]
    first = transition - timedelta(days=4)
    assert todays == [first + timedelta(days=k) for k in range(9)]
    # The first roll found the loaded window complete; every later roll plans
    # exactly the one day that entered the window.
    assert [e.days_planned for e in log] == [0] + [1] * 8
    for e in log[1:]:
        started = e.started_at.astimezone(SYDNEY)
        assert started.date() == e.today
        assert time(0, 5) <= started.time() <= time(1, 5)

    health = loom.health()
    assert health.status == "ok"
    assert health.missing_days == ()
    assert health.stale_days == ()
    window = loom.window()
    stored = [p.date for p in loom.store.planned_days(window.start, window.end)]
    assert stored == list(window.days())
    assert len(stored) == 7 * weeks
    # Each local date from the first window's start to the last window's end
    # was planned once: by the load, or by the one roll that brought it in.
    all_days = [p.date for p in loom.store.planned_days()]
    assert all_days == [first + timedelta(days=k) for k in range(8 + 7 * weeks)]

    retracted = {r.target_id for r in loom.store.retractions()}
    active = [r for r in loom.store.records() if r.id not in retracted]
    inputs = PlanInputs(
        organisation=ORGANISATION,
        catalogue=loom.catalogue,
        intents=[r for r in active if isinstance(r, Intent)],
        one_offs=[r for r in active if isinstance(r, OneOff)],
    )
    for d in window.days():
        assert loom.day(d) == plan_day(inputs, d)


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_a_roll_late_on_the_transition_night_catches_up_once(transition: date) -> None:
    clock = ManualClock(datetime.combine(transition - timedelta(days=2), time(12), tzinfo=SYDNEY))
    loom = Loom(MemoryStore(), clock=clock, id_factory=IdCounter())
    loom.load(ORGANISATION, ROSTER, weeks=2)
    # Missed the 00:05 rolls of the day before and of the transition day.
    clock.set(datetime.combine(transition, time(4, 0), tzinfo=SYDNEY))
    assert loom.health().status == "late"
    entry = loom.roll()
    assert entry.days_planned == 2
    assert loom.roll().days_planned == 0
    assert loom.health().status == "ok"
