"""The ``loom`` command: plan a scenario document, or the demo organisation;
run the nightly roll against a Postgres database.

The command is an imperative shell like :class:`~loomcore.Loom`: it reads
files and, when no ``--today`` is given, the real clock; the planning itself
runs on a fixed clock at 09:00 local time on ``today``, so the same scenario
and ``--today`` always print the same thing. ``roller``, ``roll-now`` and
``regenerate`` work on a Postgres database with the real clock.

Exit codes: 0 on success (for ``roller``: stopped cleanly by SIGINT or
SIGTERM), 2 for a usage error, a malformed scenario, an invalid window
size, a file that cannot be read, a database that cannot be used or a roll
that failed (the message goes to standard error, prefixed ``loom: error:``).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import re
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ._cli_billing import BILLING_COMMANDS, add_billing_commands, run_billing_command
from ._demo import demo_scenario
from ._errors import LoomError
from ._export import ExportDocument, dump_export, export_window
from ._model import Organisation
from ._plan import Instance, PlanWarning
from ._runner import Runner, describe_health, describe_roll
from ._scenario import Scenario, load_scenario, scenario_loom
from ._service import Loom

__all__ = ["main", "render_table"]

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _iso_date(text: str) -> date:
    try:
        if _YYYY_MM_DD.fullmatch(text):
            day = date.fromisoformat(text)
            if day.year <= _LAST_YEAR:
                return day
            raise argparse.ArgumentTypeError(f"{text}: dates after {_LAST_YEAR} are out of range")
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}")


_YYYY_MM_DD = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# a window or a range of days from a date must still end before date.max
_LAST_YEAR = 9998


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loom",
        description="Plan disability-support group programs over a rolling window.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan = commands.add_parser(
        "plan",
        help="plan a scenario document and print the window",
        description="Load SCENARIO, plan its window from --today, print every planned day.",
    )
    plan.add_argument("scenario", metavar="SCENARIO.json", help="a loomcore scenario document")
    demo = commands.add_parser(
        "demo",
        help="plan the demo organisation (RABS) and print the window",
        description="Build the demo organisation around --today, plan it, print the window.",
    )
    for sub in (plan, demo):
        sub.add_argument(
            "--today",
            type=_iso_date,
            metavar="YYYY-MM-DD",
            help="the local date the window starts on (default: today in the scenario's timezone)",
        )
        sub.add_argument(
            "--weeks",
            type=int,
            metavar="N",
            help="window size in weeks, 2 to 16 (default: the scenario's window_weeks)",
        )
        sub.add_argument(
            "--json", action="store_true", help="print the export document instead of a table"
        )
    _add_store_commands(commands)
    add_billing_commands(commands, _iso_date)
    return parser


_STORE_COMMANDS = ("roller", "roll-now", "regenerate")


def _add_store_commands(commands: Any) -> None:
    roller = commands.add_parser(
        "roller",
        help="run the nightly roll, the 09:00 check and retries on a Postgres database",
        description=(
            "Roll the window at 00:05 local time every day, check it at 09:00, retry a failed "
            "roll every 10 minutes, until SIGINT or SIGTERM. Alerts are logged to standard "
            "error. Any number of rollers may run against one database."
        ),
    )
    roller.add_argument("--once", action="store_true", help="roll once now (catching up) and exit")
    roller.add_argument(
        "--verify-now",
        action="store_true",
        help="run the 09:00 check at once (with --once: the check instead of the roll)",
    )
    roll_now = commands.add_parser(
        "roll-now",
        help="roll the window now (an operator action, logged with --by)",
        description="Roll the window now; the roll log records it with trigger 'manual'.",
    )
    regenerate = commands.add_parser(
        "regenerate",
        help="re-plan one day now, past days included (audited with --by)",
        description="Re-plan DATE from the records now; the audit log records who did it.",
    )
    regenerate.add_argument("date", type=_iso_date, metavar="YYYY-MM-DD", help="the day")
    for sub in (roller, roll_now, regenerate):
        sub.add_argument(
            "--dsn", required=True, metavar="postgresql://…", help="the loomcore database"
        )
        sub.add_argument(
            "--timezone",
            default="Australia/Sydney",
            metavar="ZONE",
            help="the organisation's timezone (default: Australia/Sydney)",
        )
    for sub in (roll_now, regenerate):
        sub.add_argument("--by", metavar="NAME", help="who asks (default: the login name)")
    for sub in (roller, roll_now):
        sub.add_argument(
            "--workers",
            type=_workers,
            default=1,
            metavar="N",
            help="plan a roll of many days (a new or grown window) in N processes (default: 1)",
        )


def _local_today(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def _plan(scenario: Scenario, today: date, weeks: int | None, as_json: bool, out: TextIO) -> None:
    if weeks is not None:
        settings = attrs.evolve(scenario.settings, window_weeks=weeks)
        scenario = attrs.evolve(scenario, settings=settings)
    now = datetime.combine(today, time(9), tzinfo=ZoneInfo(scenario.settings.timezone))
    loom = scenario_loom(scenario, clock=lambda: now)
    loom.roll()
    window = loom.window()
    doc = export_window(loom, window.start, window.end)
    out.write(dump_export(doc) if as_json else render_table(doc, scenario.organisation))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``loom`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error or the help
        return e.code if isinstance(e.code, int) else 2
    if args.command in _STORE_COMMANDS:
        return _store_command(args)
    try:
        if args.command in BILLING_COMMANDS:
            run_billing_command(args, sys.stdout)
            return 0
        if args.command == "plan":
            scenario = load_scenario(args.scenario)
        else:
            scenario = demo_scenario(args.today or _local_today("Australia/Sydney"))
        today = args.today or _local_today(scenario.settings.timezone)
        _plan(scenario, today, args.weeks, args.json, sys.stdout)
    except LoomError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"cannot read {e.filename or args.scenario!r}: {e.strerror or e}")
    return 0


def _fail(message: str) -> int:
    print(f"loom: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------- the database commands


def _store_command(args: argparse.Namespace) -> int:
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return _fail(f"unknown timezone {args.timezone!r}")
    try:
        from loomcore_pg import PostgresStore
    except ImportError:
        return _fail("the Postgres store is not installed: pip install 'loomcore[pg]'")
    try:
        try:
            store = PostgresStore(args.dsn)
        except LoomError:
            raise
        except Exception as e:  # e.g. a DSN the driver cannot parse
            return _fail(f"cannot use the database: {e}")
        loom = Loom(store, timezone=args.timezone, workers=getattr(args, "workers", 1))
        if args.command == "roller":
            return _roller(loom, once=args.once, verify_now=args.verify_now)
        by = args.by or _login_name()
        if args.command == "roll-now":
            print(describe_roll(loom.roll(by=by, trigger="manual")))
        else:
            plan = loom.regenerate_day(args.date, by=by)
            print(f"regenerated {plan.date.isoformat()}: {len(plan.instances)} instance(s)")
    except LoomError as e:
        return _fail(str(e))
    return 0


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment
        return "operator"


def _roller(loom: Loom, *, once: bool, verify_now: bool) -> int:
    name = f"roller@{socket.gethostname()}"
    if once:
        if verify_now:
            print(describe_health(loom.verify(by=name)))
        else:
            print(describe_roll(loom.roll(by=name)))
        return 0
    runner = Runner(loom, name=name)
    with _logging_to_stderr(), _stopping_on_signals(runner):
        if verify_now:
            with contextlib.suppress(Exception):  # alerted; the runner retries it
                runner.verify_now()
        # The loop runs in a thread of its own and this one only waits: a
        # signal handler runs in this thread, and calling stop() from it
        # while the loop itself is waiting here would deadlock on the
        # loop's own wake-up lock.
        runner.start_thread(name="loomcore-roller")
        while not runner.join(timeout=None):
            pass
    return 0


@contextlib.contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """The runner's log lines (actions and alerts) on standard error, while it runs."""
    log = logging.getLogger("loomcore.runner")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@contextlib.contextmanager
