"""Billing: the price catalogue, bands and holidays, group pricing, billing lines."""

from __future__ import annotations

import decimal
import inspect
import random
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from builders import seed_organisation
from loomcore import (
    Absence,
    BusRun,
    Enrolment,
    Instance,
    LoomError,
    PlanInputs,
    Shift,
    Vehicle,
    plan_day,
)
from loomcore._billing import (
    BILLING_FLAGS,
    GROUP_ACTIVITY_ITEMS,
    Band,
    BillingLine,
    BillingSettings,
    InvalidBillingInputError,
    ItemChoice,
    _made_line,
    band_between,
    band_of,
    claim_reference,
    duration_hours,
    group_unit_price,
    nsw_public_holidays,
    price_attendance,
    transport_cost_per_rider,
)
from loomcore._prices import (
    NoPriceLimitError,
    PriceCatalogue,
    PriceDataError,
    PriceLimit,
    SupportItem,
    UnknownSupportItemError,
    financial_year,
    shipped_catalogue,
)

SYDNEY = ZoneInfo("Australia/Sydney")
HOLIDAYS = nsw_public_holidays(range(2025, 2029))
CATALOGUE = shipped_catalogue()
D = Decimal

DAYTIME, EVENING, NIGHT = Band.WEEKDAY_DAYTIME, Band.WEEKDAY_EVENING, Band.WEEKDAY_NIGHT
SAT, SUN, PH = Band.SATURDAY, Band.SUNDAY, Band.PUBLIC_HOLIDAY


@attrs.frozen(kw_only=True)
class Alloc:
    participant_id: str
    status: str = "attending"
    notice_days: int | None = None
    no_show: bool = False
    reason_code: str = ""
    provenance: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Inst:
    id: str
    program_id: str
    date: date
    start: datetime
    end: datetime
    status: str = "scheduled"
    provenance: tuple[str, ...] = ()
    allocations: tuple[Alloc, ...] = ()


def instance(
    day: date,
    allocations: list[Alloc],
    start: time = time(9),
    end: time = time(15),
    program: str = "centre",
    **kw: object,
) -> Inst:
    return Inst(
        id=f"{program}/{day.isoformat()}",
        program_id=program,
        date=day,
        start=datetime.combine(day, start, SYDNEY),
        end=datetime.combine(day, end, SYDNEY),
        allocations=tuple(allocations),
        **kw,  # type: ignore[arg-type]
    )


def people(n: int, first: int = 1) -> list[Alloc]:
    return [
        Alloc(participant_id=f"p{i:02d}", provenance=(f"enrol-{i}",))
        for i in range(first, n + first)
    ]


NDIS = {f"p{i:02d}": f"43{i:07d}" for i in range(1, 40)}


