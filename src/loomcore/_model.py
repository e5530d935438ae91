"""Reference data: the organisation, its venues, people, vehicles and programs.

All value objects are frozen attrs classes, validated when built and changed
with :func:`attrs.evolve`. Collections inside them are tuples or frozensets.
Ids are plain strings chosen by the host (UUIDs or readable slugs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, time
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from ._billing import BillingSettings
from ._errors import DuplicateIdError, InvalidRecordError, UnknownVenueError
from ._recurrence import Recurrence, Weekday, check_date, to_weekday

__all__ = [
    "Availability",
    "Location",
    "Organisation",
    "Participant",
    "Program",
    "Staff",
    "StaffingRule",
    "Vehicle",
    "Venue",
]


def _nonblank(inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecordError(
            f"{type(inst).__name__}.{attribute.name} must be a non-empty string",
            field=attribute.name,
        )


def _non_negative(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise InvalidRecordError(
            f"{type(inst).__name__} {getattr(inst, 'id', '')!r}: {attribute.name} "
            f"must not be negative, got {value}",
            record_id=str(getattr(inst, "id", "")),
            field=attribute.name,
        )


def _decimal(value: object) -> Decimal:
    # via str, so 1.1 means 1.1 and not its binary approximation; what is
    # not a number is kept as given, for _finite to refuse by its field
    try:
        return Decimal(str(value)) if isinstance(value, float) else Decimal(value)  # type: ignore[arg-type]
    except (ArithmeticError, TypeError, ValueError):
        return value  # type: ignore[return-value]


def _not_negative(inst: object, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is not None and value < 0:
        raise _refused(inst, attribute, f"must not be negative, got {value}")


def _finite(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: a finite number (``None`` too where that is the default)."""
    if value is None and attribute.default is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _refused(inst, attribute, f"must be a finite number, got {value!r}")


def _refused(inst: object, attribute: attrs.Attribute[Any], why: str) -> InvalidRecordError:
    """The error for a value of ``attribute`` of ``inst`` (a participant, staff
    member or vehicle, named by its id) refused ``why``."""
    owner = getattr(inst, "id", "")
    return InvalidRecordError(
        f"{type(inst).__name__.lower()} {owner!r}: {attribute.name} {why}",
        record_id=owner,
        field=attribute.name,
    )


