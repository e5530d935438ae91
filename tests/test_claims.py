"""The NDIS bulk payment request CSV and the finance summary."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, localcontext
from typing import Any

import attrs
import pytest

from loomcore import LoomError
from loomcore._billing import (
    BillingLine,
    BillingSettings,
    ItemChoice,
    claim_reference,
    price_attendance,
)
from loomcore._claims import (
    CLAIM_COLUMNS,
    MAX_ROWS,
    InvalidClaimError,
    bulk_claim_files,
    finance_summary,
    format_summary,
)
from test_billing import CATALOGUE, HOLIDAYS, NDIS, WED, Alloc, instance, people

REG = "4050012345"
ABN = "51824753556"  # the ATO's example ABN: its check digits are right
D = Decimal

# NDIS.md, "The bulk payment request CSV": the 16 columns in order.
LAYOUT = [
    ("RegistrationNumber", r"405\d*"),
    ("NDISNumber", r"43\d{7}"),
    ("SupportsDeliveredFrom", r"\d{4}-\d{2}-\d{2}"),
    ("SupportsDeliveredTo", r"\d{4}-\d{2}-\d{2}"),
    ("SupportNumber", r"\d{2}_\d{3}_\d{4}_\d_\d"),
    ("ClaimReference", r"[A-Za-z0-9/_-]{1,50}"),
    ("Quantity", r"\d+(\.\d{1,2})?"),
    ("Hours", r""),  # blank: Quantity holds the hours, never both
    ("UnitPrice", r"\d+\.\d{2}"),
    ("GSTCode", r"P1|P2|P5"),
    ("AuthorisedBy", r""),
    ("ParticipantApproved", r""),
    ("InKindFundingProgram", r""),
    ("ClaimType", r"|CANC|REPW|TRAN|NF2F|THLT|IRSS"),
    ("CancellationReason", r"|NSDH|NSDF|NSDT|NSDO"),
    ("ABN of Support Provider", r"\d{11}"),
]


def week_of_lines() -> list[BillingLine]:
    """Two instances: delivered, CANC, centre capital and transport lines."""
    settings = BillingSettings(items=ItemChoice(centre_capital=True))
    lines: list[BillingLine] = []
    for day in (WED, WED + timedelta(days=3)):  # a Wednesday and a Saturday
        canc = Alloc(participant_id="p05", status="cancelled", notice_days=2, reason_code="NSDH")
        lines += price_attendance(
            instance(day, [*people(4), canc]),
            catalogue=CATALOGUE,
            holidays=HOLIDAYS,
            ndis_numbers=NDIS,
            workers=2,
            settings=settings,
            transport_costs={"p01": D("16.21")},
        )
    return lines


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_the_csv_matches_the_layout_column_by_column() -> None:
    lines = week_of_lines()
    (file,) = bulk_claim_files(lines, registration_number=REG, abn=ABN)
    rows = parse(file.text)
    assert rows[0] == [name for name, _ in LAYOUT] == list(CLAIM_COLUMNS)
    assert len(rows) == len(lines) + 1 == file.rows + 1
    for row in rows[1:]:
        assert len(row) == 16
        for (name, pattern), cell in zip(LAYOUT, row, strict=True):
            assert re.fullmatch(pattern, cell), (name, cell)
        assert row[2] == row[3]
        assert (row[13] == "CANC") == (row[14] != "")
    assert {r[14] for r in rows[1:] if r[13] == "CANC"} == {"NSDH"}
    first = rows[1]
    assert first[:10] == [REG, "430000001", "2026-10-07", "2026-10-07", "04_102_0136_6_1",
                          first[5], "6.00", "", "29.43", "P2"]  # fmt: skip
    transport = [r for r in rows[1:] if r[4] == "04_591_0136_6_1"]
    assert [(r[6], r[8]) for r in transport] == [("16.21", "1.00")] * 2


def test_the_bytes_are_deterministic_crlf_ascii() -> None:
    lines = week_of_lines()
    shuffled = lines[:]
    random.Random(3).shuffle(shuffled)
    (a,) = bulk_claim_files(lines, registration_number=REG, abn=ABN)
    (b,) = bulk_claim_files(shuffled, registration_number=REG, abn=ABN)
    assert a == b
    assert a.data == b.data
    assert a.data.count(b"\r\n") == len(lines) + 1
    assert b"\n" not in a.data.replace(b"\r\n", b"")
    assert a.text.endswith("\r\n")
    assert '"' not in a.text
    rows = parse(a.text)[1:]
    keys = [(r[2], r[1], r[4]) for r in rows]
    assert keys == sorted(keys)  # by date, participant, item


def many_lines(n: int) -> list[BillingLine]:
    template = week_of_lines()[0]
    start = date(2026, 7, 1)
    out = []
    for i in range(n):
        day = start + timedelta(days=i % 300)
        pid = f"p{i % 30 + 1:02d}"
        out.append(
            attrs.evolve(
                template,
                participant_id=pid,
                ndis_number=NDIS[pid],
                date=day,
                instance_id=f"centre/{day.isoformat()}",
                claim_reference=claim_reference(day, f"centre/{i}", pid, template.item_number),
            )
        )
    return out


def test_more_than_5000_rows_are_split() -> None:
    lines = many_lines(2 * MAX_ROWS + 1)
    files = bulk_claim_files(lines, registration_number=REG, abn=ABN)
    assert [f.name for f in files] == ["claims-001.csv", "claims-002.csv", "claims-003.csv"]
    assert [f.rows for f in files] == [5000, 5000, 1]
    assert all(len(f.name) <= 20 for f in files)
    assert all(f.text.startswith(",".join(CLAIM_COLUMNS) + "\r\n") for f in files)
    rows = [r for f in files for r in parse(f.text)[1:]]
    assert len(rows) == len(lines)
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)  # order runs across the files
    assert bulk_claim_files(many_lines(MAX_ROWS), registration_number=REG, abn=ABN)[0].rows == 5000
    assert bulk_claim_files([], registration_number=REG, abn=ABN) == []


@pytest.mark.parametrize("prefix", ["claims", "x", "nov_2026", "abcdefghijkl"])
def test_file_names_fit_in_20_characters(prefix: str) -> None:
    (file,) = bulk_claim_files(week_of_lines(), registration_number=REG, abn=ABN, prefix=prefix)
    assert file.name == f"{prefix}-001.csv"
    assert len(file.name) <= 20


@pytest.mark.parametrize("prefix", ["abcdefghijklm", "claims 2026", "a.b", "", "ré"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidClaimError) as e:
        bulk_claim_files(week_of_lines(), registration_number=REG, abn=ABN, prefix=prefix)
    assert e.value.culprit == "prefix"


@pytest.mark.parametrize("number", ["1234567890", "405ABC", "", " 4050012345", "4O50012345"])
def test_bad_registration_numbers_are_refused(number: str) -> None:
    with pytest.raises(InvalidClaimError) as e:
        bulk_claim_files(week_of_lines(), registration_number=number, abn=ABN)
    assert e.value.culprit == "registration_number"
    assert e.value.value == number
    assert repr(number) in str(e.value)
    assert "registration number" in str(e.value)
    assert isinstance(e.value, ValueError)
    assert isinstance(e.value, LoomError)


@pytest.mark.parametrize("abn", ["5182475355", "51 824 753 556", "51824753557", "518247535560", ""])
def test_bad_abns_are_refused(abn: str) -> None:
    with pytest.raises(InvalidClaimError, match="ABN") as e:
        bulk_claim_files(week_of_lines(), registration_number=REG, abn=abn)
    assert e.value.culprit == "abn"
    assert repr(abn) in str(e.value)


@pytest.mark.parametrize("ndis", ["", "331111111", "43111111", "4311111111", "43111111x"])
def test_bad_ndis_numbers_are_refused_naming_the_participant(ndis: str) -> None:
    lines = week_of_lines()
    lines[3] = attrs.evolve(lines[3], ndis_number=ndis)
    with pytest.raises(InvalidClaimError) as e:
        bulk_claim_files(lines, registration_number=REG, abn=ABN)
    assert e.value.culprit == "ndis_number"
    assert e.value.participant_id == lines[3].participant_id
    assert repr(lines[3].participant_id) in str(e.value)
    assert repr(ndis) in str(e.value)


def test_provisional_prices_and_repeated_references_are_refused() -> None:
    lines = week_of_lines()
    provisional = [attrs.evolve(lines[0], flags=("provisional-price",)), *lines[1:]]
    with pytest.raises(InvalidClaimError, match="provisional") as e:
        bulk_claim_files(provisional, registration_number=REG, abn=ABN)
    assert e.value.culprit == "provisional_price"
    assert bulk_claim_files(provisional, registration_number=REG, abn=ABN, allow_provisional=True)
    with pytest.raises(InvalidClaimError, match="two lines"):
        bulk_claim_files([*lines, lines[0]], registration_number=REG, abn=ABN)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("participant_id", None),
        ("ndis_number", None),
        ("item_number", None),
    ],
)
def test_a_line_with_a_field_of_the_wrong_type_is_refused_by_name(
    field: str, value: object
) -> None:
    lines = week_of_lines()
    changes: dict[str, Any] = {field: value}
    broken = attrs.evolve(lines[1], **changes)  # fields without checks of their own
    with pytest.raises(InvalidClaimError, match=f"{field} must be text") as e:
        bulk_claim_files([lines[0], broken, *lines[2:]], registration_number=REG, abn=ABN)
    assert e.value.culprit == field


def test_a_line_dated_with_a_time_or_too_large_is_refused_when_made() -> None:
    line = week_of_lines()[0]
    with pytest.raises(LoomError, match="must be a date"):
        attrs.evolve(line, date=datetime.combine(line.date, datetime.min.time()))
    with pytest.raises(LoomError, match="quantity must be a Decimal"):
        attrs.evolve(line, quantity=D("1E+26"))
    reference: Any = 7
    with pytest.raises(LoomError, match="claim_reference must be 1–50 letters"):
        attrs.evolve(line, claim_reference=reference)


def test_finance_summary_per_participant_program_and_month() -> None:
    lines = week_of_lines()
    september = attrs.evolve(
        lines[0],
        date=date(2026, 9, 30),
        instance_id="centre/2026-09-30",
        claim_reference=claim_reference(date(2026, 9, 30), "centre/2026-09-30", "p01", "x"),
    )
    rows = finance_summary([*lines, september])
    assert [(r.participant_id, r.month) for r in rows] == [
        ("p01", "2026-09"),
        ("p01", "2026-10"),
        ("p02", "2026-10"),
        ("p03", "2026-10"),
        ("p04", "2026-10"),
        ("p05", "2026-10"),
    ]
    p01 = rows[1]
    # two instances of 6 hours, each counted once although billed on group and centre capital
    assert (p01.instances, p01.hours, p01.cancellations) == (2, D("12.00"), 0)
    group = D("6.00") * D("29.43") + D("6.00") * D("41.41")  # weekday and Saturday, 2 workers / 5
    capital = 2 * D("6.00") * D("2.71")
    assert p01.delivered == p01.total == group + capital + 2 * D("16.21")
    p05 = rows[-1]
    assert (p05.instances, p05.hours, p05.cancellations, p05.cancelled_hours) == (
        0,
        D(0),
        2,
        D("12.00"),
    )
    assert p05.cancelled == p05.total == group
    assert p05.delivered == 0
    assert sum(r.total for r in rows) == sum(x.total for x in [*lines, september])


def test_the_summary_sums_the_same_with_a_callers_narrow_decimal_settings() -> None:
    lines = week_of_lines() * 40  # totals in the tens of thousands
    exact = sum((x.total for x in lines), D(0))
    assert exact.adjusted() >= 4  # more digits than the caller's five keep
    with localcontext(Context(prec=5)):
        rows = finance_summary(lines)
        text = format_summary(rows)
    assert sum((r.total for r in rows), D(0)) == exact
    assert text.splitlines()[-1].split()[-1] == f"{exact:.2f}"


def test_format_summary_is_a_plain_table() -> None:
    text = format_summary(finance_summary(week_of_lines()))
    lines = text.splitlines()
    assert text.endswith("\n")
    assert len(lines) == 5 + 4
    assert lines[0].split()[:4] == ["participant", "NDIS", "number", "program"]
    assert lines[2].split() == ["p01", "430000001", "centre", "2026-10", "2", "12.00", "0",
                                "0.00", "489.98", "0.00", "489.98"]  # fmt: skip
    assert lines[-1].split()[0] == "total"
    assert len({len(line) for line in lines[:2]}) == 1
    assert format_summary([]).splitlines()[-1].split()[0] == "total"