def price(inst: Inst, workers: int = 1, **kw: object) -> tuple[BillingLine, ...]:
    return price_attendance(
        inst,
        catalogue=CATALOGUE,
        holidays=HOLIDAYS,
        ndis_numbers=NDIS,
        workers=workers,
        **kw,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- bands

WED = date(2026, 10, 7)
FRI = date(2026, 10, 9)


@pytest.mark.parametrize(
    ("day", "start", "end", "band"),
    [
        # weekday boundaries at 06:00 and 20:00
        (WED, time(6), time(20), DAYTIME),
        (WED, time(9), time(15), DAYTIME),
        (WED, time(5, 59), time(10), NIGHT),
        (WED, time(0), time(5), NIGHT),
        (WED, time(19), time(20, 1), EVENING),  # daytime into evening: evening for all
        (WED, time(6), time(21), EVENING),
        (WED, time(20), time(23, 30), EVENING),
        (WED, time(20), time(0), EVENING),  # ends at midnight: still evening
        (WED, time(22), time(1), NIGHT),  # crosses midnight
        (WED, time(18), time(2), NIGHT),
        # weekend days, whatever the time
        (date(2026, 10, 10), time(10), time(16), SAT),
        (date(2026, 10, 10), time(5), time(23), SAT),
        (date(2026, 10, 11), time(10), time(15), SUN),
        (FRI, time(22), time(2), SAT),  # Friday night into Saturday: the higher band
        (date(2026, 10, 11), time(22), time(1), SUN),  # Sunday into Monday
        (date(2026, 10, 10), time(22), time(1), SUN),  # Saturday into Sunday
        # NSW public holidays, on weekdays and at weekends
        (date(2026, 1, 26), time(9), time(15), PH),  # Australia Day, Monday
        (date(2026, 10, 5), time(9), time(15), PH),  # Labour Day
        (date(2026, 12, 25), time(20), time(22), PH),  # Christmas, Friday evening
        (date(2026, 4, 4), time(10), time(14), PH),  # Easter Saturday beats Saturday
        (date(2026, 4, 5), time(10), time(14), PH),  # Easter Sunday beats Sunday
        (date(2026, 12, 26), time(10), time(14), PH),  # Boxing Day on a Saturday
        (date(2026, 12, 24), time(22), time(1), PH),  # into Christmas Day
        # substitute (observed) days
        (date(2026, 12, 28), time(9), time(15), PH),  # Boxing Day observed, Monday
        (date(2027, 12, 27), time(9), time(15), PH),  # Christmas observed, Monday
        (date(2027, 12, 28), time(9), time(15), PH),  # Boxing Day observed, Tuesday
        (date(2028, 1, 3), time(9), time(15), PH),  # New Year's Day observed
        # the August bank holiday is not a public holiday
        (date(2026, 8, 3), time(9), time(15), DAYTIME),
        (date(2025, 8, 4), time(9), time(15), DAYTIME),
        # the Monday after Christmas 2025 is an ordinary weekday
        (date(2025, 12, 29), time(9), time(15), DAYTIME),
    ],
)
def test_band_of(day: date, start: time, end: time, band: Band) -> None:
    assert band_of(day, start, end, HOLIDAYS) is band


def test_public_holidays_are_nsw_public_ones_with_substitutes() -> None:
    assert {date(2026, 12, 26), date(2026, 12, 28), date(2028, 1, 3)} <= HOLIDAYS
    assert date(2026, 8, 3) not in HOLIDAYS  # bank holiday
    assert date(2026, 3, 9) not in HOLIDAYS  # Canberra Day is the ACT's
    assert all(2025 <= d.year <= 2028 for d in HOLIDAYS)
    assert nsw_public_holidays([]) == frozenset()
    assert isinstance(HOLIDAYS, frozenset)


def test_band_between_reads_local_wall_times() -> None:
    start = datetime(2026, 10, 7, 19, tzinfo=SYDNEY)
    assert band_between(start, start + timedelta(hours=2), HOLIDAYS) is EVENING
    assert band_between(start, start + timedelta(hours=1), HOLIDAYS) is DAYTIME
    with pytest.raises(InvalidBillingInputError):
        band_between(start, start - timedelta(hours=1), HOLIDAYS)


def test_every_band_has_a_group_item_and_night_borrows_evening() -> None:
    assert set(GROUP_ACTIVITY_ITEMS) == set(Band)
    assert GROUP_ACTIVITY_ITEMS[NIGHT] == GROUP_ACTIVITY_ITEMS[EVENING] == "04_103_0136_6_1"
    for number in GROUP_ACTIVITY_ITEMS.values():
        assert CATALOGUE.item(number).unit == "hour"


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (datetime(2026, 10, 7, 9, tzinfo=SYDNEY), datetime(2026, 10, 7, 15, tzinfo=SYDNEY), "6.00"),
        (
            datetime(2026, 10, 7, 9, tzinfo=SYDNEY),
            datetime(2026, 10, 7, 15, 20, tzinfo=SYDNEY),
            "6.33",
        ),
        (
            datetime(2026, 10, 7, 9, tzinfo=SYDNEY),
            datetime(2026, 10, 7, 9, 10, tzinfo=SYDNEY),
            "0.16",
        ),
        # clocks go forward at 02:00 on 4 Oct 2026 and back at 03:00 on 5 Apr 2026
        (datetime(2026, 10, 4, 1, tzinfo=SYDNEY), datetime(2026, 10, 4, 5, tzinfo=SYDNEY), "3.00"),
        (datetime(2026, 4, 5, 1, tzinfo=SYDNEY), datetime(2026, 4, 5, 5, tzinfo=SYDNEY), "5.00"),
    ],
)
def test_duration_is_real_hours_rounded_down(start: datetime, end: datetime, hours: str) -> None:
    assert duration_hours(start, end) == D(hours)


# --------------------------------------------------------------------------- catalogue

G102, G103, G104, G105, G106 = (f"04_10{n}_0136_6_1" for n in range(2, 7))
CAPITAL, TRANSPORT = "04_599_0136_6_1", "04_591_0136_6_1"


@pytest.mark.parametrize(
    ("number", "y2025", "y2026"),
    [
        (G102, "70.23", "73.58"),
        (G103, "77.38", "81.07"),
        (G104, "98.83", "103.54"),
        (G105, "127.43", "133.50"),
        (G106, "156.03", "163.46"),
        (CAPITAL, "2.59", "2.71"),
    ],
)
def test_shipped_limits_change_on_1_july(number: str, y2025: str, y2026: str) -> None:
    assert CATALOGUE.limit(number, date(2025, 7, 1)) == D(y2025)
    assert CATALOGUE.limit(number, date(2026, 6, 30)) == D(y2025)
    assert CATALOGUE.limit(number, date(2026, 7, 1)) == D(y2026)
    assert CATALOGUE.limit(number, date(2027, 6, 30)) == D(y2026)


def test_shipped_items() -> None:
    assert CATALOGUE.financial_years() == ("2025-26", "2026-27")
    transport = CATALOGUE.item(TRANSPORT)
    assert (transport.unit, transport.price_limited) == ("dollar", False)
    assert CATALOGUE.limit(TRANSPORT, date(2026, 1, 1)) is None
    assert CATALOGUE.km_rate_limit("car", date(2026, 1, 1)) == D("0.99")
    assert CATALOGUE.km_rate_limit("bus", date(2026, 1, 1)) == D("2.76")
    assert all(i.gst_code == "P2" and i.source for i in CATALOGUE.items)
    assert all(p.source for p in CATALOGUE.limits)