def _degrees(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidRecordError(f"not a number of degrees: {value!r}", field="location") from None


@attrs.frozen(kw_only=True, cache_hash=True)
class Location:
    """A point on the map, WGS 84 degrees."""

    lat: float = attrs.field(converter=_degrees)
    lon: float = attrs.field(converter=_degrees)

    def __attrs_post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise InvalidRecordError(f"location out of range: ({self.lat}, {self.lon})")


@attrs.frozen(kw_only=True)
class Venue:
    """Where a program takes place. Over ``capacity`` is a warning, never a refusal."""

    id: str = attrs.field(validator=_nonblank)
    name: str
    capacity: int = attrs.field(validator=_non_negative)
    location: Location | None = None
    address: str = ""


@attrs.frozen(kw_only=True)
class Participant:
    """A person supported by the provider.

    ``supervision_weight`` scales how much staffing the person needs when a
    program's staffing rule is weighted (default 1).
    """

    id: str = attrs.field(validator=_nonblank)
    name: str
    ndis_number: str = ""
    pickup: Location | None = None
    needs_transport: bool = False
    wheelchair: bool = False
    supervision_weight: Decimal = attrs.field(
        default=Decimal(1), converter=_decimal, validator=_finite
    )

    def __attrs_post_init__(self) -> None:
        if self.ndis_number and not (self.ndis_number.isdigit() and len(self.ndis_number) == 9):
            raise InvalidRecordError(
                f"participant {self.id!r}: NDIS number must be 9 digits, got {self.ndis_number!r}",
                record_id=self.id,
                field="ndis_number",
            )
        if self.supervision_weight <= 0:
            raise InvalidRecordError(
                f"participant {self.id!r}: supervision_weight must be positive",
                record_id=self.id,
                field="supervision_weight",
            )


@attrs.frozen(kw_only=True)
class Availability:
    """A weekly window in which a staff member can work, local times."""

    weekday: Weekday = attrs.field(converter=to_weekday)
    start: time
    end: time

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidRecordError(
                f"availability on {self.weekday.name} ends {self.end.isoformat('minutes')}, "
                f"not after {self.start.isoformat('minutes')}",
                field="end",
            )

    def covers(self, weekday: int, start: time, end: time) -> bool:
        """Whether ``[start, end]`` on ``weekday`` lies inside this window."""
        return weekday == self.weekday and self.start <= start and end <= self.end


def _availability(value: Iterable[Availability]) -> tuple[Availability, ...]:
    return tuple(sorted(value, key=lambda a: (a.weekday, a.start, a.end)))


@attrs.frozen(kw_only=True)
class Staff:
    """A worker who can be rostered.

    ``availability`` lists the weekly windows the person can work in; empty
    means any time. ``max_hours_per_day`` caps the hours of their shifts on
    one day (``None``: no cap). Leave is an intent (:class:`StaffLeave`).
    """

    id: str = attrs.field(validator=_nonblank)
    name: str
    lead_capable: bool = False
    driver: bool = False
    availability: tuple[Availability, ...] = attrs.field(default=(), converter=_availability)
    max_hours_per_day: Decimal | None = attrs.field(
        default=None, converter=attrs.converters.optional(_decimal), validator=_finite
    )

    def available(self, weekday: int, start: time, end: time) -> bool:
        """Whether the weekly availability allows working ``[start, end]`` that weekday."""
        return not self.availability or any(
            a.covers(weekday, start, end) for a in self.availability
        )


@attrs.frozen(kw_only=True)
class Vehicle:
    """A vehicle. ``seats`` counts every seat, the driver's included.

    ``kind`` (``bus``, also for a modified vehicle, or ``car``) sets the NDIS
    per-km limit for transport costs; ``cost_per_km`` is the rate agreed with
    participants (``None``: the limit).
    """

    id: str = attrs.field(validator=_nonblank)
    name: str
    seats: int = attrs.field(validator=_non_negative)
    wheelchair_places: int = attrs.field(default=0, validator=_non_negative)
    depot: Location | None = None
    kind: str = attrs.field(default="bus")
    cost_per_km: Decimal | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(_decimal),
        validator=[_finite, _not_negative],
    )

    @kind.validator
    def _kind(self, _a: attrs.Attribute[str], value: str) -> None:
        if value not in ("bus", "car"):
            raise InvalidRecordError(
                f"vehicle {self.id!r}: kind must be 'bus' or 'car', got {value!r}",
                record_id=self.id,
                field="kind",
            )


@attrs.frozen(kw_only=True)
class StaffingRule:
    """How many workers an instance needs.

    The formula, for ``n`` attending participants::

        leads   = self.leads                              if n > 0 else 0
        support = ceil(load / self.participants_per_support)
        load    = n, or the sum of supervision weights when ``weighted``

    The default is the seeds' rule: one lead plus one support worker per five
    participants (1–5 → 1 support, 6–10 → 2, …). An instance with nobody
    attending needs no staff and is flagged ``empty-instance``.
    """

    leads: int = attrs.field(default=1, validator=_non_negative)
    participants_per_support: int = attrs.field(default=5)
    weighted: bool = False

    @participants_per_support.validator
    def _positive(self, _a: attrs.Attribute[int], value: int) -> None:
        if value <= 0:
            raise InvalidRecordError(
                f"participants_per_support must be positive, got {value}",
                field="participants_per_support",
            )

    def demand(self, attending: int, load: Decimal) -> tuple[int, int]:
        """``(leads, support)`` for ``attending`` people of total ``load``."""
        if attending <= 0:
            return (0, 0)
        basis = load if self.weighted else Decimal(attending)
        return (self.leads, math.ceil(basis / self.participants_per_support))