def _stopping_on_signals(runner: Runner) -> Iterator[None]:
    """SIGINT and SIGTERM stop the runner cleanly (only the main thread can catch them)."""
    previous: dict[signal.Signals, Any] = {}

    def stop(signum: int, frame: object) -> None:
        runner.stop()

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    except ValueError:  # not the main thread: the host stops the runner itself
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --------------------------------------------------------------------------- the table


def _staff(inst: Instance) -> str:
    demand = inst.staff_demand
    if demand.total == 0:
        return "no staff"
    return f"{demand.leads} lead + {demand.support} support"


def _riders(inst: Instance) -> str:
    if not inst.transport:
        return "no transport"
    riders = inst.transport_demand
    text = f"{riders.riders} rider" + ("" if riders.riders == 1 else "s")
    return text + (f" ({riders.wheelchair_riders} wheelchair)" if riders.wheelchair_riders else "")


def _row(inst: Instance, zone: ZoneInfo, venues: dict[str, str]) -> list[str]:
    start = inst.start.astimezone(zone).strftime("%H:%M")
    end = inst.end.astimezone(zone).strftime("%H:%M")
    cancelled = sum(1 for a in inst.allocations if a.status == "cancelled")
    return [
        f"{start}–{end}",
        inst.program_name,
        venues.get(inst.venue_id, inst.venue_id),
        inst.status,
        f"{len(inst.attending)} attending / {cancelled} cancelled",
        _staff(inst),
        _riders(inst),
        inst.origin,
    ]