@pytest.mark.parametrize("number", ["04_102", "04_104_0125_6_1", "04_102_0136_6", "", "0136"])
def test_item_numbers_are_only_meaningful_whole(number: str) -> None:
    with pytest.raises(UnknownSupportItemError) as e:
        CATALOGUE.item(number)
    assert e.value.number == number
    assert isinstance(e.value, LoomError)
    assert isinstance(e.value, LookupError)
    assert repr(number) in str(e.value)
    with pytest.raises(UnknownSupportItemError):
        CATALOGUE.limit(number, date(2026, 1, 1))


def test_a_year_without_limits_is_a_clear_error() -> None:
    with pytest.raises(NoPriceLimitError, match="2027-28") as e:
        CATALOGUE.limit(G102, date(2027, 7, 1))
    assert (e.value.number, e.value.day) == (G102, date(2027, 7, 1))
    latest = CATALOGUE.latest_limit(G102, date(2027, 7, 1))
    assert latest is not None
    assert latest.limit == D("73.58")
    assert CATALOGUE.latest_limit(G102, date(2024, 1, 1)) is None


@given(
    gaps=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 60)), min_size=0, max_size=6),
    days=st.lists(st.integers(-10, 400), min_size=1, max_size=12),
)
def test_limits_are_found_as_their_dates_say(gaps: list[tuple[int, int]], days: list[int]) -> None:
    # rows of two items, each a run of limits within one financial year with
    # gaps between them: what the catalogue finds is what the dates say
    first = date(2025, 7, 1)
    rows = []
    for number in (G102, "04_104_0136_6_1"):
        start = first
        for n, (gap, length) in enumerate(gaps):
            begins = start + timedelta(days=gap)
            ends = begins + timedelta(days=length)
            if ends >= date(2026, 7, 1):
                break
            # each item's limits their own, so a lookup of the other's would show
            limit = n + 1 if number == G102 else 100 + n
            rows.append(
                PriceLimit(number=number, effective_from=begins, effective_to=ends, limit=limit)
            )
            start = ends + timedelta(days=1)
    items = [SupportItem(number=n, name=n, unit="hour") for n in (G102, "04_104_0136_6_1")]
    catalogue = PriceCatalogue(items=items, limits=rows)
    for offset in days:
        day = first + timedelta(days=offset)
        for number in (G102, "04_104_0136_6_1"):
            mine = [r for r in rows if r.number == number]
            covering = [r.limit for r in mine if r.effective_from <= day <= r.effective_to]
            started = [r for r in mine if r.effective_from <= day]
            assert catalogue.latest_limit(number, day) == (started[-1] if started else None)
            if covering:
                assert catalogue.limit(number, day) == covering[0]
            else:
                with pytest.raises(NoPriceLimitError):
                    catalogue.limit(number, day)


@pytest.mark.parametrize(
    ("day", "year"),
    [(date(2026, 6, 30), "2025-26"), (date(2026, 7, 1), "2026-27"), (date(2099, 12, 1), "2099-00")],
)
def test_financial_year(day: date, year: str) -> None:
    assert financial_year(day) == year


ITEMS_CSV = """item_number,name,unit,gst_code,price_limited
04_102_0136_6_1,Group weekday,hour,P2,yes
04_591_0136_6_1,Transport,dollar,P2,no
"""


def limits_csv(*rows: str) -> str:
    return "item_number,applies_to,financial_year,effective_from,effective_to,limit\n" + "\n".join(
        rows
    )


def test_catalogue_from_csv_is_order_independent_and_skips_comments() -> None:
    a = limits_csv(
        "04_102_0136_6_1,unit,2025-26,2025-07-01,2026-06-30,70.23",
        "# next year",
        "04_102_0136_6_1,unit,2026-27,2026-07-01,2027-06-30,73.58",
    )
    b = limits_csv(
        "04_102_0136_6_1,unit,2026-27,2026-07-01,2027-06-30,73.58",
        "",
        "04_102_0136_6_1,unit,2025-26,2025-07-01,2026-06-30,70.23",
    )
    assert PriceCatalogue.from_csv(ITEMS_CSV, a) == PriceCatalogue.from_csv(ITEMS_CSV, b)


