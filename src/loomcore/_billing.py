"""Pricing one instance's attendance: ``price_attendance(instance, ...) -> BillingLine``.

Theory of operation
-------------------
Every function here is pure: the caller builds the :class:`PriceCatalogue`
and the public holidays (:func:`nsw_public_holidays`) once, outside the
planning path, and passes them in. For one instance:

1. A provider-cancelled instance bills nothing. Otherwise the quantity is its
   real duration in hours, measured in UTC so a DST change counts right.
2. The *band* is decided day first, then time (:func:`band_of`): a public
   holiday beats a weekend day; Saturday; Sunday; on a weekday, daytime
   (06:00–20:00), evening (from 20:00, ends by midnight) or night (crosses
   midnight or starts before 06:00). A support spanning bands is billed at
   the higher band for all of it. The band picks the group activity item
   (:data:`GROUP_ACTIVITY_ITEMS`).
3. Billed participants are those attending plus those who cancelled at short
   notice (fewer clear days than the setting, 7 by default) or did not show.
   The group unit price is ``limit × workers ÷ participants`` rounded down to
   the cent and never above the limit, where ``participants`` counts every
   billed participant on the group item: a short-notice cancellation leaves
   the divisor as if the participant had come.
4. Attending participants get delivered lines: the group item, Centre Capital
   Cost per participant-hour (undivided) when the program claims it, extra
   items at their limit, and Activity Based Transport in dollars when they
   rode. Short-notice cancellations get CANC lines on the group and extra
   items at the cancellation percentage (100 by default) of the unit price.

Invariants
~~~~~~~~~~
1. The result depends on the arguments only; equal arguments give equal lines,
   sorted by participant, item and claim type.
2. Money and quantities are :class:`~decimal.Decimal` with two decimals,
   computed in a private decimal context (the host's context never changes a
   price) and always rounded down: loomcore never claims more than the rule.
3. No unit price is above the limit in force on the day of the support.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Context, Decimal, DivisionByZero, InvalidOperation, localcontext
from functools import lru_cache
from typing import Protocol

import attrs

from ._bands import (
    Band,
    HolidayCalendar,
    InvalidBillingInputError,
    NswPublicHolidays,
    band_between,
    band_of,
    nsw_public_holidays,
)
from ._prices import (
    CENTRE_CAPITAL_ITEM,
    GST_CODES,
    TRANSPORT_ITEM,
    NoPriceLimitError,
    PriceCatalogue,
    Unit,
)
from ._recurrence import check_date

__all__ = [
    "BILLING_FLAGS",
    "CANCELLATION_REASONS",
    "CLAIM_TYPES",
    "GROUP_ACTIVITY_ITEMS",
    "AllocationLike",
    "Band",
    "BillingLine",
    "BillingSettings",
    "HolidayCalendar",
    "NswPublicHolidays",
    "InstanceLike",
    "InvalidBillingInputError",
    "ItemChoice",
    "band_between",
    "band_of",
    "claim_reference",
    "duration_hours",
    "group_unit_price",
    "nsw_public_holidays",
    "price_attendance",
    "transport_cost_per_rider",
]

_CENT = Decimal("0.01")
# Wide enough that no price computation is ever rounded before its final quantize.
# Computed in directly from any thread: only its traps matter, its flags are never read.
BILLING_CONTEXT = Context(prec=40, traps=[InvalidOperation, DivisionByZero])
_REFERENCE = re.compile(r"[A-Za-z0-9/_-]{1,50}")
_UNITS = frozenset(Unit)


#: The group activity item ("Group Activities – Standard", registration group
#: 0136) billed in each band. There is no group night item: a night support is
#: billed on the weekday evening item and its lines carry the ``night-band`` flag.
GROUP_ACTIVITY_ITEMS: dict[Band, str] = {
    Band.WEEKDAY_DAYTIME: "04_102_0136_6_1",
    Band.WEEKDAY_EVENING: "04_103_0136_6_1",
    Band.WEEKDAY_NIGHT: "04_103_0136_6_1",
    Band.SATURDAY: "04_104_0136_6_1",
    Band.SUNDAY: "04_105_0136_6_1",
    Band.PUBLIC_HOLIDAY: "04_106_0136_6_1",
}

#: Claim types a billing line can carry ("" is a delivered support).
CLAIM_TYPES: dict[str, str] = {
    "": "a delivered support",
    "CANC": "a short-notice cancellation or no-show",
    "NF2F": "non-face-to-face work for the participant, agreed in advance",
}

#: NDIS cancellation reasons, only ever with claim type CANC.
CANCELLATION_REASONS: dict[str, str] = {
    "NSDH": "no show due to health reasons",
    "NSDF": "no show due to family issues",
    "NSDT": "no show due to unavailability of transport",
    "NSDO": "other",
}

#: Flags a billing line can carry: something a planner should look at. The
#: host turns them into plan warnings. The docs are drawn from this table.
BILLING_FLAGS: dict[str, str] = {
    "night-band": "the support falls in the weekday night band, which has no group activity "
    "item; billed on the weekday evening item",
    "provisional-price": "no price limit is published for the day yet; the latest earlier "
    "limit was carried forward (re-plan the day once the new limits are in the catalogue)",
}


def duration_hours(start: datetime, end: datetime) -> Decimal:
    """Hours from ``start`` to ``end`` (aware), rounded down to 2 decimals.

    Measured in UTC, so a day when clocks change counts the hours that really
    passed (09:00–17:00 is 8 h, 01:00–05:00 is 3 h when clocks go forward).
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise InvalidBillingInputError("start and end must be timezone-aware", field="start")
    # Subtracting two datetimes of one zone would compare wall clocks: go through UTC.
    elapsed = end.astimezone(UTC) - start.astimezone(UTC)
    if elapsed < timedelta(0):
        raise InvalidBillingInputError(
            f"end {end.isoformat()} is before start {start.isoformat()}", field="end"
        )
    micros = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
    with localcontext(BILLING_CONTEXT):
        return (Decimal(micros) / Decimal(3_600_000_000)).quantize(_CENT, rounding=ROUND_DOWN)


