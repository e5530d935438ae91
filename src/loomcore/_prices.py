"""NDIS support items and their effective-dated price limits: the price catalogue.

Theory of operation
-------------------
A :class:`PriceCatalogue` is a value object built once by the caller, from two
CSV texts (:meth:`PriceCatalogue.from_csv`) or from the files shipped in
``loomcore/data`` (:func:`shipped_catalogue`, the only function here that
reads a file). The planning core is handed the catalogue and never reads a
file or the clock itself.

The catalogue knows *support items* (number, name, unit, GST code, whether it
is price-limited) and *price limits*: a maximum unit price in force over a
closed date range, normally one NDIS financial year (1 July to 30 June). A
limit ``applies_to`` the item's unit (``unit``) or, for Activity Based
Transport, to the kilometres driven by a car (``km-car``) or a bus or
modified vehicle (``km-bus``).

Invariants
~~~~~~~~~~
1. Item numbers are only meaningful whole: ``04_104_0136_6_1`` (group,
   Saturday) and ``04_104_0125_6_1`` (one-to-one, weekday) are different
   items, and no lookup ever matches part of a number.
2. For one item and one ``applies_to``, limit periods never overlap, and a
   period never crosses 1 July: at most one limit is in force on a day and it
   belongs to one financial year.
3. Money is :class:`~decimal.Decimal` with at most two decimals, never float.
4. Two catalogues built from the same rows in any order are equal.
"""

from __future__ import annotations

import csv
import io
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import resources

import attrs

from ._errors import InvalidRecordError, LoomError, UnknownIdError

__all__ = [
    "APPLIES_TO",
    "CENTRE_CAPITAL_ITEM",
    "GST_CODES",
    "NoPriceLimitError",
    "PriceCatalogue",
    "PriceDataError",
    "PriceLimit",
    "SupportItem",
    "TRANSPORT_ITEM",
    "Unit",
    "UnknownSupportItemError",
    "financial_year",
    "shipped_catalogue",
]

#: GST codes of the bulk payment request, with their meaning.
GST_CODES: dict[str, str] = {
    "P1": "taxable supply, 10% GST",
    "P2": "GST-free (most supports)",
    "P5": "out of scope of GST",
}

#: What a price limit is a limit on. The docs are drawn from this table.
APPLIES_TO: dict[str, str] = {
    "unit": "the item's own unit (an hour, each, or a dollar)",
    "km-car": "Activity Based Transport: dollars per km for a car (vehicle not modified)",
    "km-bus": "Activity Based Transport: dollars per km for a bus or modified vehicle",
}

#: Activity Based Transport (non-labour costs), claimed in dollars at a $1 unit price.
TRANSPORT_ITEM = "04_591_0136_6_1"
#: Centre Capital Cost, per participant-hour in the centre, never divided.
CENTRE_CAPITAL_ITEM = "04_599_0136_6_1"

_ITEM_NUMBER = re.compile(r"\d{2}_\d{3}_\d{4}_\d_\d(?:_[A-Z]{1,4})?")
_MONEY = re.compile(r"\d+(?:\.\d{1,2})?")
_CENT = Decimal("0.01")


class Unit(StrEnum):
    """The unit a support item is claimed in."""

    HOUR = "hour"
    EACH = "each"
    DOLLAR = "dollar"


# --------------------------------------------------------------------------- errors


class UnknownSupportItemError(UnknownIdError):
    """No support item has this number. ``number`` is the number asked for."""

    kind = "support item"

    def __init__(self, number: str, named_by: str = "") -> None:
        self.number = number
        self.id = number
        self.named_by = named_by
        LookupError.__init__(
            self,
            f"unknown support item number {number!r}"
            + (f" (named by {named_by})" if named_by else "")
            + "; item numbers are only meaningful whole",
        )