@pytest.mark.parametrize(
    ("items", "limits", "message"),
    [
        (
            ITEMS_CSV,
            limits_csv("04_102_0136_6_1,unit,2025-26,2025-07-01,2026-06-30,70.234"),
            ":2: limit",
        ),
        (ITEMS_CSV, limits_csv("04_102_0136_6_1,unit,2025-26,2025-07-01,2026-06-30,1e3"), "limit"),
        (
            ITEMS_CSV,
            limits_csv("04_102_0136_6_1,unit,2026-27,2025-07-01,2026-06-30,70.23"),
            "financial_year",
        ),
        (
            ITEMS_CSV,
            limits_csv("04_102_0136_6_1,unit,2025-26,2025-07-01,2026-07-01,70.23"),
            "crosses 1 July",
        ),
        (
            ITEMS_CSV,
            limits_csv("04_102_0136_6_1,unit,2025-26,2025-07-01,2025/12/31,70.23"),
            "YYYY-MM-DD",
        ),
        (
            ITEMS_CSV,
            limits_csv("04_103_0136_6_1,unit,2025-26,2025-07-01,2026-06-30,77.38"),
            "unknown support item",
        ),
        (
            ITEMS_CSV,
            limits_csv("04_591_0136_6_1,unit,2025-26,2025-07-01,2026-06-30,1.00"),
            "not price-limited",
        ),
        (
            ITEMS_CSV,
            limits_csv("04_102_0136_6_1,km-van,2025-26,2025-07-01,2026-06-30,1.00"),
            "applies_to",
        ),
        (
            ITEMS_CSV,
            limits_csv(
                "04_102_0136_6_1,unit,2025-26,2025-07-01,2026-06-30,70.23",
                "04_102_0136_6_1,unit,2025-26,2026-01-01,2026-06-30,71.00",
            ),
            "overlap",
        ),
        (ITEMS_CSV + ITEMS_CSV.splitlines()[1], limits_csv(), "listed twice"),
        ("item_number,name,unit,gst_code\n", limits_csv(), "missing price_limited"),
        ("item_number,name,unit,gst_code,price_limited,colour\n", limits_csv(), "unknown colour"),
        (
            "item_number,name,unit,gst_code,price_limited\n04_102,x,hour,P2,yes\n",
            limits_csv(),
            "whole",
        ),
        (
            "item_number,name,unit,gst_code,price_limited\n04_102_0136_6_1,x,day,P2,yes\n",
            limits_csv(),
            "unit",
        ),
        (
            "item_number,name,unit,gst_code,price_limited\n04_102_0136_6_1,x,hour,P3,yes\n",
            limits_csv(),
            "GST",
        ),
        (
            "item_number,name,unit,gst_code,price_limited\n04_102_0136_6_1,x,hour,P2,maybe\n",
            limits_csv(),
            "yes or no",
        ),
        (
            "item_number,name,unit,gst_code,price_limited\n04_102_0136_6_1,x,hour\n",
            limits_csv(),
            "got 3",
        ),
        ("", limits_csv(), "no header"),
    ],
)
def test_bad_price_data_is_refused_with_file_and_line(
    items: str, limits: str, message: str
) -> None:
    with pytest.raises(PriceDataError, match=re.escape(message)) as e:
        PriceCatalogue.from_csv(items, limits)
    assert isinstance(e.value, ValueError)
    assert isinstance(e.value, LoomError)
    assert "csv" in str(e.value)


def test_money_is_never_float() -> None:
    with pytest.raises(LoomError):
        PriceLimit(
            number=G102,
            effective_from=date(2025, 7, 1),
            effective_to=date(2026, 6, 30),
            limit=70.23,
        )
    with pytest.raises(LoomError):
        SupportItem(number="4_102_0136_6_1", name="x", unit="hour")


# --------------------------------------------------------------------------- group pricing


@pytest.mark.parametrize(
    ("limit", "workers", "participants", "price"),
    [
        ("70.23", 3, 10, "21.06"),  # NDIS.md: 21.069 -> 21.06
        ("77.38", 1, 6, "12.89"),  # 12.8966...: rounding to nearest would give 12.90
        ("73.58", 1, 3, "24.52"),  # 24.5266...
        ("98.83", 2, 7, "28.23"),  # 28.2371...
        ("163.46", 2, 3, "108.97"),  # 108.9733...
        ("127.43", 1, 8, "15.92"),  # 15.92875: half-up would give 15.93
        ("70.23", 1, 3, "23.41"),  # exact
        ("70.23", 1, 1, "70.23"),
        ("70.23", 3, 2, "70.23"),  # more workers than participants: capped at the limit
        ("70.23", 5, 1, "70.23"),
    ],
)
def test_group_unit_price(limit: str, workers: int, participants: int, price: str) -> None:
    assert group_unit_price(D(limit), workers, participants) == D(price)


def test_group_price_ignores_the_hosts_decimal_context() -> None:
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_UP)):
        assert group_unit_price(D("70.23"), 3, 10) == D("21.06")
        assert transport_cost_per_rider(D("23.5"), D("2.76"), 4) == D("16.21")


@pytest.mark.parametrize(
    ("limit", "workers", "participants"),
    [
        (D("70.23"), 0, 10),
        (D("70.23"), 3, 0),
        (70.23, 3, 10),
        (D("-1"), 1, 1),
        (D("70.23"), True, 3),
    ],
)
def test_group_price_refuses_bad_input(
    limit: object, workers: object, participants: object
) -> None:
    with pytest.raises(InvalidBillingInputError):
        group_unit_price(limit, workers, participants)  # type: ignore[arg-type]


def test_transport_cost_per_rider() -> None:
    assert transport_cost_per_rider(D("23.5"), D("2.76"), 4) == D("16.21")  # 16.215
    assert transport_cost_per_rider(D("10"), D("0.99"), 3, rate_limit=D("0.99")) == D("3.30")
    assert transport_cost_per_rider(D("0"), D("2.76"), 5) == D("0.00")
    with pytest.raises(InvalidBillingInputError, match="above the limit"):
        transport_cost_per_rider(D("10"), D("1.20"), 3, rate_limit=D("0.99"))
    with pytest.raises(InvalidBillingInputError):
        transport_cost_per_rider(D("10"), D("0.99"), 0)


