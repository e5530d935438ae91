"""The ``loom`` command: plan a scenario file, the demo, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from loomcore import ScenarioSettings, export_window, load_export, load_scenario, scenario_loom
from loomcore._cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "scenario.json"

SMALL: dict[str, Any] = {
    "format": "loomcore.scenario",
    "version": 1,
    "settings": {"window_weeks": 2},
    "name": "Small Provider",
    "venues": [{"id": "hall", "name": "Church Hall", "capacity": 2,
                "location": {"lat": -33.815, "lon": 151.003}}],
    "staff": [
        {"id": "kim", "name": "Kim", "lead_capable": True, "driver": True},
        {"id": "lee", "name": "Lee", "driver": True},
    ],
    "vehicles": [{"id": "van", "name": "Van", "seats": 8, "wheelchair_places": 1,
                  "depot": {"lat": -33.82, "lon": 151.01}}],
    "participants": [
        {"id": "ann", "name": "Ann", "needs_transport": True, "wheelchair": True,
         "pickup": {"lat": -33.80, "lon": 151.02}},
        {"id": "bo", "name": "Bo"},
        {"id": "cy", "name": "Cy"},
    ],
    "programs": [
        {
            "id": "art",
            "name": "Art Group",
            "recurrence": {"kind": "weekly", "weekdays": ["MO", "TH"]},
            "start_time": "09:30",
            "end_time": "12:00",
            "venue_id": "hall",
            "transport": True,
            "active_from": "2026-01-01",
        }
    ],
    "intents": [
        {"kind": "enrolment", "program_id": "art", "participant_id": p, "start": "2026-09-01"}
        for p in ("ann", "bo", "cy")
    ],
    "exceptions": [
        {"kind": "absence", "program_id": "art", "participant_id": "bo", "date": "2026-10-05",
         "notified_on": "2026-09-20"},
        {"kind": "cancellation", "program_id": "art", "date": "2026-10-12", "reason": "booked"},
    ],
}  # fmt: skip


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.json"
    path.write_text(json.dumps(SMALL), encoding="utf-8")
    return path


def test_plan_prints_a_day_by_day_table(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(small), "--today", "2026-10-01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Small Provider: 2026-10-01 to 2026-10-14 (Australia/Sydney)\n")
    assert "2026-10-01 Thu\n  09:30–12:00  Art Group  Church Hall  scheduled" in out
    assert "3 attending / 0 cancelled  1 lead + 1 support  1 rider (1 wheelchair)" in out
    assert "2 attending / 1 cancelled" in out  # Bo is away on 5 Oct
    assert "cancelled  0 attending / 3 cancelled  no staff" in out  # 12 Oct
    assert "      ! venue-over-capacity: art/2026-10-01: 3 attending" in out
    assert "2026-10-03 Sat\n  no instances" in out
    assert out.endswith("14 days, 4 instances, 2 warnings\n")  # 1 and 8 Oct


def test_plan_json_is_the_export_of_the_window(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(small), "--today", "2026-10-01", "--weeks", "3", "--json"]) == 0
    printed = load_export(capsys.readouterr().out)
    now = datetime.combine(date(2026, 10, 1), time(9), tzinfo=ZoneInfo("Australia/Sydney"))
    scenario = load_scenario(small)
    scenario = attrs.evolve(scenario, settings=ScenarioSettings(window_weeks=3))
    loom = scenario_loom(scenario, clock=lambda: now)
    assert printed == export_window(loom, date(2026, 10, 1), date(2026, 10, 21))


def test_plan_json_is_byte_stable(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for _ in range(2):
        assert main(["plan", str(small), "--today", "2026-10-01", "--json"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "generated_at" not in outputs[0]


def test_the_example_scenario_plans(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLE), "--today", "2026-10-01"]) == 0
    out = capsys.readouterr().out
    assert "Centre Wednesdays" in out
    assert "Tech Skills (Week A)" in out
    assert out.endswith("28 days, 10 instances, 0 warnings\n")


def test_demo_runs_and_mentions_programs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--today", "2026-10-01", "--weeks", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("RABS (demo): 2026-10-01 to 2026-10-14")
    for name in ("Saturday Outing", "Sunday Social Club", "Tech Skills (Week A)"):
        assert name in out


def test_demo_json_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--today", "2026-10-01", "--json"]) == 0
    doc = load_export(capsys.readouterr().out)
    assert (doc.start, doc.end) == (date(2026, 10, 1), date(2026, 10, 28))


def test_demo_without_today_uses_the_current_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--weeks", "2"]) == 0
    assert "RABS (demo)" in capsys.readouterr().out


@pytest.mark.parametrize("weeks", ["1", "17"])
def test_a_bad_window_size_exits_2(weeks: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--today", "2026-10-01", "--weeks", weeks]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loom: error: ")
    assert "2 to 16" in err
    assert weeks in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["plan", str(missing), "--today", "2026-10-01"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("loom: error: cannot read ")
    assert "nope.json" in captured.err
    assert "No such file" in captured.err


def test_a_malformed_scenario_exits_2_naming_the_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads(json.dumps(SMALL))
    bad["programs"][0]["start_time"] = "half past nine"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    assert main(["plan", str(path), "--today", "2026-10-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loom: error: programs[0].start_time: ")
    assert "'half past nine'" in err


@pytest.mark.parametrize(
    "argv",
    [[], ["plan"], ["demo", "--today", "1 Oct"], ["demo", "--weeks", "four"], ["fly"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: loom" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["demo", "--today", "2026-W41-3"], "expected a date as YYYY-MM-DD, got '2026-W41-3'"),
        (["demo", "--today", "9999-12-20"], "9999-12-20: dates after 9998 are out of range"),
        (
            ["finance", str(EXAMPLE), "--from", "9999-12-30", "--to", "9999-12-31"],
            "9999-12-30: dates after 9998 are out of range",
        ),
    ],
    ids=["week date", "too late to plan", "too late to bill"],
)
def test_dates_are_iso_calendar_dates_within_range(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err


def test_claims_that_cannot_be_written_say_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    args = ["claims", str(EXAMPLE), "--from", "2026-10-01", "--to", "2026-10-31"]
    assert main([*args, "--out", str(blocked / "claims")]) == 2
    assert capsys.readouterr().err.startswith(f"loom: error: cannot write '{blocked / 'claims'}'")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "plan" in capsys.readouterr().out


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loomcore", "plan", str(EXAMPLE), "--today", "2026-10-01"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Westside Community Programs" in done.stdout


def test_claims_writes_bulk_payment_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "claims"
    args = ["claims", str(EXAMPLE), "--from", "2026-10-01", "--to", "2026-10-31", "--out", str(out)]
    assert main(args) == 0
    (written,) = sorted(out.iterdir())
    assert len(written.name) <= 20
    data = written.read_bytes()
    rows = data.decode("ascii").split("\r\n")
    assert rows[0].startswith("RegistrationNumber,NDISNumber,")
    assert rows[-1] == ""  # every row ends with CRLF
    assert all(len(r.split(",")) == 16 for r in rows[:-1])
    assert f"{written}: {len(rows) - 2} claim lines" in capsys.readouterr().out


def test_finance_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["finance", str(EXAMPLE), "--from", "2026-10-01", "--to", "2026-10-31"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["participant", "NDIS", "number"]
    assert "sarah-nguyen" in out
    assert "2026-10" in out


def test_billing_commands_report_bad_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["finance", str(EXAMPLE), "--from", "2026-10-31", "--to", "2026-10-01"]) == 2
    assert "2026-10-31 > 2026-10-01" in capsys.readouterr().err


def test_the_roller_loop_runs_outside_the_thread_that_handles_signals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A signal handler runs in the main thread; stop() called from it while
    # the loop itself waits there would deadlock on the loop's wake-up lock
    # (seen: `loom roller` ignoring SIGTERM about one run in ten).
    import threading

    from loomcore import Loom, Runner
    from loomcore._cli import _roller

    ran_in: list[threading.Thread] = []
    monkeypatch.setattr(Runner, "run", lambda self, **kw: ran_in.append(threading.current_thread()))
    assert _roller(Loom(), once=False, verify_now=False) == 0
    assert len(ran_in) == 1
    assert ran_in[0] is not threading.main_thread()
