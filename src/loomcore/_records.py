"""Dated records: intents (from a date forward) and one-offs (one date only).

The seeds call one-date records "exceptions"; in code they are *one-offs*
(:class:`OneOff`) so no reader confuses them with Python errors. The docs and
the Postgres table keep the word "exception".

Every record carries ``id``, ``recorded_at`` (aware UTC) and ``recorded_by``.
Build records without them; :meth:`loomcore.Loom.record` fills them in. The
planning core needs them filled (they break ties and name provenance).

Each intent answers one or more *questions* about a date (is this
participant enrolled? what is the program's start time?). :func:`answers`
lists them as ``(key, value)`` pairs: the one rule of resolution works on
keys alone and never needs to know the kind of intent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

import attrs

from ._billing import ItemChoice
from ._errors import InvalidDateRangeError, InvalidRecordError
from ._model import StaffingRule
from ._recurrence import Recurrence, check_date

__all__ = [
    "Absence",
    "Cancellation",
    "Enrolment",
    "ExtraAttendance",
    "Intent",
    "OneDayChange",
    "OneOff",
    "ProgramChange",
    "Record",
    "Reschedule",
    "Retraction",
    "StaffLeave",
    "StaffPin",
    "StaffReturn",
    "StaffSwap",
    "StaffUnpin",
    "VehicleMaintenance",
    "VehiclePin",
    "VehicleReturn",
    "VehicleUnpin",
    "Withdrawal",
]


def _nonblank(inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecordError(
            f"{type(inst).__name__}.{attribute.name} must be a non-empty string",
            record_id=str(getattr(inst, "id", "")),
            field=attribute.name,
        )


def _aware(inst: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidRecordError(
            "recorded_at must be timezone-aware",
            record_id=str(getattr(inst, "id", "")),
            field=attribute.name,
        )


@attrs.frozen(kw_only=True)
class _Recorded:
    id: str = ""
    recorded_at: datetime | None = attrs.field(default=None, validator=_aware)
    recorded_by: str = ""
    note: str = ""


# --------------------------------------------------------------------------- intents


@attrs.frozen(kw_only=True)
class Intent(_Recorded):
    """Base of every intent: holds for ``[start, end]`` (``end`` open when ``None``).

    ``program_id`` names the program the intent is about; it is empty for
    intents about a person or a vehicle (:data:`RESOURCE_INTENTS`).
    """

    program_id: str = attrs.field(validator=_nonblank)
    start: date = attrs.field(validator=check_date)
    end: date | None = attrs.field(default=None, validator=check_date)

    def __attrs_post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise InvalidDateRangeError(
                self.start, self.end, f"intent {self.id or type(self).__name__}"
            )

    def covers(self, day: date) -> bool:
        """Whether ``day`` lies in ``[start, end]``."""
        return self.start <= day and (self.end is None or day <= self.end)


@attrs.frozen(kw_only=True)
class Enrolment(Intent):
    """The participant attends the program from ``start`` (until ``end``).

    ``items`` replaces the program's billing items for this participant
    (``None``: the program's); the one rule resolves it like the enrolment.
    """

    participant_id: str = attrs.field(validator=_nonblank)
    items: ItemChoice | None = None


@attrs.frozen(kw_only=True)
class Withdrawal(Intent):
    """The participant no longer attends the program from ``start`` (until ``end``)."""

    participant_id: str = attrs.field(validator=_nonblank)


_PROGRAM_FIELDS = (
    "start_time",
    "end_time",
    "venue_id",
    "recurrence",
    "staffing",
    "transport",
    "runs",
)


@attrs.frozen(kw_only=True)
class ProgramChange(Intent):
    """Change how a program runs from ``start`` (until ``end``).

    Only the fields given (not ``None``) change; each is its own question
    under the one rule, so a later change of venue does not undo an earlier
    change of time. ``runs=False`` suspends the program (with an ``end``) or
    ends it (without); ``runs=True`` brings it back.

    To "change then revert", record a second change from the revert date that
    sets the template's value again.
    """

    start_time: time | None = None
    end_time: time | None = None
    venue_id: str | None = None
    recurrence: Recurrence | None = None
    staffing: StaffingRule | None = None
    transport: bool | None = None
    runs: bool | None = None

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if all(getattr(self, f) is None for f in _PROGRAM_FIELDS):
            raise InvalidRecordError(
                "a program change must change at least one of " + ", ".join(_PROGRAM_FIELDS),
                record_id=self.id,
            )
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise InvalidRecordError(
                f"end_time {self.end_time.isoformat('minutes')} is not after start_time "
                f"{self.start_time.isoformat('minutes')}",
                record_id=self.id,
                field="end_time",
            )

    def changes(self) -> dict[str, Any]:
        """The fields this change sets, by name."""
        return {f: getattr(self, f) for f in _PROGRAM_FIELDS if getattr(self, f) is not None}


@attrs.frozen(kw_only=True)
class StaffPin(Intent):
    """This staff member works every instance of the program from ``start``."""

    staff_id: str = attrs.field(validator=_nonblank)


@attrs.frozen(kw_only=True)
class StaffUnpin(Intent):
    """Undo a :class:`StaffPin` from ``start`` (until ``end``)."""

    staff_id: str = attrs.field(validator=_nonblank)


@attrs.frozen(kw_only=True)
class VehiclePin(Intent):
    """This vehicle serves the program from ``start``."""

    vehicle_id: str = attrs.field(validator=_nonblank)


@attrs.frozen(kw_only=True)
class VehicleUnpin(Intent):
    """Undo a :class:`VehiclePin` from ``start`` (until ``end``)."""

    vehicle_id: str = attrs.field(validator=_nonblank)


@attrs.frozen(kw_only=True)
class StaffLeave(Intent):
    """The staff member is on leave (unavailable) from ``start`` until ``end``.

    Leave concerns a person, not a program: ``program_id`` is always empty.
    To cut leave short, record a :class:`StaffReturn` from the day they are
    back (or retract the leave).
    """

    program_id: str = attrs.field(default="", init=False)
    staff_id: str = attrs.field(validator=_nonblank)
    reason: str = ""


@attrs.frozen(kw_only=True)
class StaffReturn(Intent):
    """Undo :class:`StaffLeave` from ``start`` (until ``end``)."""

    program_id: str = attrs.field(default="", init=False)
    staff_id: str = attrs.field(validator=_nonblank)


@attrs.frozen(kw_only=True)
class VehicleMaintenance(Intent):
    """The vehicle is out of service from ``start`` until ``end``.

    Maintenance concerns a vehicle, not a program: ``program_id`` is always
    empty. Record a :class:`VehicleReturn` to bring it back earlier.
    """

    program_id: str = attrs.field(default="", init=False)
    vehicle_id: str = attrs.field(validator=_nonblank)
    reason: str = ""


@attrs.frozen(kw_only=True)
class VehicleReturn(Intent):
    """Undo :class:`VehicleMaintenance` from ``start`` (until ``end``)."""

    program_id: str = attrs.field(default="", init=False)
    vehicle_id: str = attrs.field(validator=_nonblank)


#: Intents about a person or a vehicle rather than a program. They can
#: change every instance of the days they cover.
RESOURCE_INTENTS = (StaffLeave, StaffReturn, VehicleMaintenance, VehicleReturn)

#: A question an intent answers: ("enrolled", program, participant),
#: ("field", program, field name), ("staff", program, staff),
#: ("vehicle", program, vehicle), ("leave", "", staff) or
#: ("maintenance", "", vehicle).
Key = tuple[str, str, str]


def answers(intent: Intent) -> Iterator[tuple[Key, Any]]:
    """The ``(question, answer)`` pairs an intent gives on every day it covers."""
    p = intent.program_id
    if isinstance(intent, Enrolment | Withdrawal):
        yield ("enrolled", p, intent.participant_id), isinstance(intent, Enrolment)
        if isinstance(intent, Enrolment):
            yield ("items", p, intent.participant_id), intent.items
    elif isinstance(intent, ProgramChange):
        for name, value in intent.changes().items():
            yield ("field", p, name), value
    elif isinstance(intent, StaffPin | StaffUnpin):
        yield ("staff", p, intent.staff_id), isinstance(intent, StaffPin)
    elif isinstance(intent, VehiclePin | VehicleUnpin):
        yield ("vehicle", p, intent.vehicle_id), isinstance(intent, VehiclePin)
    elif isinstance(intent, StaffLeave | StaffReturn):
        yield ("leave", "", intent.staff_id), isinstance(intent, StaffLeave)
    elif isinstance(intent, VehicleMaintenance | VehicleReturn):
        yield ("maintenance", "", intent.vehicle_id), isinstance(intent, VehicleMaintenance)
    else:  # pragma: no cover - every subclass is listed above
        raise TypeError(f"unknown intent type {type(intent).__name__}")


# --------------------------------------------------------------------------- one-offs


@attrs.frozen(kw_only=True)
class OneOff(_Recorded):
    """Base of every one-off (the seeds' "exception"): applies on ``date`` only.

    ``date`` is the date the instance takes place on. One-offs win over
    intents on their date.
    """

    program_id: str = attrs.field(validator=_nonblank)
    date: date = attrs.field(validator=check_date)

    def dates(self) -> tuple[dt.date, ...]:
        """Every date whose plan this one-off can change."""
        return (self.date,)


@attrs.frozen(kw_only=True)
class Cancellation(OneOff):
    """The whole instance on ``date`` is cancelled (it stays listed, as cancelled)."""

    reason: str = ""


@attrs.frozen(kw_only=True)
class Absence(OneOff):
    """One participant's attendance on ``date`` is cancelled.

    ``notified_on`` is the local date the provider was told (the service
    fills in the day of recording when it is missing); ``no_show`` marks a
    participant who did not turn up without notice. Notice is counted in
    clear days: the days strictly between ``notified_on`` and ``date``.
    ``reason_code`` is the NDIS cancellation reason (NSDH, NSDF, NSDT, NSDO).
    """

    participant_id: str = attrs.field(validator=_nonblank)
    reason: str = ""
    reason_code: str = attrs.field(default="NSDO")
    notified_on: date | None = attrs.field(default=None, validator=check_date)
    no_show: bool = False

    @reason_code.validator
    def _code(self, _a: attrs.Attribute[str], value: str) -> None:
        if value not in ("NSDH", "NSDF", "NSDT", "NSDO"):
            raise InvalidRecordError(
                f"reason_code must be one of NSDH, NSDF, NSDT, NSDO; got {value!r}",
                record_id=self.id,
                field="reason_code",
            )

    def __attrs_post_init__(self) -> None:
        if self.notified_on is not None and self.notified_on > self.date:
            raise InvalidRecordError(
                f"notified_on {self.notified_on.isoformat()} is after the date "
                f"{self.date.isoformat()}; record a no-show instead",
                record_id=self.id,
                field="notified_on",
            )

    def clear_days_notice(self) -> int:
        """Whole days strictly between notification and the day; 0 for a no-show."""
        if self.no_show or self.notified_on is None:
            return 0
        return max(0, (self.date - self.notified_on).days - 1)


@attrs.frozen(kw_only=True)
class OneDayChange(OneOff):
    """Different times or venue for the instance on ``date`` only."""

    start_time: time | None = None
    end_time: time | None = None
    venue_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.start_time is None and self.end_time is None and self.venue_id is None:
            raise InvalidRecordError(
                "a one-day change must change start_time, end_time or venue_id",
                record_id=self.id,
            )
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise InvalidRecordError(
                "end_time is not after start_time", record_id=self.id, field="end_time"
            )


@attrs.frozen(kw_only=True)
class ExtraAttendance(OneOff):
    """A participant who is not enrolled attends the instance on ``date``."""

    participant_id: str = attrs.field(validator=_nonblank)


@attrs.frozen(kw_only=True)
class StaffSwap(OneOff):
    """On ``date`` only, ``in_staff_id`` works the instance instead of ``out_staff_id``.

    ``out_staff_id`` may be empty: then ``in_staff_id`` is added to the
    instance's staff for the day (a one-day pin).
    """

    out_staff_id: str = ""
    in_staff_id: str = attrs.field(validator=_nonblank)

    def __attrs_post_init__(self) -> None:
        if self.out_staff_id == self.in_staff_id:
            raise InvalidRecordError(
                f"a swap needs two different staff members, got {self.in_staff_id!r} twice",
                record_id=self.id,
                field="in_staff_id",
            )


@attrs.frozen(kw_only=True)
class Reschedule(OneOff):
    """The instance of ``date`` takes place on ``to_date`` instead.

    The moved instance keeps its id (program and scheduled date) and is
    planned as the program stands on ``to_date``, with the times and venue
    given here when they are.
    """

    to_date: date = attrs.field(validator=check_date)
    start_time: time | None = None
    end_time: time | None = None
    venue_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.to_date == self.date:
            raise InvalidRecordError(
                f"to_date equals date {self.date.isoformat()}; use a one-day change",
                record_id=self.id,
                field="to_date",
            )
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise InvalidRecordError(
                "end_time is not after start_time", record_id=self.id, field="end_time"
            )

    def dates(self) -> tuple[date, ...]:
        return (self.date, self.to_date)


@attrs.frozen(kw_only=True)
class Retraction:
    """Withdraws an intent or one-off. The record itself is kept forever."""

    id: str = ""
    target_id: str = attrs.field(validator=_nonblank)
    recorded_at: datetime | None = attrs.field(default=None, validator=_aware)
    recorded_by: str = ""
    reason: str = ""


Record = Intent | OneOff