# --------------------------------------------------------------------------- price_attendance


def group_lines(lines: tuple[BillingLine, ...]) -> list[BillingLine]:
    return [x for x in lines if x.item_number in GROUP_ACTIVITY_ITEMS.values()]


def test_attending_participants_share_the_workers() -> None:
    lines = price(instance(date(2025, 10, 8), people(10)), workers=3)
    assert len(lines) == 10
    for n, line in enumerate(lines, start=1):
        assert line.participant_id == f"p{n:02d}"
        assert line.ndis_number == f"43{n:07d}"
        assert (line.item_number, line.band) == (G102, "weekday-daytime")
        assert (line.quantity, line.unit_price, line.total) == (D("6.00"), D("21.06"), D("126.36"))
        assert (line.gst_code, line.claim_type, line.cancellation_reason) == ("P2", "", "")
        assert line.unit == "hour"
        assert line.flags == ()
        assert line.provenance == (f"enrol-{n}",)


def test_30_june_and_1_july_use_each_years_limit() -> None:
    june = price(instance(date(2026, 6, 30), people(5)), workers=2)
    july = price(instance(date(2026, 7, 1), people(5)), workers=2)
    assert {x.unit_price for x in june} == {D("28.09")}  # 70.23 x 2 / 5 = 28.092
    assert {x.unit_price for x in july} == {D("29.43")}  # 73.58 x 2 / 5 = 29.432


@pytest.mark.parametrize(
    ("day", "item", "unit_price"),
    [
        (date(2026, 10, 10), G104, "41.41"),  # 103.54 x 2 / 5
        (date(2026, 10, 11), G105, "53.40"),  # 133.50 x 2 / 5
        (date(2026, 12, 28), G106, "65.38"),  # Boxing Day observed: 163.46 x 2 / 5 = 65.384
        (date(2026, 8, 3), G102, "29.43"),  # bank holiday: an ordinary weekday
    ],
)
def test_the_band_picks_the_item(day: date, item: str, unit_price: str) -> None:
    lines = price(instance(day, people(5)), workers=2)
    assert {(x.item_number, x.unit_price) for x in lines} == {(item, D(unit_price))}


def absence_days(notified_on: date, day: date = WED) -> int:
    return Absence(
        program_id="centre", date=day, participant_id="p05", notified_on=notified_on
    ).clear_days_notice()


def test_6_clear_days_is_short_notice_7_is_not() -> None:
    assert absence_days(date(2026, 9, 30)) == 6
    assert absence_days(date(2026, 9, 29)) == 7  # Labour Day (5 Oct) counts like any day
    six = Alloc(
        participant_id="p05",
        status="cancelled",
        notice_days=6,
        reason_code="NSDF",
        provenance=("abs",),
    )
    seven = attrs.evolve(six, notice_days=7)

    short = price(instance(WED, [*people(4), six]), workers=2)
    assert len(short) == 5
    canc = short[-1]
    assert (canc.participant_id, canc.claim_type, canc.cancellation_reason) == (
        "p05",
        "CANC",
        "NSDF",
    )
    assert canc.item_number == G102
    assert canc.quantity == D("6.00")
    # the divisor stays 5 for everyone: 73.58 x 2 / 5
    assert {x.unit_price for x in short} == {D("29.43")}
    assert canc.provenance == ("abs",)

    enough = price(instance(WED, [*people(4), seven]), workers=2)
    assert [x.participant_id for x in enough] == ["p01", "p02", "p03", "p04"]
    assert {x.unit_price for x in enough} == {D("36.79")}  # 73.58 x 2 / 4


def test_a_no_show_is_a_cancellation_claim() -> None:
    no_show = Alloc(
        participant_id="p03", status="cancelled", notice_days=0, no_show=True, reason_code="NSDH"
    )
    lines = price(instance(WED, [*people(2), no_show]), workers=1)
    assert [(x.participant_id, x.claim_type, x.cancellation_reason) for x in lines] == [
        ("p01", "", ""),
        ("p02", "", ""),
        ("p03", "CANC", "NSDH"),
    ]
    assert len({x.unit_price for x in lines}) == 1
    missing_code = attrs.evolve(no_show, reason_code="")
    assert price(instance(WED, [missing_code]))[0].cancellation_reason == "NSDO"


def test_cancellation_percentage_is_a_setting() -> None:
    canc = Alloc(participant_id="p03", status="cancelled", notice_days=1, reason_code="NSDO")
    lines = price(
        instance(WED, [*people(2), canc]),
        workers=1,
        settings=BillingSettings(cancellation_percent=D(90)),
    )
    assert lines[0].unit_price == D("24.52")  # 73.58 / 3 = 24.526
    assert lines[-1].unit_price == D("22.06")  # 24.52 x 0.9 = 22.068
    with pytest.raises(InvalidBillingInputError):
        BillingSettings(cancellation_percent=D(101))


def test_a_cancelled_instance_bills_nothing() -> None:
    inst = instance(WED, people(5), status="cancelled")
    assert price(inst, workers=2) == ()
    # a provider cancellation carries no notice: nothing to claim even if listed
    listed = Alloc(participant_id="p01", status="cancelled", notice_days=None)
    assert price(instance(WED, [listed])) == ()