def _detail_lines(inst: Instance, zone: ZoneInfo, names: dict[str, str]) -> list[str]:
    """Who works the instance and each bus run, on indented lines."""
    out = []
    crew = [
        f"{names.get(s.staff_id, s.staff_id) if s.filled else '(unfilled)'} ({s.role})"
        for s in inst.shifts
    ]
    if crew:
        out.append("      staff: " + ", ".join(crew))
    for run in inst.bus_runs:
        departs = run.departs.astimezone(zone).strftime("%H:%M")
        arrives = run.arrives.astimezone(zone).strftime("%H:%M")
        driver = names.get(run.driver_id, run.driver_id) or "(no driver)"
        out.append(
            f"      {run.direction}: {run.vehicle_id} {departs}–{arrives}, "
            f"{_plural(len(run.riders), 'rider')}, {run.km:.1f} km, driver {driver}"
        )
    return out


def _warning_lines(warnings: Sequence[PlanWarning], indent: str) -> list[str]:
    return [f"{indent}! {w.code}: {w.message}" for w in warnings]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def render_table(doc: ExportDocument, organisation: Organisation) -> str:
    """A readable day-by-day table of an export: one line per instance, warnings below it.

    Each instance line gives local start–end, program, venue (by name from
    ``organisation``), status, attending / cancelled counts, staff demand,
    riders and origin; indented lines below name the staff and give each
    bus run (vehicle, times, riders, distance, driver).
    """
    zone = ZoneInfo(doc.timezone)
    venues = {v.id: v.name for v in organisation.venues}
    names = {s.id: s.name for s in organisation.staff}
    rows = [[_row(inst, zone, venues) for inst in day.instances] for day in doc.days]
    widths = [max((len(r[i]) for day in rows for r in day), default=0) for i in range(8)]
    title = organisation.name or doc.generated_from or "loomcore"
    lines = [f"{title}: {doc.start.isoformat()} to {doc.end.isoformat()} ({doc.timezone})"]
    for day, day_rows in zip(doc.days, rows, strict=True):
        lines += ["", f"{day.date.isoformat()} {_DAY_NAMES[day.date.weekday()]}"]
        if not day.instances:
            lines.append("  no instances")
        for inst, cells in zip(day.instances, day_rows, strict=True):
            line = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            lines.append(("  " + line).rstrip())
            lines += _detail_lines(inst, zone, names)
            lines += _warning_lines(inst.warnings, "      ")
        lines += _warning_lines(day.warnings, "  ")
    instances = sum(len(day.instances) for day in doc.days)
    warnings = sum(len(day.all_warnings()) for day in doc.days)
    summary = ", ".join(
        (
            _plural(len(doc.days), "day"),
            _plural(instances, "instance"),
            _plural(warnings, "warning"),
        )
    )
    return "\n".join([*lines, "", summary]) + "\n"
