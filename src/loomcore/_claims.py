"""Claims out of billing lines: the NDIS bulk payment request CSV and a finance summary.

Theory of operation
-------------------
:func:`bulk_claim_files` checks every line against the bulk payment request
layout (:data:`CLAIM_COLUMNS`), sorts the lines by date, participant, item
and claim type, and cuts them into files of at most :data:`MAX_ROWS` rows,
each with its header row. Nothing is written to disk: a :class:`ClaimFile`
holds a name and the text, and the host writes ``file.data`` as bytes (never
through a spreadsheet program, which mangles dates and hours).
:func:`finance_summary` adds lines up per participant, program and month;
:func:`format_summary` lays the sums out as a plain-text table.

Invariants
~~~~~~~~~~
1. Equal lines in any order give byte-identical files: rows sorted, CRLF line
   ends (the csv module's, RFC 4180), ASCII only, no quoting needed.
2. Every row has exactly 16 cells; Quantity holds the units (two decimals) and
   Hours is always blank, so the two are never both filled.
3. Bad input is refused before any file is made, by an error naming the
   culprit (registration number, ABN, or the participant and claim reference
   of the faulty line).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, localcontext

import attrs

from ._billing import (
    BILLING_CONTEXT,
    CANCELLATION_REASONS,
    CLAIM_TYPES,
    BillingLine,
    has_two_places,
)
from ._errors import LoomError
from ._prices import GST_CODES

__all__ = [
    "CLAIM_COLUMNS",
    "MAX_ROWS",
    "ClaimFile",
    "InvalidClaimError",
    "SummaryRow",
    "bulk_claim_files",
    "finance_summary",
    "format_summary",
]

#: The 16 columns of the NDIS bulk payment request, in order.
CLAIM_COLUMNS: tuple[str, ...] = (
    "RegistrationNumber",
    "NDISNumber",
    "SupportsDeliveredFrom",
    "SupportsDeliveredTo",
    "SupportNumber",
    "ClaimReference",
    "Quantity",
    "Hours",
    "UnitPrice",
    "GSTCode",
    "AuthorisedBy",
    "ParticipantApproved",
    "InKindFundingProgram",
    "ClaimType",
    "CancellationReason",
    "ABN of Support Provider",
)

#: At most this many rows (besides the header) in one file.
MAX_ROWS = 5000
#: A file name may be at most this long, ``.csv`` included.
MAX_NAME = 20

_REFERENCE = re.compile(r"[A-Za-z0-9/_-]{1,50}")
_ITEM = re.compile(r"[A-Za-z0-9_]{1,30}")
_PREFIX = re.compile(r"[A-Za-z0-9_-]+")


class InvalidClaimError(LoomError, ValueError):
    """The claim cannot be made as given.

    ``culprit`` says what is at fault (``registration_number``, ``abn``,
    ``prefix``, ``ndis_number``, ``quantity`` …), ``value`` the offending
    value, and for a line ``participant_id`` and ``claim_reference``.
    """

    def __init__(
        self,
        message: str,
        *,
        culprit: str,
        value: object = None,
        participant_id: str = "",
        claim_reference: str = "",
    ) -> None:
        self.culprit = culprit
        self.value = value
        self.participant_id = participant_id
        self.claim_reference = claim_reference
        where = ""
        if participant_id or claim_reference:
            where = f"line {claim_reference!r} of participant {participant_id!r}: "
        super().__init__(where + message)


@attrs.frozen(kw_only=True)
class ClaimFile:
    """One bulk payment request file: its name and its text (CRLF line ends)."""

    name: str
    text: str

    @property
    def data(self) -> bytes:
        """The bytes to upload or write, exactly as the NDIA reads them."""
        return self.text.encode("ascii")

    @property
    def rows(self) -> int:
        """Claim rows in the file, the header not counted."""
        return self.text.count("\r\n") - 1


# --------------------------------------------------------------------------- checks


def _check_registration(value: str) -> None:
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise InvalidClaimError(
            f"registration number must be digits only, got {value!r}",
            culprit="registration_number",
            value=value,
        )
    if not value.startswith("405"):
        raise InvalidClaimError(
            f"registration number must start with 405, got {value!r}",
            culprit="registration_number",
            value=value,
        )


_ABN_WEIGHTS = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)


def _check_abn(value: str) -> None:
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 11):
        raise InvalidClaimError(
            f"ABN must be 11 digits with no spaces, got {value!r}", culprit="abn", value=value
        )
    digits = [int(c) for c in value]
    digits[0] -= 1
    if sum(d * w for d, w in zip(digits, _ABN_WEIGHTS, strict=True)) % 89:
        raise InvalidClaimError(
            f"ABN {value!r} fails the ABN check digits (mistyped?)", culprit="abn", value=value
        )


def _check_prefix(prefix: str, files: int) -> int:
    """The width of the file number; refuses a prefix that makes names too long."""
    width = max(3, len(str(files)))
    if not (isinstance(prefix, str) and prefix.isascii() and _PREFIX.fullmatch(prefix)):
        raise InvalidClaimError(
            f"file name prefix must be letters, digits, '_' or '-', got {prefix!r}",
            culprit="prefix",
            value=prefix,
        )
    longest = len(prefix) + 1 + width + len(".csv")
    if longest > MAX_NAME:
        raise InvalidClaimError(
            f"file names {prefix}-{'0' * width}.csv would be {longest} characters; at most "
            f"{MAX_NAME} are allowed: use a prefix of at most {MAX_NAME - 5 - width}",
            culprit="prefix",
            value=prefix,
        )
    return width


def _check_line(line: BillingLine) -> None:
    def fault(culprit: str, message: str, value: object) -> InvalidClaimError:
        return InvalidClaimError(
            message,
            culprit=culprit,
            value=value,
            participant_id=line.participant_id,
            claim_reference=line.claim_reference,
        )

    for name in ("participant_id", "ndis_number", "item_number", "claim_reference"):
        if not isinstance(getattr(line, name), str):
            raise fault(name, f"{name} must be text, got {getattr(line, name)!r}", None)
    if not isinstance(line.date, date) or isinstance(line.date, datetime):
        raise fault("date", f"date must be a calendar date, got {line.date!r}", line.date)
    n = line.ndis_number
    if not (n.isascii() and n.isdigit() and len(n) == 9 and n.startswith("43")):
        raise fault("ndis_number", f"NDIS number must be 9 digits starting 43, got {n!r}", n)
    if not _ITEM.fullmatch(line.item_number):
        raise fault("item_number", f"not a support item number: {line.item_number!r}", n)
    if not _REFERENCE.fullmatch(line.claim_reference):
        raise fault(
            "claim_reference",
            "claim reference must be 1–50 letters, digits, '/', '_' or '-'",
            line.claim_reference,
        )
    if not (has_two_places(line.quantity) and line.quantity > 0):
        raise fault("quantity", f"quantity must be above 0 with 2 decimals, got {line.quantity}", 0)
    if not (has_two_places(line.unit_price) and line.unit_price >= 0):
        raise fault("unit_price", f"unit price must have 2 decimals, got {line.unit_price}", 0)
    if line.gst_code not in GST_CODES:
        raise fault("gst_code", f"unknown GST code {line.gst_code!r}", line.gst_code)
    if line.claim_type not in CLAIM_TYPES:
        raise fault("claim_type", f"unknown claim type {line.claim_type!r}", line.claim_type)
    cancelled = line.claim_type == "CANC"
    if cancelled != (line.cancellation_reason in CANCELLATION_REASONS):
        raise fault(
            "cancellation_reason",
            "a cancellation reason (NSDH, NSDF, NSDT, NSDO) goes with claim type CANC only, "
            f"got {line.cancellation_reason!r} with claim type {line.claim_type!r}",
            line.cancellation_reason,
        )


# --------------------------------------------------------------------------- files


def _claim_order(line: BillingLine) -> tuple[str, ...]:
    return (
        line.date.isoformat(),
        line.participant_id,
        line.item_number,
        line.claim_type,
        line.claim_reference,
    )


def _row(line: BillingLine, registration_number: str, abn: str) -> list[str]:
    return [
        registration_number,
        line.ndis_number,
        line.date.isoformat(),
        line.date.isoformat(),
        line.item_number,
        line.claim_reference,
        f"{line.quantity:.2f}",
        "",  # Hours: Quantity holds the hours
        f"{line.unit_price:.2f}",
        line.gst_code,
        "",  # AuthorisedBy
        "",  # ParticipantApproved
        "",  # InKindFundingProgram
        line.claim_type,
        line.cancellation_reason,
        abn,
    ]


def bulk_claim_files(
    lines: Iterable[BillingLine],
    *,
    registration_number: str,
    abn: str,
    prefix: str = "claims",
    allow_provisional: bool = False,
) -> list[ClaimFile]:
    """The NDIS bulk payment request files for ``lines``.

    One header row and at most :data:`MAX_ROWS` claim rows per file, rows
    sorted by date, participant, item and claim type; files named
    ``<prefix>-001.csv``, ``<prefix>-002.csv`` … (at most 20 characters).
    Refuses, naming the culprit: a registration number that is not digits
    starting 405, an ABN that is not 11 valid digits, a line whose NDIS number
    is not 9 digits starting 43, two lines with one claim reference, and lines
    priced provisionally (unless ``allow_provisional``). No lines, no files.
    """
    _check_registration(registration_number)
    _check_abn(abn)
    lines = list(lines)
    for line in lines:  # before sorting: sorting reads the fields checked
        _check_line(line)
    ordered = sorted(lines, key=_claim_order)
    seen: dict[str, BillingLine] = {}
    for line in ordered:
        if "provisional-price" in line.flags and not allow_provisional:
            raise InvalidClaimError(
                "priced with a provisional limit; re-plan the day with the current price "
                "catalogue (or pass allow_provisional=True)",
                culprit="provisional_price",
                value=line.unit_price,
                participant_id=line.participant_id,
                claim_reference=line.claim_reference,
            )
        if line.claim_reference in seen:
            raise InvalidClaimError(
                "claim reference used by two lines",
                culprit="claim_reference",
                value=line.claim_reference,
                participant_id=line.participant_id,
                claim_reference=line.claim_reference,
            )
        seen[line.claim_reference] = line
    chunks = [ordered[i : i + MAX_ROWS] for i in range(0, len(ordered), MAX_ROWS)]
    width = _check_prefix(prefix, len(chunks))
    files = []
    for n, chunk in enumerate(chunks, start=1):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CLAIM_COLUMNS)
        writer.writerows(_row(line, registration_number, abn) for line in chunk)
        files.append(ClaimFile(name=f"{prefix}-{n:0{width}d}.csv", text=out.getvalue()))
    return files


# --------------------------------------------------------------------------- summary


@attrs.frozen(kw_only=True)
class SummaryRow:
    """One participant's billing on one program in one month (``YYYY-MM``).

    ``hours`` counts the support hours delivered (each instance once, however
    many items it was billed on) and ``cancelled_hours`` those claimed as
    short-notice cancellations; ``cancellations`` counts the instances with a
    CANC line. Totals are in dollars: ``delivered`` + ``cancelled`` = ``total``.
    """

    participant_id: str
    ndis_number: str
    program_id: str
    month: str
    instances: int
    hours: Decimal
    cancellations: int
    cancelled_hours: Decimal
    delivered: Decimal
    cancelled: Decimal
    total: Decimal


def _hours(lines: list[BillingLine]) -> Decimal:
    per_instance: dict[str, Decimal] = {}
    for line in lines:
        if line.unit == "hour":
            per_instance[line.instance_id] = max(
                per_instance.get(line.instance_id, Decimal("0.00")), line.quantity
            )
    return sum(per_instance.values(), Decimal("0.00"))


def finance_summary(lines: Iterable[BillingLine]) -> list[SummaryRow]:
    """Sums per participant, program and month, sorted by those three.

    Summed with loomcore's own decimal settings, whatever the caller's."""
    with localcontext(BILLING_CONTEXT):
        return _summary(lines)


def _summary(lines: Iterable[BillingLine]) -> list[SummaryRow]:
    groups: dict[tuple[str, str, str], list[BillingLine]] = defaultdict(list)
    for line in lines:
        groups[(line.participant_id, line.program_id, line.date.strftime("%Y-%m"))].append(line)
    rows = []
    for (participant_id, program_id, month), group in sorted(groups.items()):
        delivered = [x for x in group if x.claim_type != "CANC"]
        cancelled = [x for x in group if x.claim_type == "CANC"]
        rows.append(
            SummaryRow(
                participant_id=participant_id,
                ndis_number=min(x.ndis_number for x in group),
                program_id=program_id,
                month=month,
                instances=len({x.instance_id for x in delivered}),
                hours=_hours(delivered),
                cancellations=len({x.instance_id for x in cancelled}),
                cancelled_hours=_hours(cancelled),
                delivered=sum((x.total for x in delivered), Decimal("0.00")),
                cancelled=sum((x.total for x in cancelled), Decimal("0.00")),
                total=sum((x.total for x in group), Decimal("0.00")),
            )
        )
    return rows


_HEADINGS = (
    "participant",
    "NDIS number",
    "program",
    "month",
    "instances",
    "hours",
    "cancellations",
    "cancelled hours",
    "delivered $",
    "cancelled $",
    "total $",
)


def format_summary(rows: Iterable[SummaryRow]) -> str:
    """A plain-text table of summary rows with a totals line, ending in a newline
    (the totals summed with loomcore's own decimal settings)."""
    with localcontext(BILLING_CONTEXT):
        return _format(list(rows))


def _format(rows: list[SummaryRow]) -> str:
    table = [list(_HEADINGS)]
    for r in rows:
        table.append(
            [
                r.participant_id,
                r.ndis_number,
                r.program_id,
                r.month,
                str(r.instances),
                f"{r.hours:.2f}",
                str(r.cancellations),
                f"{r.cancelled_hours:.2f}",
                f"{r.delivered:.2f}",
                f"{r.cancelled:.2f}",
                f"{r.total:.2f}",
            ]
        )
    zero = Decimal("0.00")
    table.append(
        [
            "total",
            "",
            "",
            "",
            str(sum(r.instances for r in rows)),
            f"{sum((r.hours for r in rows), zero):.2f}",
            str(sum(r.cancellations for r in rows)),
            f"{sum((r.cancelled_hours for r in rows), zero):.2f}",
            f"{sum((r.delivered for r in rows), zero):.2f}",
            f"{sum((r.cancelled for r in rows), zero):.2f}",
            f"{sum((r.total for r in rows), zero):.2f}",
        ]
    )
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADINGS))]
    text_columns = 4  # left-aligned; the numbers are right-aligned

    def fmt(row: list[str]) -> str:
        cells = [
            cell.ljust(w) if i < text_columns else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(table[0]), rule, *(fmt(r) for r in table[1:-1]), rule, fmt(table[-1])]
    return "\n".join(lines) + "\n"