def test_centre_capital_is_per_participant_hour_and_not_divided() -> None:
    canc = Alloc(participant_id="p09", status="cancelled", notice_days=2, reason_code="NSDT")
    settings = BillingSettings(items=ItemChoice(centre_capital=True))
    lines = price(instance(WED, [*people(8), canc]), workers=3, settings=settings)
    capital = [x for x in lines if x.item_number == CAPITAL]
    assert [x.participant_id for x in capital] == [f"p{i:02d}" for i in range(1, 9)]  # not p09
    assert {(x.quantity, x.unit_price, x.total) for x in capital} == {
        (D("6.00"), D("2.71"), D("16.26"))
    }
    assert {x.unit_price for x in group_lines(lines)} == {D("24.52")}  # 73.58 x 3 / 9


def test_transport_is_dollars_at_one_dollar_for_riders_who_came() -> None:
    canc = Alloc(participant_id="p03", status="cancelled", notice_days=0, reason_code="NSDT")
    cost = transport_cost_per_rider(D("23.5"), D("2.76"), 4)
    lines = price(
        instance(WED, [*people(2), canc]),
        transport_costs={"p01": cost, "p03": cost, "p02": D("0")},
    )
    rides = [x for x in lines if x.item_number == TRANSPORT]
    assert [(x.participant_id, x.quantity, x.unit_price, x.total, x.unit) for x in rides] == [
        ("p01", D("16.21"), D("1.00"), D("16.21"), "dollar")
    ]


def test_lead_counts_is_a_setting() -> None:
    counted = price(instance(WED, people(10)), workers=3, leads=1)
    not_counted = price(
        instance(WED, people(10)), workers=3, leads=1, settings=BillingSettings(lead_counts=False)
    )
    assert {x.unit_price for x in counted} == {D("22.07")}  # 73.58 x 3 / 10
    assert {x.unit_price for x in not_counted} == {D("14.71")}  # 73.58 x 2 / 10
    # at least one worker is always counted
    alone = price(
        instance(WED, people(2)), workers=1, leads=1, settings=BillingSettings(lead_counts=False)
    )
    assert {x.unit_price for x in alone} == {D("36.79")}
    with pytest.raises(InvalidBillingInputError):
        price(instance(WED, people(2)), workers=1, leads=2)


def test_participant_items_replace_the_programs() -> None:
    items = ITEMS_CSV + "01_011_0107_1_1,Assistance with meals,each,P2,yes\n"
    catalogue = PriceCatalogue.from_csv(
        items,
        limits_csv(
            "04_102_0136_6_1,unit,2026-27,2026-07-01,2027-06-30,73.58",
            "01_011_0107_1_1,unit,2026-27,2026-07-01,2027-06-30,12.50",
        ),
    )
    lines = price_attendance(
        instance(WED, people(3)),
        catalogue=catalogue,
        holidays=HOLIDAYS,
        ndis_numbers=NDIS,
        workers=1,
        participant_items={"p03": ItemChoice(group_activity=False, extra_items="01_011_0107_1_1")},
    )
    assert [(x.participant_id, x.item_number, x.quantity, x.unit_price) for x in lines] == [
        ("p01", G102, D("6.00"), D("36.79")),  # divided by 2: p03 is not on the group item
        ("p02", G102, D("6.00"), D("36.79")),
        ("p03", "01_011_0107_1_1", D("1.00"), D("12.50")),
    ]


def test_night_is_billed_on_the_evening_item_and_flagged() -> None:
    lines = price(instance(WED, people(2), start=time(5), end=time(9)))
    assert {(x.item_number, x.band, x.flags) for x in lines} == {
        (G103, "weekday-night", ("night-band",))
    }
    assert {x.unit_price for x in lines} == {D("40.53")}  # 81.07 / 2
    assert set(BILLING_FLAGS) == {"night-band", "provisional-price"}


def test_a_year_not_yet_published_is_priced_provisionally() -> None:
    lines = price(instance(date(2027, 7, 7), people(2)))
    assert {(x.unit_price, x.flags) for x in lines} == {(D("36.79"), ("provisional-price",))}
    with pytest.raises(NoPriceLimitError):
        price(instance(date(2024, 7, 3), people(2)))  # before any limit: no safe price


def test_dst_days_bill_real_hours() -> None:
    day = date(2026, 4, 5)  # clocks go back at 03:00, and it is Easter Sunday
    lines = price(instance(day, people(1), start=time(1), end=time(5)))
    assert [(x.quantity, x.item_number) for x in lines] == [(D("5.00"), G106)]
    assert price(instance(WED, people(1), start=time(9), end=time(9))) == ()


def test_lines_are_deterministic_and_references_unique() -> None:
    allocs = [
        *people(6),
        Alloc(participant_id="p07", status="cancelled", notice_days=3, reason_code="NSDO"),
    ]
    settings = BillingSettings(items=ItemChoice(centre_capital=True))
    first = price(instance(WED, allocs), workers=2, settings=settings)
    shuffled = allocs[:]
    random.Random(7).shuffle(shuffled)
    assert price(instance(WED, shuffled), workers=2, settings=settings) == first
    refs = [x.claim_reference for x in first]
    assert len(set(refs)) == len(refs)
    assert all(re.fullmatch(r"20261007-[0-9_]+-[0-9a-f]{12}", r) and len(r) <= 50 for r in refs)
    long = claim_reference(WED, "x" * 200 + "/2026-10-07", "y" * 100, G102, "CANC")
    assert len(long) <= 50