@attrs.frozen(kw_only=True)
class Program:
    """A recurring group program: the template its instances come from.

    Times are local wall-clock times in the organisation's timezone; an
    instance ends on the day it starts (``end_time`` after ``start_time``).
    The program runs on the dates of its recurrence between ``active_from``
    and ``active_until`` (inclusive, open when ``None``), unless intents say
    otherwise.
    """

    id: str = attrs.field(validator=_nonblank)
    name: str
    recurrence: Recurrence
    start_time: time
    end_time: time
    venue_id: str = attrs.field(validator=_nonblank)
    staffing: StaffingRule = attrs.field(factory=StaffingRule)
    transport: bool = False
    billing: BillingSettings = attrs.field(factory=BillingSettings)
    active_from: date = attrs.field(validator=check_date)
    active_until: date | None = attrs.field(default=None, validator=check_date)

    def __attrs_post_init__(self) -> None:
        if self.end_time <= self.start_time:
            raise InvalidRecordError(
                f"program {self.id!r}: end_time {self.end_time.isoformat('minutes')} is not "
                f"after start_time {self.start_time.isoformat('minutes')}",
                record_id=self.id,
                field="end_time",
            )
        if self.active_until is not None and self.active_until < self.active_from:
            raise InvalidRecordError(
                f"program {self.id!r}: active_until {self.active_until.isoformat()} is before "
                f"active_from {self.active_from.isoformat()}",
                record_id=self.id,
                field="active_until",
            )


_T = TypeVar("_T", Venue, Participant, Staff, Vehicle, Program)


def _sorted_unique(kind: str, items: Iterable[_T]) -> tuple[_T, ...]:
    seen: dict[str, _T] = {}
    for item in items:
        if item.id in seen:
            raise DuplicateIdError(kind, item.id)
        seen[item.id] = item
    return tuple(seen[k] for k in sorted(seen))


def _venues(v: Iterable[Venue]) -> tuple[Venue, ...]:
    return _sorted_unique("venue", v)


def _participants(v: Iterable[Participant]) -> tuple[Participant, ...]:
    return _sorted_unique("participant", v)


def _staff(v: Iterable[Staff]) -> tuple[Staff, ...]:
    return _sorted_unique("staff member", v)


def _vehicles(v: Iterable[Vehicle]) -> tuple[Vehicle, ...]:
    return _sorted_unique("vehicle", v)


def _programs(v: Iterable[Program]) -> tuple[Program, ...]:
    return _sorted_unique("program", v)


@attrs.frozen(kw_only=True)
class Organisation:
    """Everything that is not a dated record: the provider's reference data.

    ``registration_number`` (NDIS provider registration) and ``abn`` go on
    the claim files.

    Collections are kept sorted by id, so two organisations built from the
    same items in any order are equal. Every program's venue must exist.
    """

    name: str = ""
    registration_number: str = ""
    abn: str = ""
    venues: tuple[Venue, ...] = attrs.field(default=(), converter=_venues)
    participants: tuple[Participant, ...] = attrs.field(default=(), converter=_participants)
    staff: tuple[Staff, ...] = attrs.field(default=(), converter=_staff)
    vehicles: tuple[Vehicle, ...] = attrs.field(default=(), converter=_vehicles)
    programs: tuple[Program, ...] = attrs.field(default=(), converter=_programs)

    def __attrs_post_init__(self) -> None:
        venue_ids = {v.id for v in self.venues}
        for p in self.programs:
            if p.venue_id not in venue_ids:
                raise UnknownVenueError(p.venue_id, named_by=f"program {p.id!r}")

    def with_item(self, item: Venue | Participant | Staff | Vehicle | Program) -> Organisation:
        """A copy with ``item`` added, or replacing the item with the same id.

        Raises :class:`InvalidRecordError` for anything but a venue,
        participant, staff member, vehicle or program.
        """
        field = {
            Venue: "venues",
            Participant: "participants",
            Staff: "staff",
            Vehicle: "vehicles",
            Program: "programs",
        }.get(type(item))
        if field is None:
            raise InvalidRecordError(
                "an organisation holds venues, participants, staff, vehicles and "
                f"programs, not {type(item).__name__}: {item!r}",
                field="item",
            )
        others = [x for x in getattr(self, field) if x.id != item.id]
        changes: dict[str, Any] = {field: [*others, item]}
        return attrs.evolve(self, **changes)
