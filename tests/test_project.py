"""The project keeps its promises: README commands, CI, a lean import, docstrings."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import loomcore

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)\n```", text)


def test_readme_gives_exactly_two_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert "loom demo" in demo
    assert "pip install" in demo
    assert "pytest" in tests
    assert ".[test]" in tests


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_importing_loomcore_pulls_in_no_database_or_test_libraries() -> None:
    code = (
        "import sys, loomcore; "
        "bad = [m for m in ('sqlalchemy', 'psycopg', 'pytest', 'hypothesis', 'loomcore_pg') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in loomcore.__all__:
        obj = getattr(loomcore, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
            for attr, member in vars(obj).items() if inspect.isclass(obj) else ():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                # an override may inherit the specification it implements
                if not (inspect.getdoc(getattr(obj, attr)) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_package_ships_type_information() -> None:
    assert (Path(loomcore.__file__).parent / "py.typed").exists()


# The public API changes only on purpose: update these lists (and the
# changelog) in the same commit as the change.
PUBLIC_API = [
    "Absence",
    "Allocation",
    "AlreadyRetractedError",
    "AuditEntry",
    "Availability",
    "Band",
    "BillingLine",
    "BillingSettings",
    "BusRun",
    "Cancellation",
    "Change",
    "ClaimFile",
    "DayOutsideWindowError",
    "DayPlan",
    "DocumentError",
    "DuplicateIdError",
    "Enrolment",
    "ExportDocument",
    "ExtraAttendance",
    "Fortnightly",
    "GreatCircleTravel",
    "Health",
    "HolidayCalendar",
    "Instance",
    "Intent",
    "InvalidBillingInputError",
    "InvalidClaimError",
    "InvalidDateRangeError",
    "InvalidRecordError",
    "InvalidWindowError",
    "ItemChoice",
    "LedgerDay",
    "Location",
    "Loom",
    "LoomError",
    "MemoryStore",
    "NoInstanceError",
    "NoPriceLimitError",
    "NswPublicHolidays",
    "OneDayChange",
    "OneOff",
    "Organisation",
    "Participant",
    "PlanInputs",
    "PlanWarning",
    "PlannedDay",
    "PriceCatalogue",
    "PriceDataError",
    "PriceLimit",
    "Program",
    "ProgramChange",
    "RRule",
    "Record",
    "Recurrence",
    "Reschedule",
    "Resolved",
    "Retraction",
    "Rider",
    "RollEntry",
    "RollSchedule",
    "Route",
    "RoutePlan",
    "Runner",
    "RunnerAction",
    "RunnerAlert",
    "RunnerState",
    "RunnerStatus",
    "Scenario",
    "ScenarioSettings",
    "Seats",
    "Shift",
    "Staff",
    "StaffDemand",
    "StaffLeave",
    "StaffPin",
    "StaffReturn",
    "StaffSwap",
    "StaffUnpin",
    "StaffingRule",
    "Stop",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StoredRecords",
    "SummaryRow",
    "SupportItem",
    "TransportDemand",
    "TransportSettings",
    "Travel",
    "UnknownIdError",
    "UnknownParticipantError",
    "UnknownProgramError",
    "UnknownRecordError",
    "UnknownStaffError",
    "UnknownSupportItemError",
    "UnknownVehicleError",
    "UnknownVenueError",
    "Vehicle",
    "VehicleMaintenance",
    "VehiclePin",
    "VehicleReturn",
    "VehicleUnpin",
    "Venue",
    "WARNING_CODES",
    "Weekday",
    "Weekly",
    "Window",
    "Withdrawal",
    "affected_days",
    "band_between",
    "band_of",
    "bulk_claim_files",
    "demo_scenario",
    "describe",
    "dump_export",
    "dump_scenario",
    "export_plans",
    "export_window",
    "finance_summary",
    "format_summary",
    "group_unit_price",
    "has_instance",
    "load_export",
    "load_scenario",
    "log_alert",
    "next_action",
    "nsw_public_holidays",
    "plan_day",
    "plan_days",
    "plan_routes",
    "price_attendance",
    "scenario_loom",
    "shipped_catalogue",
    "transport_cost_per_rider",
    "window_for",
]

PUBLIC_PG_API = [
    "PostgresStore",
    "SCHEMA_VERSION",
    "SchemaVersionError",
    "build_metadata",
    "migrate",
    "schema_version",
]


def test_public_api_is_pinned() -> None:
    import loomcore_pg

    assert sorted(loomcore.__all__) == PUBLIC_API
    assert sorted(loomcore_pg.__all__) == PUBLIC_PG_API
    for name in PUBLIC_API:
        assert hasattr(loomcore, name), name