def test_unknown_status_and_missing_ndis_numbers() -> None:
    with pytest.raises(InvalidBillingInputError, match="status"):
        price(instance(WED, [Alloc(participant_id="p01", status="maybe")]))
    lines = price_attendance(
        instance(WED, people(1)), catalogue=CATALOGUE, holidays=HOLIDAYS, ndis_numbers={}, workers=1
    )
    assert lines[0].ndis_number == ""  # refused later, by the claim export


def test_billing_line_checks_itself() -> None:
    line = price(instance(WED, people(1)))[0]
    for change in (
        {"quantity": D("1.005")},
        {"unit_price": D("-1.00")},
        {"claim_type": "REPW"},
        {"cancellation_reason": "NSDH"},
        {"claim_type": "CANC"},
        {"claim_reference": "a b"},
        {"gst_code": "P3"},
        {"flags": ("odd",)},
        {"unit": ["hour"]},
    ):
        with pytest.raises(InvalidBillingInputError):
            attrs.evolve(line, **change)


@given(
    day=st.dates(date(2025, 7, 1), date(2027, 6, 30)),
    times=st.sampled_from([(time(9), time(15)), (time(20), time(23)), (time(22), time(2))]),
    allocs=st.lists(
        st.tuples(
            st.sampled_from(["attending", "cancelled"]),
            st.sampled_from(["NSDH", "NSDF", "NSDT", "NSDO", ""]),
            st.integers(0, 10),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    ),
    workers=st.integers(1, 4),
    items=st.builds(
        ItemChoice,
        group_activity=st.booleans(),
        centre_capital=st.booleans(),
        extra_items=st.sampled_from([(), ("04_104_0136_6_1",)]),
    ),
    percent=st.sampled_from([D(100), D(90), D("33.5")]),
    fares=st.lists(st.decimals(D(0), D(40), places=3), max_size=12),
)
def test_every_line_priced_passes_the_lines_own_checks(
    day: date,
    times: tuple[time, time],
    allocs: list[tuple[str, str, int, bool]],
    workers: int,
    items: ItemChoice,
    percent: Decimal,
    fares: list[Decimal],
) -> None:
    """The pricer makes its lines without BillingLine's checks (they cost
    more than the line): each must pass them, made again the checked way."""
    start, end = datetime.combine(day, times[0], SYDNEY), datetime.combine(day, times[1], SYDNEY)
    if end <= start:
        end += timedelta(days=1)
    allocations = [
        Alloc(
            participant_id=f"p{i:02d}",
            status=status,
            reason_code=reason,
            notice_days=notice,
            no_show=no_show,
            provenance=(f"enrol-{i}",),
        )
        for i, (status, reason, notice, no_show) in enumerate(allocs, 1)
    ]
    inst = Inst(
        id=f"centre/{day.isoformat()}",
        program_id="centre",
        date=day,
        start=start,
        end=end,
        allocations=tuple(allocations),
    )
    lines = price(
        inst,
        workers=workers,
        settings=BillingSettings(items=items, cancellation_percent=percent),
        transport_costs={f"p{i:02d}": fare for i, fare in enumerate(fares, 1)},
    )
    for line in lines:
        assert BillingLine(**attrs.asdict(line, recurse=False)) == line


def test_lines_made_unchecked_set_every_field_in_its_own_slot() -> None:
    names = [a.name for a in attrs.fields(BillingLine)]
    assert list(inspect.signature(_made_line).parameters) == names
    line = _made_line(**{name: f"<{name}>" for name in names})  # type: ignore[arg-type]
    assert attrs.asdict(line, recurse=False) == {name: f"<{name}>" for name in names}


T0 = datetime(2026, 9, 1, tzinfo=ZoneInfo("UTC"))


def enrolled_on_wednesdays(people: range, items: ItemChoice | None = None) -> list[Enrolment]:
    """Each of ``people`` (p01, p02, …) enrolled in centre-wed from 1 January 2026."""
    return [
        Enrolment(
            id=f"e{i}",
            recorded_at=T0,
            program_id="centre-wed",
            participant_id=f"p{i:02d}",
            start=date(2026, 1, 1),
            items=items,
        )
        for i in people
    ]


def test_plan_day_instances_can_be_priced() -> None:
    org = seed_organisation()
    enrolments = enrolled_on_wednesdays(range(1, 11))
    absence = Absence(
        id="a1",
        recorded_at=T0,
        program_id="centre-wed",
        date=WED,
        participant_id="p10",
        notified_on=date(2026, 10, 5),
        reason_code="NSDF",
    )
    plan = plan_day(PlanInputs(organisation=org, intents=enrolments, one_offs=[absence]), WED)
    (inst,) = [i for i in plan.instances if i.program_id == "centre-wed"]
    lines = price_attendance(
        inst,
        catalogue=CATALOGUE,
        holidays=HOLIDAYS,
        ndis_numbers={p.id: p.ndis_number for p in org.participants},
        workers=inst.staff_demand.total,
        leads=inst.staff_demand.leads,
    )
    assert len(lines) == 10
    assert lines[-1].claim_type == "CANC"
    assert lines[-1].provenance == ("a1", "e10")
    # 9 attending need 1 lead + 2 support; the divisor counts the cancellation: 73.58 x 3 / 10
    assert {x.unit_price for x in lines} == {D("22.07")}


def test_billing_remembered_for_an_instance_follows_its_shifts_and_runs() -> None:
    # what another program's edit can change of an instance without dropping
    # its program's memo: who works it (and as what), its runs' vehicles, km
    # and riders. Billing remembered from the instance as it was answers each
    # variant as billing it afresh does.
    from loomcore._plan import _billing, _remembered_billing

    base = seed_organisation()
    programs = [
        attrs.evolve(p, billing=BillingSettings(lead_counts=False)) if p.id == "centre-wed" else p
        for p in base.programs
    ]
    # no spare seat: never planned on, but a run on it would cost less
    car = Vehicle(id="car", name="Car", seats=1, kind="car", cost_per_km=Decimal("0.10"))
    org = attrs.evolve(base, programs=programs, vehicles=(*base.vehicles, car))
    enrolments = enrolled_on_wednesdays(range(1, 11))
    inputs = PlanInputs(organisation=org, intents=enrolments, catalogue=CATALOGUE)
    (inst,) = [i for i in plan_day(inputs, WED).instances if i.program_id == "centre-wed"]
    lead = next(s for s in inst.shifts if s.role == "lead")
    support = next(s for s in inst.shifts if s.role == "support")
    run = inst.bus_runs[0]

    def with_shift(old: Shift, new: Shift) -> Instance:
        return attrs.evolve(inst, shifts=tuple(new if s is old else s for s in inst.shifts))

    def with_run(new: BusRun) -> Instance:
        return attrs.evolve(inst, bus_runs=(new, *inst.bus_runs[1:]))

    variants = {
        "a lead works as support": with_shift(lead, attrs.evolve(lead, role="support")),
        "a support shift is unfilled": with_shift(support, attrs.evolve(support, staff_id="")),
        "a run is longer": with_run(attrs.evolve(run, km=run.km + 7.5)),
        "a run carries fewer": with_run(
            attrs.evolve(
                run, stops=tuple(x for x in run.stops if x.participant_id != run.riders[0])
            )
        ),
        "a run has a car": with_run(attrs.evolve(run, vehicle_id="car")),
    }
    assert inst.billing_lines
    for name, variant in variants.items():
        afresh, _ = _billing(inputs, CATALOGUE, WED, variant)
        assert afresh != inst.billing_lines, name
        _remembered_billing(inputs, CATALOGUE, WED, inst)
        assert _remembered_billing(inputs, CATALOGUE, WED, variant).billing_lines == afresh, name


@pytest.mark.parametrize(
    "extra",
    ["99_999_9999_9_9", ["04_591_0136_6_1"], "04_591_0136_6_1"],
    ids=["unknown", "not a number", "claimed in dollars"],
)
def test_an_extra_item_the_catalogue_cannot_price_leaves_the_instance_unbilled(
    extra: object,
) -> None:
    choice = ItemChoice(extra_items=[extra])  # type: ignore[list-item]
    enrolments = enrolled_on_wednesdays(range(1, 2), items=choice)
    inputs = PlanInputs(organisation=seed_organisation(), intents=enrolments, catalogue=CATALOGUE)
    (inst,) = [i for i in plan_day(inputs, WED).instances if i.program_id == "centre-wed"]
    assert inst.billing_lines == ()
    (warning,) = [w for w in inst.warnings if w.code == "billing-unavailable"]
    assert warning.message.startswith("centre-wed/2026-10-07: not billed: ")


def test_a_total_beyond_what_a_line_takes_is_refused_as_before() -> None:
    """The pricer makes its lines unchecked, but an amount beyond the 28
    digits a line's checks work in is checked first, and refused as a line
    made by anyone else is (10**25 an hour for 5,000 hours)."""
    number = "04_999_0136_6_1"
    catalogue = PriceCatalogue(
        items=[SupportItem(number=number, name="x", unit="hour")],
        limits=[
            PriceLimit(
                number=number,
                effective_from=date(2026, 7, 1),
                effective_to=date(2027, 6, 30),
                limit=D(10) ** 25,
            )
        ],
    )
    start = datetime.combine(WED, time(9), SYDNEY)
    inst = Inst(
        id="c/x",
        program_id="c",
        date=WED,
        start=start,
        end=start + timedelta(hours=5000),
        allocations=(Alloc(participant_id="p01"),),
    )
    settings = BillingSettings(items=ItemChoice(group_activity=False, extra_items=(number,)))
    with pytest.raises(InvalidBillingInputError, match=r"BillingLine\.total must be a Decimal"):
        price_attendance(
            inst,
            catalogue=catalogue,
            holidays=HOLIDAYS,
            ndis_numbers={},
            workers=1,
            settings=settings,
        )
