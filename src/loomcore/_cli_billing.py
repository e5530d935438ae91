"""The ``loom claims`` and ``loom finance`` commands: billing from a scenario document.

A scenario document has no stored history, so both commands plan the days
asked for from the document (:meth:`Loom.preview`) and bill those plans.
Against a live database, hosts call :meth:`Loom.export_claims`, which bills
from the permanent ledger and marks what it exported.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from ._billing import BillingLine
from ._claims import bulk_claim_files, finance_summary, format_summary
from ._errors import InvalidDateRangeError, LoomError
from ._scenario import load_scenario, scenario_loom

__all__ = ["add_billing_commands", "run_billing_command"]

BILLING_COMMANDS = ("claims", "finance")


def add_billing_commands(commands: Any, iso_date: Callable[[str], date]) -> None:
    """Add ``claims`` and ``finance`` to the ``loom`` sub-command parser."""
    claims = commands.add_parser(
        "claims",
        help="write NDIS bulk payment request CSV files for a date range",
        description="Plan SCENARIO for --from..--to and write its claim files into --out.",
    )
    claims.add_argument("--out", required=True, metavar="DIR", help="folder for the CSV files")
    claims.add_argument(
        "--allow-provisional",
        action="store_true",
        help="also claim lines priced from a carried-forward limit",
    )
    finance = commands.add_parser(
        "finance",
        help="print the finance summary per participant, program and month",
        description="Plan SCENARIO for --from..--to and print the finance summary.",
    )
    for sub in (claims, finance):
        sub.add_argument("scenario", metavar="SCENARIO.json", help="a loomcore scenario document")
        sub.add_argument("--from", dest="start", required=True, type=iso_date, metavar="DATE")
        sub.add_argument("--to", dest="end", required=True, type=iso_date, metavar="DATE")


def _lines(path: str, start: date, end: date) -> tuple[list[BillingLine], Any]:
    if end < start:
        raise InvalidDateRangeError(start, end, "--from/--to")
    scenario = load_scenario(path)
    now = datetime.combine(start, time(9), tzinfo=ZoneInfo(scenario.settings.timezone))
    loom = scenario_loom(scenario, clock=lambda: now)
    plans = loom.preview(start, end)
    lines = [line for plan in plans for inst in plan.instances for line in inst.billing_lines]
    return lines, scenario.organisation


def run_billing_command(args: argparse.Namespace, out: TextIO) -> None:
    """Run ``claims`` or ``finance``; loomcore errors and ``OSError`` propagate."""
    lines, organisation = _lines(args.scenario, args.start, args.end)
    if args.command == "finance":
        out.write(format_summary(finance_summary(lines)))
        return
    files = bulk_claim_files(
        lines,
        registration_number=organisation.registration_number,
        abn=organisation.abn,
        allow_provisional=args.allow_provisional,
    )
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            (folder / f.name).write_bytes(f.data)  # bytes: the CRLF line ends must survive
            out.write(f"{folder / f.name}: {f.rows} claim lines\n")
    except OSError as e:
        raise CannotWrite(e.filename or str(folder), e.strerror or str(e)) from e


class CannotWrite(LoomError):
    """A claim file could not be written: the command says where and why."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"cannot write {path!r}: {why}")