class NoPriceLimitError(LoomError, LookupError):
    """A price-limited item has no limit in force on ``day`` in the catalogue.

    The catalogue lacks that financial year: add its limits (see
    ``docs/billing.md``). ``applies_to`` is ``unit``, ``km-car`` or ``km-bus``.
    """

    def __init__(self, number: str, day: date, applies_to: str = "unit") -> None:
        self.number = number
        self.day = day
        self.applies_to = applies_to
        what = "price limit" if applies_to == "unit" else f"{applies_to} rate limit"
        super().__init__(
            f"no {what} for support item {number!r} on {day.isoformat()} "
            f"(financial year {financial_year(day)}); add that year's limits to the catalogue"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class PriceDataError(LoomError, ValueError):
    """Support item or price limit data is malformed.

    ``source`` names the file (or text) and ``line`` the 1-based line at
    fault, when known.
    """

    def __init__(self, message: str, *, source: str = "", line: int = 0) -> None:
        self.source = source
        self.line = line
        where = (
            f"{source}:{line}" if source and line else source or (f"line {line}" if line else "")
        )
        super().__init__(f"{where}: {message}" if where else message)


# --------------------------------------------------------------------------- values


def financial_year(day: date) -> str:
    """The NDIS financial year of ``day``, e.g. ``"2025-26"`` for 2026-06-30."""
    first = day.year if day.month >= 7 else day.year - 1
    return f"{first}-{(first + 1) % 100:02d}"


def _item_number(inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _ITEM_NUMBER.fullmatch(value):
        raise InvalidRecordError(
            f"{type(inst).__name__}.{attribute.name}: {value!r} is not a whole support item "
            "number such as 04_102_0136_6_1",
            field=attribute.name,
        )


def _money(value: object) -> Decimal:
    """A non-negative amount of dollars with at most two decimals.

    Accepts a :class:`~decimal.Decimal`, an ``int`` or a string such as
    ``"70.23"``; refuses floats, so binary approximations never become money.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidRecordError(f"not an amount of money: {value!r} (use a string or Decimal)")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidRecordError(f"not an amount of money: {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(_CENT):
        raise InvalidRecordError(f"not a non-negative amount with at most 2 decimals: {value!r}")
    return amount.quantize(_CENT)


@attrs.frozen(kw_only=True)
class SupportItem:
    """One NDIS support item. ``price_limited=False`` means no limit applies."""

    number: str = attrs.field(validator=_item_number)
    name: str
    unit: Unit = attrs.field(converter=Unit)
    gst_code: str = attrs.field(default="P2")
    price_limited: bool = True
    source: str = ""

    @gst_code.validator
    def _gst(self, _a: attrs.Attribute[str], value: str) -> None:
        if value not in GST_CODES:
            raise InvalidRecordError(
                f"support item {self.number!r}: GST code must be one of "
                f"{', '.join(GST_CODES)}, got {value!r}",
                field="gst_code",
            )


@attrs.frozen(kw_only=True)
class PriceLimit:
    """The most that may be claimed per unit of ``number`` from ``effective_from``
    to ``effective_to`` inclusive, on what :data:`APPLIES_TO` names."""

    number: str = attrs.field(validator=_item_number)
    applies_to: str = "unit"
    effective_from: date
    effective_to: date
    limit: Decimal = attrs.field(converter=_money)
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if self.applies_to not in APPLIES_TO:
            raise InvalidRecordError(
                f"price limit of {self.number!r}: applies_to must be one of "
                f"{', '.join(APPLIES_TO)}, got {self.applies_to!r}",
                field="applies_to",
            )
        if self.effective_to < self.effective_from:
            raise InvalidRecordError(
                f"price limit of {self.number!r} ends {self.effective_to.isoformat()}, before "
                f"it starts {self.effective_from.isoformat()}",
                field="effective_to",
            )
        if financial_year(self.effective_from) != financial_year(self.effective_to):
            raise InvalidRecordError(
                f"price limit of {self.number!r} crosses 1 July "
                f"({self.effective_from.isoformat()} to {self.effective_to.isoformat()}); "
                "give each financial year its own row",
                field="effective_to",
            )

    @property
    def financial_year(self) -> str:
        """The financial year the limit belongs to, e.g. ``"2026-27"``."""
        return financial_year(self.effective_from)

    def covers(self, day: date) -> bool:
        """Whether the limit is in force on ``day``."""
        return self.effective_from <= day <= self.effective_to


def _items(value: Iterable[SupportItem]) -> tuple[SupportItem, ...]:
    return tuple(sorted(value, key=lambda i: i.number))


def _limits(value: Iterable[PriceLimit]) -> tuple[PriceLimit, ...]:
    return tuple(sorted(value, key=lambda p: (p.number, p.applies_to, p.effective_from)))


def _km_kind(vehicle: str) -> str:
    if vehicle not in ("car", "bus"):
        raise InvalidRecordError(f"vehicle must be 'car' or 'bus', got {vehicle!r}")
    return f"km-{vehicle}"


@attrs.frozen(kw_only=True)
class PriceCatalogue:
    """Support items and price limits, looked up by whole item number and date.

    Build it once (:meth:`from_csv`, :func:`shipped_catalogue`) and pass it to
    the pricing functions; lookups do no I/O.
    """

    items: tuple[SupportItem, ...] = attrs.field(default=(), converter=_items)
    limits: tuple[PriceLimit, ...] = attrs.field(default=(), converter=_limits)
    _by_number: dict[str, SupportItem] = attrs.field(init=False, eq=False, repr=False)
    # (number, applies_to) -> the limits' start dates and the limits, in date order
    _by_kind: dict[tuple[str, str], tuple[list[date], list[PriceLimit]]] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        by_number: dict[str, SupportItem] = {}
        for item in self.items:
            if item.number in by_number:
                raise PriceDataError(f"support item {item.number!r} is listed twice")
            by_number[item.number] = item
        object.__setattr__(self, "_by_number", by_number)
        by_kind: dict[tuple[str, str], tuple[list[date], list[PriceLimit]]] = {}
        previous: PriceLimit | None = None
        for p in self.limits:
            starts, rows = by_kind.setdefault((p.number, p.applies_to), ([], []))
            starts.append(p.effective_from)
            rows.append(p)
            limited = by_number.get(p.number)
            if limited is None:
                raise PriceDataError(f"a price limit names unknown support item {p.number!r}")
            if p.applies_to == "unit" and not limited.price_limited:
                raise PriceDataError(
                    f"support item {p.number!r} is not price-limited but has a unit price limit"
                )
            same = previous is not None and (previous.number, previous.applies_to) == (
                p.number,
                p.applies_to,
            )
            if same and previous is not None and p.effective_from <= previous.effective_to:
                raise PriceDataError(
                    f"price limits of {p.number!r} ({p.applies_to}) overlap: "
                    f"{previous.effective_from.isoformat()}..{previous.effective_to.isoformat()} "
                    f"and {p.effective_from.isoformat()}..{p.effective_to.isoformat()}"
                )
            previous = p
        object.__setattr__(self, "_by_kind", by_kind)

    def item(self, number: str) -> SupportItem:
        """The support item with this whole number, or :class:`UnknownSupportItemError`."""
        try:
            return self._by_number[number]
        except (KeyError, TypeError):
            raise UnknownSupportItemError(str(number)) from None

    def limit(self, number: str, day: date) -> Decimal | None:
        """The unit price limit of ``number`` in force on ``day``.

        ``None`` when the item is not price-limited. A price-limited item with
        no limit on ``day`` raises :class:`NoPriceLimitError`; an unknown
        number raises :class:`UnknownSupportItemError`.
        """
        if not self.item(number).price_limited:
            return None
        return self._in_force(number, "unit", day).limit

    def latest_limit(self, number: str, day: date) -> PriceLimit | None:
        """The unit limit in force on ``day``, else the latest one that started before it.

        ``None`` when no unit limit of ``number`` starts on or before ``day``.
        Pricing uses it to carry a limit forward, flagged provisional, while
        next year's limits are not yet published.
        """
        self.item(number)
        return self._latest(number, "unit", day)

    def km_rate_limit(self, vehicle: str, day: date) -> Decimal:
        """Activity Based Transport: the most per km for a ``"car"`` or a ``"bus"`` on ``day``.

        Raises :class:`NoPriceLimitError` when no rate is in force on ``day``.
        """
        return self._in_force(TRANSPORT_ITEM, _km_kind(vehicle), day).limit

    def latest_km_rate_limit(self, vehicle: str, day: date) -> PriceLimit | None:
        """The per-km limit in force on ``day``, else the latest that started
        before it (``None`` when none did): as :meth:`latest_limit`, for
        carrying a rate forward, flagged provisional, into a year whose
        limits are not yet published."""
        return self._latest(TRANSPORT_ITEM, _km_kind(vehicle), day)

    def financial_years(self) -> tuple[str, ...]:
        """Every financial year some limit belongs to, in order."""
        return tuple(sorted({p.financial_year for p in self.limits}))

    def _latest(self, number: str, applies_to: str, day: date) -> PriceLimit | None:
        """The last limit of the kind that starts on or before ``day`` (limits
        of one kind never overlap, so it is the one in force if any is)."""
        starts, rows = self._by_kind.get((number, applies_to), ((), ()))
        at = bisect_right(starts, day)
        return rows[at - 1] if at else None

    def _in_force(self, number: str, applies_to: str, day: date) -> PriceLimit:
        found = self._latest(number, applies_to, day)
        if found is None or not found.covers(day):
            raise NoPriceLimitError(number, day, applies_to)
        return found

    @classmethod
    def from_csv(
        cls,
        items_csv: str,
        limits_csv: str,
        *,
        items_source: str = "support_items.csv",
        limits_source: str = "price_limits.csv",
    ) -> PriceCatalogue:
        """Build a catalogue from the text of the two CSV files (see ``docs/billing.md``).

        Malformed data raises :class:`PriceDataError` naming the file and line.
        """
        items = [_item_row(row, items_source, n) for n, row in _rows(items_csv, items_source, _I)]
        limits = [
            _limit_row(row, limits_source, n) for n, row in _rows(limits_csv, limits_source, _L)
        ]
        try:
            return cls(items=items, limits=limits)
        except PriceDataError as e:
            raise PriceDataError(str(e), source=f"{items_source}, {limits_source}") from e


# --------------------------------------------------------------------------- CSV


@attrs.frozen
class _Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...]


_I = _Columns(("item_number", "name", "unit", "gst_code", "price_limited"), ("source",))
_L = _Columns(
    ("item_number", "effective_from", "effective_to", "limit"),
    ("applies_to", "financial_year", "source"),
)
_YES = {"yes": True, "true": True, "y": True, "1": True, "no": False, "false": False, "n": False}


def _rows(text: str, source: str, columns: _Columns) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of each data row; blank lines and ``#`` lines are skipped."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    for row in reader:
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if header is None:
            header = cells
            missing = [c for c in columns.required if c not in header]
            unknown = [c for c in header if c not in (*columns.required, *columns.optional)]
            repeated = sorted({c for c in header if header.count(c) > 1})
            if missing or unknown or repeated:
                faults = [
                    f"{what} {', '.join(names)}"
                    for what, names in (
                        ("missing", missing),
                        ("unknown", unknown),
                        ("repeated", repeated),
                    )
                    if names
                ]
                raise PriceDataError(
                    f"header must name the columns {', '.join(columns.required)} "
                    f"(optional: {', '.join(columns.optional)}); {'; '.join(faults)}",
                    source=source,
                    line=reader.line_num,
                )
            continue
        if len(cells) != len(header):
            raise PriceDataError(
                f"expected {len(header)} cells, got {len(cells)}",
                source=source,
                line=reader.line_num,
            )
        yield reader.line_num, dict(zip(header, cells, strict=True))
    if header is None:
        raise PriceDataError("no header row", source=source)


def _day(text: str, column: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRecordError(f"{column}: expected a date as YYYY-MM-DD, got {text!r}") from None


def _item_row(row: dict[str, str], source: str, line: int) -> SupportItem:
    try:
        flag = row["price_limited"].lower()
        if flag not in _YES:
            raise InvalidRecordError(f"price_limited: expected yes or no, got {flag!r}")
        return SupportItem(
            number=row["item_number"],
            name=row["name"],
            unit=_unit(row["unit"]),
            gst_code=row["gst_code"],
            price_limited=_YES[flag],
            source=row.get("source", ""),
        )
    except (LoomError, ValueError) as e:
        raise PriceDataError(str(e), source=source, line=line) from e


def _unit(text: str) -> Unit:
    try:
        return Unit(text)
    except ValueError:
        raise InvalidRecordError(
            f"unit: expected one of {', '.join(u.value for u in Unit)}, got {text!r}"
        ) from None


def _limit_row(row: dict[str, str], source: str, line: int) -> PriceLimit:
    try:
        if not _MONEY.fullmatch(row["limit"]):
            raise InvalidRecordError(
                f"limit: expected dollars with at most 2 decimals, got {row['limit']!r}"
            )
        limit = PriceLimit(
            number=row["item_number"],
            applies_to=row.get("applies_to") or "unit",
            effective_from=_day(row["effective_from"], "effective_from"),
            effective_to=_day(row["effective_to"], "effective_to"),
            limit=row["limit"],
            source=row.get("source", ""),
        )
        year = row.get("financial_year", "")
        if year and year != limit.financial_year:
            raise InvalidRecordError(
                f"financial_year {year!r} does not match effective_from "
                f"{limit.effective_from.isoformat()} (financial year {limit.financial_year})"
            )
        return limit
    except (LoomError, ValueError) as e:
        raise PriceDataError(str(e), source=source, line=line) from e


def shipped_catalogue() -> PriceCatalogue:
    """The catalogue shipped with loomcore (``loomcore/data``): group activity items
    for the financial years listed in ``data/README.md``.

    Reads two package files: call it once, outside the planning path, and pass
    the catalogue in.
    """
    data = resources.files("loomcore").joinpath("data")
    return PriceCatalogue.from_csv(
        data.joinpath("support_items.csv").read_text(encoding="utf-8"),
        data.joinpath("price_limits.csv").read_text(encoding="utf-8"),
    )
