"""What a record touches: its affected days, its references, whether it fits.

Pure functions the service uses when recording, retracting and rolling:

* :func:`affected_days` — the days whose plan a record (added or retracted)
  can change; the service re-plans exactly those, and the roll uses the
  same function to find stale days.
* :func:`check_references` — every id a record names exists.
* :func:`validate_record` — the record fits the plans (an exception names a
  date with an instance, an absence names someone on it, …).
* :func:`describe` — a one-line summary for logs and tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, time, timedelta

from ._errors import (
    InvalidRecordError,
    NoInstanceError,
    UnknownIdError,
    UnknownParticipantError,
    UnknownProgramError,
    UnknownStaffError,
    UnknownVehicleError,
    UnknownVenueError,
)
from ._inputs import PlanInputs
from ._model import Organisation
from ._plan import has_instance, is_scheduled, rosters
from ._records import (
    RESOURCE_INTENTS,
    Absence,
    ExtraAttendance,
    Intent,
    OneDayChange,
    OneOff,
    ProgramChange,
    Record,
    Reschedule,
)
from ._store import Change
from ._window import Window, days_between

__all__ = [
    "affected_days",
    "change_days",
    "check_references",
    "days_between",
    "describe",
    "unknown_references",
    "validate_record",
]

_ONE_DAY = timedelta(days=1)


def affected_days(record: Record, inputs: PlanInputs, start: date, end: date) -> set[date]:
    """The days in ``[start, end]`` whose plan ``record`` (added or retracted) can change.

    A one-off: its dates (for a reschedule, also where the other moves of
    its date land). An intent about a program: the covered days on which
    the program has an instance, or every covered day when it changes the
    recurrence or whether the program runs; plus the landing days of moves
    whose origin it covers. Leave and maintenance: every covered day.
    """
    if isinstance(record, OneOff):
        days = set(record.dates())
        if isinstance(record, Reschedule):
            # the latest move of a date wins, so adding or retracting one
            # changes where the other moves of that date land
            days.update(
                m.to_date for m in inputs.reschedules(record.program_id) if m.date == record.date
            )
        return {d for d in days if start <= d <= end}
    lo = max(record.start, start)
    hi = end if record.end is None else min(record.end, end)
    covered = days_between(lo, hi)
    moves = inputs.reschedules(record.program_id)
    if isinstance(record, RESOURCE_INTENTS) or _moves_the_schedule(record):
        # staff and vehicles are shared by every instance of a day; a change
        # of recurrence or of whether the program runs can add any day
        out = set(covered)
    else:
        # otherwise the program's instances stay on the same days: only those
        # days (and days an instance is moved onto) can change
        landings = {m.to_date for m in moves}
        out = {d for d in covered if d in landings or is_scheduled(inputs, record.program_id, d)}
    for move in moves:
        if record.covers(move.date) and start <= move.to_date <= end:
            out.add(move.to_date)
    return out


def _moves_the_schedule(intent: Intent) -> bool:
    return isinstance(intent, ProgramChange) and (
        intent.recurrence is not None or intent.runs is not None
    )


def change_days(change: Change, inputs: PlanInputs, window: Window) -> Iterable[date]:
    if change.record is None:
        return window.days()
    return affected_days(change.record, inputs, window.start, window.end)


#: Which attribute of a record names what, and the error for an unknown id.
_REFERENCES: tuple[tuple[str, str, type[UnknownIdError]], ...] = (
    ("participant_id", "participants", UnknownParticipantError),
    ("staff_id", "staff", UnknownStaffError),
    ("in_staff_id", "staff", UnknownStaffError),
    ("out_staff_id", "staff", UnknownStaffError),
    ("vehicle_id", "vehicles", UnknownVehicleError),
    ("venue_id", "venues", UnknownVenueError),
)


def unknown_references(
    organisation: Organisation, record: Record
) -> Iterator[tuple[str, UnknownIdError]]:
    """``(attribute, error)`` for every id ``record`` names that ``organisation`` lacks.

    The program first (leave and maintenance name none), then participant,
    staff (``staff_id``, a swap's ``in_staff_id`` and ``out_staff_id``),
    vehicle and venue. Empty optional ids (a swap's ``out_staff_id``) name
    nothing.
    """
    known = _known(organisation)
    if not isinstance(record, RESOURCE_INTENTS) and record.program_id not in known["programs"]:
        yield "program_id", UnknownProgramError(record.program_id)
    for attribute, field, error in _REFERENCES:
        value = getattr(record, attribute, None)
        if value and value not in known[field]:
            yield attribute, error(value)


def check_references(organisation: Organisation, records: Iterable[Record]) -> None:
    """Raise for the first record that names something the organisation lacks."""
    for r in records:
        for _, error in unknown_references(organisation, r):
            raise error


# the ids of the organisation last asked about, by kind: an operator's
# edits are checked one at a time against the same organisation
_last_known: tuple[Organisation, dict[str, frozenset[str]]] | None = None


def _known(organisation: Organisation) -> dict[str, frozenset[str]]:
    """The ids the organisation holds, by kind; made once for the organisation last asked about."""
    global _last_known
    last = _last_known
    if last is not None and last[0] is organisation:
        return last[1]
    known = {
        field: frozenset(item.id for item in getattr(organisation, field))
        for field in ("programs", "participants", "staff", "vehicles", "venues")
    }
    _last_known = (organisation, known)
    return known


def describe(record: Record) -> str:
    """A one-line, human-readable summary of a record, for logs and tables."""
    span = ""
    if isinstance(record, Intent):
        span = f"from {record.start.isoformat()}" + (
            f" to {record.end.isoformat()}" if record.end else ""
        )
    else:
        span = f"on {record.date.isoformat()}"
    who = (
        getattr(record, "participant_id", None)
        or getattr(record, "staff_id", None)
        or getattr(record, "vehicle_id", None)
    )
    extra = ""
    if isinstance(record, ProgramChange):
        extra = " (" + ", ".join(f"{k}={_short(v)}" for k, v in record.changes().items()) + ")"
    elif isinstance(record, OneDayChange | Reschedule):
        fields = {k: getattr(record, k) for k in ("start_time", "end_time", "venue_id")}
        extra = " (" + ", ".join(f"{k}={_short(v)}" for k, v in fields.items() if v) + ")"
        if isinstance(record, Reschedule):
            extra = f" to {record.to_date.isoformat()}" + (extra if extra != " ()" else "")
    kind = type(record).__name__
    about = " ".join(part for part in (kind, record.program_id, who, span) if part)
    return about + extra


def _short(value: object) -> str:
    if isinstance(value, time):
        return value.isoformat("minutes")
    return str(value)


def validate_record(record: Record, inputs: PlanInputs) -> None:
    """Raise, as :meth:`Loom.record` does, when ``record`` cannot be recorded.

    Unknown ids, an exception on a date with no instance, an absence of
    someone not on the instance, an extra attendance of someone already on
    it.
    """
    check_references(inputs.organisation, (record,))
    if isinstance(record, OneOff):
        _validate_one_off(record, inputs)


def _validate_one_off(record: OneOff, inputs: PlanInputs) -> None:
    if isinstance(record, Reschedule):
        # moving a date that is already moved is allowed: the later move wins
        if not is_scheduled(inputs, record.program_id, record.date):
            raise NoInstanceError(record.program_id, record.date, record.id)
        return
    if not has_instance(inputs, record.program_id, record.date):
        raise NoInstanceError(record.program_id, record.date, record.id)
    if not isinstance(record, Absence | ExtraAttendance):
        return
    # who is on the instance for a reason other than this record itself
    on_instance = {
        a.participant_id
        for i in rosters(inputs, record.program_id, record.date)
        for a in i.allocations
        if set(a.provenance) - {record.id}
    }
    if isinstance(record, Absence) and record.participant_id not in on_instance:
        raise InvalidRecordError(
            f"participant {record.participant_id!r} is not on {record.program_id!r} on "
            f"{record.date.isoformat()}",
            record_id=record.id,
            field="participant_id",
        )
    if isinstance(record, ExtraAttendance) and record.participant_id in on_instance:
        raise InvalidRecordError(
            f"participant {record.participant_id!r} is already on {record.program_id!r} on "
            f"{record.date.isoformat()} (to undo an absence, retract it)",
            record_id=record.id,
            field="participant_id",
        )