# --------------------------------------------------------------------------- prices


def _count(value: object, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidBillingInputError(
            f"{name} must be a whole number of at least {least}, got {value!r}", field=name
        )
    return value


def _amount(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidBillingInputError(
            f"{name} must be a Decimal, int or string (never float), got {value!r}", field=name
        )
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidBillingInputError(f"{name} is not a number: {value!r}", field=name) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidBillingInputError(f"{name} must not be negative: {value!r}", field=name)
    return amount


def _down(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_DOWN)


def group_unit_price(limit: Decimal, workers: int, participants: int) -> Decimal:
    """The most a group support may be claimed at per participant and unit.

    ``limit × workers ÷ participants``, rounded down to the cent (never up) and
    never above ``limit``: weekday daytime 2025-26 with 3 workers and 10
    participants is 70.23 × 3 / 10 = 21.069 → 21.06.
    """
    price = _amount(limit, "limit")
    _count(workers, "workers", 1)
    _count(participants, "participants", 1)
    with localcontext(BILLING_CONTEXT):
        return min(_down(price * workers / participants), _down(price))


def transport_cost_per_rider(
    km: Decimal, rate_per_km: Decimal, riders: int, *, rate_limit: Decimal | None = None
) -> Decimal:
    """Each rider's share of a run's vehicle costs for Activity Based Transport.

    ``km × rate_per_km ÷ riders`` in dollars, rounded down to the cent. The
    rate may not exceed the limit (:meth:`PriceCatalogue.km_rate_limit`: up to
    $0.99/km for a car, $2.76/km for a bus or modified vehicle in 2025-26);
    pass it as ``rate_limit`` to have that checked.
    """
    distance = _amount(km, "km")
    rate = _amount(rate_per_km, "rate_per_km")
    _count(riders, "riders", 1)
    if rate_limit is not None and rate > _amount(rate_limit, "rate_limit"):
        raise InvalidBillingInputError(
            f"rate_per_km {rate} is above the limit of {rate_limit} per km", field="rate_per_km"
        )
    with localcontext(BILLING_CONTEXT):
        return _down(distance * rate / riders)


def claim_reference(
    day: date, instance_id: str, participant_id: str, item_number: str, claim_type: str = ""
) -> str:
    """A deterministic claim reference for one line, at most 50 characters.

    ``YYYYMMDD-<item number>-<12 hex digits>``, e.g.
    ``claim_reference(date(2026, 7, 1), "wed/2026-07-01", "sarah", "04_102_0136_6_1")``
    is ``20260701-04_102_0136_6_1-d397fbb7f6c0``. The digits are the start of
    a SHA-256 of the instance id, participant, item and claim type: the same
    line always gets the same reference, whatever the length of the ids, and
    different lines get different ones (48 bits; the claim export refuses a
    repeat should one ever occur).
    """
    return _reference(f"{day:%Y%m%d}", instance_id, participant_id, item_number, claim_type)


def _reference(
    day: str, instance_id: str, participant_id: str, item_number: str, claim_type: str
) -> str:
    """:func:`claim_reference` with the day already written ``YYYYMMDD``."""
    key = "\x1f".join((instance_id, participant_id, item_number, claim_type))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return f"{day}-{_item_part(item_number)}-{digest}"


@lru_cache(maxsize=1024)
def _item_part(item_number: str) -> str:
    """The item number as a claim reference carries it: letters, digits and '_', 24 at most."""
    return re.sub(r"[^A-Za-z0-9_]", "", item_number)[:24]


# --------------------------------------------------------------------------- lines


# A line's amounts are checked in 28 digits, whatever the caller's decimal settings.
_LINE_DIGITS = Context(prec=28, traps=[InvalidOperation])


def has_two_places(value: object) -> bool:
    """Whether ``value`` is a finite ``Decimal`` of at most two decimals
    that fits the 28 digits a billing line's amounts are checked in."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return False
    try:
        return value == value.quantize(_CENT, context=_LINE_DIGITS)
    except InvalidOperation:
        return False


def _two_places(inst: object, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not has_two_places(value):
        raise InvalidBillingInputError(
            f"BillingLine.{attribute.name} must be a Decimal with at most 2 decimals, "
            f"got {value!r}",
            field=attribute.name,
        )
    if value < 0:
        raise InvalidBillingInputError(
            f"BillingLine.{attribute.name} must not be negative", field=attribute.name
        )


@attrs.frozen(kw_only=True)
class BillingLine:
    """One claimable line: one participant, one instance, one support item.

    ``quantity`` is hours for hourly items, 1 for ``each`` items and dollars
    for Activity Based Transport (unit price 1.00). ``total`` is
    ``quantity × unit_price`` rounded down to the cent; the bulk payment
    request carries quantity and unit price only, and the NDIA computes the
    amount. ``claim_type`` is ``""`` (delivered), ``CANC`` or ``NF2F``;
    ``cancellation_reason`` is set with CANC only. ``band`` is the band the
    instance fell in; ``flags`` come from :data:`BILLING_FLAGS`.
    """

    participant_id: str
    ndis_number: str
    instance_id: str
    program_id: str
    date: date = attrs.field(validator=check_date)
    item_number: str
    unit: str
    band: str
    quantity: Decimal = attrs.field(validator=_two_places)
    unit_price: Decimal = attrs.field(validator=_two_places)
    total: Decimal = attrs.field(validator=_two_places)
    gst_code: str
    claim_type: str = ""
    cancellation_reason: str = ""
    claim_reference: str
    provenance: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        problems = []
        if self.claim_type not in CLAIM_TYPES:
            problems.append("claim_type must be '' (delivered), CANC or NF2F")
        if (self.claim_type == "CANC") != bool(self.cancellation_reason) or (
            self.cancellation_reason and self.cancellation_reason not in CANCELLATION_REASONS
        ):
            problems.append(
                "a CANC line needs a cancellation reason (NSDH/NSDF/NSDT/NSDO); no other"
            )
        if not (
            isinstance(self.claim_reference, str) and _REFERENCE.fullmatch(self.claim_reference)
        ):
            problems.append("claim_reference must be 1–50 letters, digits, '/', '_' or '-'")
        if self.gst_code not in GST_CODES:
            problems.append(f"gst_code must be one of {', '.join(GST_CODES)}")
        if not isinstance(self.unit, str) or self.unit not in _UNITS:
            problems.append(f"unit must be one of {', '.join(Unit)}")
        unknown = [f for f in self.flags if f not in BILLING_FLAGS]
        if unknown:
            problems.append(f"unknown flags {', '.join(unknown)}")
        if problems:
            raise InvalidBillingInputError(
                f"billing line {self.claim_reference!r}: {'; '.join(problems)}"
            )


def _made_line(
    *,
    participant_id: str,
    ndis_number: str,
    instance_id: str,
    program_id: str,
    date: date,
    item_number: str,
    unit: str,
    band: str,
    quantity: Decimal,
    unit_price: Decimal,
    total: Decimal,
    gst_code: str,
    claim_type: str,
    cancellation_reason: str,
    claim_reference: str,
    provenance: tuple[str, ...],
    flags: tuple[str, ...],
) -> BillingLine:
    """A :class:`BillingLine` of these fields, not checked.

    For the lines :class:`_Pricer` makes, which are right by construction:
    amounts rounded to the cent, items and GST codes from a checked
    catalogue, references from :func:`_reference`, reasons checked as they
    are chosen. The checks cost more than the line itself (a roll makes tens
    of thousands); a test holds every line priced to them.
    """
    line: BillingLine = object.__new__(BillingLine)
    _put = _PUT
    _put[0](line, participant_id)
    _put[1](line, ndis_number)
    _put[2](line, instance_id)
    _put[3](line, program_id)
    _put[4](line, date)
    _put[5](line, item_number)
    _put[6](line, unit)
    _put[7](line, band)
    _put[8](line, quantity)
    _put[9](line, unit_price)
    _put[10](line, total)
    _put[11](line, gst_code)
    _put[12](line, claim_type)
    _put[13](line, cancellation_reason)
    _put[14](line, claim_reference)
    _put[15](line, provenance)
    _put[16](line, flags)
    return line


# amounts from 10**_LARGE on are checked before a line is made unchecked
_LARGE = 20
_FIELDS = attrs.fields_dict(BillingLine)

# each field's slot, in the order of the fields (and of _made_line's
# parameters: a test checks), set past the frozen class's __setattr__
_PUT = tuple(BillingLine.__dict__[a.name].__set__ for a in attrs.fields(BillingLine))


# --------------------------------------------------------------------------- settings


def _percent(value: object) -> Decimal:
    amount = _amount(value, "cancellation_percent")
    if not 0 < amount <= 100:
        raise InvalidBillingInputError(
            f"cancellation_percent must be above 0 and at most 100, got {value!r}",
            field="cancellation_percent",
        )
    return amount


def _item_numbers(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _a_bool(inst: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidBillingInputError(
            f"{type(inst).__name__}.{attribute.name} must be True or False, got {value!r}",
            field=attribute.name,
        )


def _days_of_notice(inst: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidBillingInputError(
            f"{type(inst).__name__}.{attribute.name} must be a whole number of days, "
            f"0 or more, got {value!r}",
            field=attribute.name,
        )


@attrs.frozen(kw_only=True)
class ItemChoice:
    """The items one participant is billed on for one program.

    ``group_activity`` bills the group activity item of the band (divided by
    the group); ``centre_capital`` adds Centre Capital Cost per hour
    (undivided); ``extra_items`` are further hourly or ``each`` items billed
    undivided at their price limit (a fixed item whatever the band).
    """

    group_activity: bool = attrs.field(default=True, validator=_a_bool)
    centre_capital: bool = attrs.field(default=False, validator=_a_bool)
    extra_items: tuple[str, ...] = attrs.field(default=(), converter=_item_numbers)


@attrs.frozen(kw_only=True)
class BillingSettings:
    """A program's billing settings.

    ``lead_counts``: whether the lead counts as a worker in the group
    fraction (unconfirmed by the NDIA; default True: every rostered worker
    counts). ``cancellation_percent``: the share of the agreed price claimed
    for a short-notice cancellation (default 100). ``short_notice_days``: a
    cancellation with fewer clear days' notice than this is short notice
    (default 7).
    """

    items: ItemChoice = attrs.field(factory=ItemChoice)
    lead_counts: bool = attrs.field(default=True, validator=_a_bool)
    cancellation_percent: Decimal = attrs.field(default=Decimal(100), converter=_percent)
    short_notice_days: int = attrs.field(default=7, validator=_days_of_notice)


# --------------------------------------------------------------------------- pricing


class AllocationLike(Protocol):
    """What pricing reads of an allocation (:class:`~loomcore.Allocation` fits)."""

    @property
    def participant_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def notice_days(self) -> int | None: ...
    @property
    def no_show(self) -> bool: ...
    @property
    def reason_code(self) -> str: ...
    @property
    def provenance(self) -> tuple[str, ...]: ...


class InstanceLike(Protocol):
    """What pricing reads of an instance (:class:`~loomcore.Instance` fits).

    ``start`` and ``end`` are aware datetimes in the local timezone; ``date``
    is the local date the instance takes place on.
    """

    @property
    def id(self) -> str: ...
    @property
    def program_id(self) -> str: ...
    @property
    def date(self) -> date: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def provenance(self) -> tuple[str, ...]: ...
    @property
    def allocations(self) -> Sequence[AllocationLike]: ...


def _short_notice(a: AllocationLike, settings: BillingSettings) -> bool:
    if a.status == "attending":
        return False
    if a.status != "cancelled":
        raise InvalidBillingInputError(
            f"allocation of {a.participant_id!r}: status must be attending or cancelled, "
            f"got {a.status!r}",
            field="status",
        )
    # notice_days None: not the participant's cancellation (the provider's): nothing to claim
    return a.no_show or (a.notice_days is not None and a.notice_days < settings.short_notice_days)


@attrs.frozen
class _Price:
    unit_price: Decimal
    provisional: bool


def _limit(catalogue: PriceCatalogue, number: str, day: date) -> _Price:
    try:
        value = catalogue.limit(number, day)
    except NoPriceLimitError:
        latest = catalogue.latest_limit(number, day)
        if latest is None:
            raise
        return _Price(latest.limit, True)
    if value is None:
        raise InvalidBillingInputError(
            f"support item {number!r} is not price-limited: there is no price to bill it at",
            field="extra_items",
        )
    return _Price(value, False)


def price_attendance(
    instance: InstanceLike,
    *,
    catalogue: PriceCatalogue,
    holidays: HolidayCalendar,
    ndis_numbers: Mapping[str, str],
    workers: int,
    leads: int = 0,
    settings: BillingSettings | None = None,
    participant_items: Mapping[str, ItemChoice] | None = None,
    transport_costs: Mapping[str, Decimal] | None = None,
    transport_provisional: bool = False,
) -> tuple[BillingLine, ...]:
    """The billing lines of one instance, one per participant and item. Pure.

    ``workers`` is the number of workers rostered on the instance, ``leads``
    how many of them are leads (left out of the group fraction when
    ``settings.lead_counts`` is False; at least one worker is always
    counted). ``participant_items`` replaces the program's
    :class:`ItemChoice` for the participants it names. ``transport_costs``
    gives each rider's share of vehicle costs in dollars
    (:func:`transport_cost_per_rider`); ``transport_provisional`` flags
    their lines ``provisional-price`` (worked out with a per-km limit
    carried forward: :meth:`PriceCatalogue.latest_km_rate_limit`).
    ``ndis_numbers`` maps participant ids
    to NDIS numbers (missing: ``""``, refused later by the claim export).

    A cancelled instance bills nothing, nor does one of no length. See the
    module docstring for the rules.
    """
    settings = settings if settings is not None else BillingSettings()
    chosen = participant_items or {}
    _count(workers, "workers", 0)
    _count(leads, "leads", 0)
    if leads > workers:
        raise InvalidBillingInputError(f"{leads} leads among {workers} workers", field="leads")
    if instance.status == "cancelled":
        return ()
    hours = duration_hours(instance.start, instance.end)
    if hours == 0:
        return ()
    billed = [
        a for a in instance.allocations if a.status == "attending" or _short_notice(a, settings)
    ]
    choice = {a.participant_id: chosen.get(a.participant_id, settings.items) for a in billed}
    pricer = _Pricer(
        instance=instance,
        catalogue=catalogue,
        settings=settings,
        ndis_numbers=ndis_numbers,
        transport_costs=transport_costs or {},
        transport_flags=("provisional-price",) if transport_provisional else (),
        band=band_between(instance.start, instance.end, holidays),
        hours=hours,
        in_group=sum(1 for a in billed if choice[a.participant_id].group_activity),
        workers=max(1, workers - (0 if settings.lead_counts else leads)),
    )
    lines = [line for a in billed for line in pricer.lines(a, choice[a.participant_id])]
    lines.sort(key=lambda x: (x.participant_id, x.item_number, x.claim_type))
    return tuple(lines)


def _provisional(p: _Price) -> tuple[str, ...]:
    return ("provisional-price",) if p.provisional else ()


@attrs.frozen(kw_only=True)
class _Pricer:
    """Everything one instance's lines share."""

    instance: InstanceLike
    catalogue: PriceCatalogue
    settings: BillingSettings
    ndis_numbers: Mapping[str, str]
    transport_costs: Mapping[str, Decimal]
    transport_flags: tuple[str, ...]
    band: Band
    hours: Decimal
    in_group: int
    workers: int
    # worked out once per instance, when first needed: the day as claim
    # references write it, and each item's price (the group item's divided)
    _day: str = attrs.field(init=False)
    _prices: dict[str, tuple[Decimal, tuple[str, ...]]] = attrs.field(init=False, factory=dict)

    @_day.default
    def _day_text(self) -> str:
        return f"{self.instance.date:%Y%m%d}"

    def price(self, number: str) -> tuple[Decimal, tuple[str, ...]]:
        """The unit price of ``number`` on the day, and its flags."""
        if not isinstance(number, str):  # never a key: refused as the catalogue refuses it
            self.catalogue.item(number)
        found = self._prices.get(number)
        if found is None:
            p = _limit(self.catalogue, number, self.instance.date)
            found = self._prices[number] = (p.unit_price, _provisional(p))
        return found

    def group_price(self) -> tuple[str, Decimal, tuple[str, ...]]:
        """The band's group item, its price divided among the group, and its flags."""
        number = GROUP_ACTIVITY_ITEMS[self.band]
        found = self._prices.get("")
        if found is None:
            limit, flags = self.price(number)
            night = ("night-band",) if self.band is Band.WEEKDAY_NIGHT else ()
            price = group_unit_price(limit, self.workers, max(1, self.in_group))
            found = self._prices[""] = (price, night + flags)
        return number, *found

    def lines(self, a: AllocationLike, items: ItemChoice) -> Iterable[BillingLine]:
        cancelled = a.status != "attending"
        provenance = tuple(sorted({*self.instance.provenance, *a.provenance}))
        if items.group_activity:
            number, price, flags = self.group_price()
            yield self.line(a, number, self.hours, price, flags, provenance)
        if items.centre_capital and not cancelled:
            price, flags = self.price(CENTRE_CAPITAL_ITEM)
            yield self.line(a, CENTRE_CAPITAL_ITEM, self.hours, price, flags, provenance)
        for number in items.extra_items:
            price, flags = self.price(number)
            unit = self.catalogue.item(number).unit
            if unit is Unit.DOLLAR:
                raise InvalidBillingInputError(
                    f"extra item {number!r} is claimed in dollars; it needs an amount",
                    field="extra_items",
                )
            quantity = self.hours if unit is Unit.HOUR else Decimal("1.00")
            yield self.line(a, number, quantity, price, flags, provenance)
        cost = self.transport_costs.get(a.participant_id)
        if cost is not None and not cancelled:
            dollars = _down(_amount(cost, "transport_costs"))
            if dollars > 0:
                flags = self.transport_flags
                yield self.line(a, TRANSPORT_ITEM, dollars, Decimal("1.00"), flags, provenance)

    def line(
        self,
        a: AllocationLike,
        number: str,
        quantity: Decimal,
        unit_price: Decimal,
        flags: tuple[str, ...],
        provenance: tuple[str, ...],
    ) -> BillingLine:
        claim_type, reason = "", ""
        if a.status != "attending":
            claim_type, reason = "CANC", a.reason_code or "NSDO"
            if reason not in CANCELLATION_REASONS:
                raise InvalidBillingInputError(
                    f"allocation of {a.participant_id!r}: reason code must be one of "
                    f"{', '.join(CANCELLATION_REASONS)}, got {reason!r}",
                    field="reason_code",
                )
            percent = self.settings.cancellation_percent
            unit_price = BILLING_CONTEXT.divide(BILLING_CONTEXT.multiply(unit_price, percent), 100)
            unit_price = unit_price.quantize(_CENT, rounding=ROUND_DOWN, context=BILLING_CONTEXT)
        total = BILLING_CONTEXT.multiply(quantity, unit_price).quantize(
            _CENT, rounding=ROUND_DOWN, context=BILLING_CONTEXT
        )
        if max(quantity.adjusted(), total.adjusted()) >= _LARGE:
            # beyond what the lines' own checks take (they work in 28
            # digits): checked as a line made by anyone else would be
            for name, amount in (("quantity", quantity), ("total", total)):
                _two_places(None, _FIELDS[name], amount)
        item = self.catalogue.item(number)
        instance = self.instance
        return _made_line(
            participant_id=a.participant_id,
            ndis_number=self.ndis_numbers.get(a.participant_id, ""),
            instance_id=instance.id,
            program_id=instance.program_id,
            date=instance.date,
            item_number=number,
            unit=item.unit.value,
            band=self.band.value,
            quantity=quantity,
            unit_price=unit_price,
            total=total,
            gst_code=item.gst_code,
            claim_type=claim_type,
            cancellation_reason=reason,
            claim_reference=_reference(
                self._day, instance.id, a.participant_id, number, claim_type
            ),
            provenance=provenance,
            flags=tuple(sorted(set(flags))) if flags else (),
        )
