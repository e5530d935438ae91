"""The scenario and export documents: round trips, byte stability, faults with paths."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

import loomcore
from loomcore import (
    DayOutsideWindowError,
    DocumentError,
    Enrolment,
    ExportDocument,
    Loom,
    LoomError,
    Scenario,
    demo_scenario,
    dump_export,
    dump_scenario,
    export_plans,
    export_window,
    load_export,
    load_scenario,
    scenario_loom,
)
from loomcore._records import Intent, OneOff
from loomcore._serial import INTENT_KINDS, ONE_OFF_KINDS, RECURRENCE_KINDS

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "scenario.json"
TODAY = date(2026, 10, 1)
SYDNEY = ZoneInfo("Australia/Sydney")


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def clock_at(today: date) -> Callable[[], datetime]:
    now = datetime.combine(today, time(9), tzinfo=SYDNEY)
    return lambda: now


def planned(scenario: Scenario, today: date = TODAY) -> Loom:
    loom = scenario_loom(scenario, clock=clock_at(today))
    loom.roll()
    return loom


# --------------------------------------------------------------------------- round trips


def test_demo_scenario_round_trips() -> None:
    scenario = demo_scenario(TODAY)
    text = dump_scenario(scenario)
    again = load_scenario(text)
    assert again == scenario
    assert dump_scenario(again) == text


def test_demo_scenario_is_deterministic_and_realistic() -> None:
    scenario = demo_scenario(TODAY)
    assert dump_scenario(demo_scenario(TODAY)) == dump_scenario(scenario)
    org = scenario.organisation
    assert len(org.programs) == 12
    assert len(org.participants) == 60
    assert all(p.ndis_number.startswith("43") and len(p.ndis_number) == 9 for p in org.participants)
    assert len({p.ndis_number for p in org.participants}) == 60
    kinds = {type(p.recurrence).__name__ for p in org.programs}
    assert kinds == {"Weekly", "Fortnightly", "RRule"}
    window_end = date(2026, 10, 28)
    assert all(TODAY <= e.date <= window_end for e in scenario.exceptions)


def test_export_of_the_demo_window_round_trips_with_aware_datetimes() -> None:
    loom = planned(demo_scenario(TODAY))
    window = loom.window()
    doc = export_window(loom, window.start, window.end)
    text = dump_export(doc)
    again = load_export(text)
    assert again == doc
    assert dump_export(again) == text
    first = next(i for d in again.days for i in d.instances)
    assert first.start.utcoffset() is not None
    assert first.start.isoformat().endswith("+10:00") or first.start.isoformat().endswith("+11:00")


def test_export_from_preview_equals_export_of_stored_plans() -> None:
    loom = planned(load_scenario(EXAMPLE))
    start, end = date(2026, 10, 5), date(2026, 10, 18)
    stored = export_window(loom, start, end)
    previewed = export_plans(
        loom.preview(start, end), loom.timezone, generated_from=stored.generated_from
    )
    assert previewed == stored
    assert dump_export(previewed) == dump_export(stored)


def test_export_window_refuses_days_that_are_not_planned() -> None:
    loom = planned(load_scenario(EXAMPLE))
    with pytest.raises(DayOutsideWindowError, match="2026-10-29"):
        export_window(loom, date(2026, 10, 20), date(2026, 11, 3))


def test_export_plans_needs_a_plan() -> None:
    with pytest.raises(DocumentError) as caught:
        export_plans([], "Australia/Sydney")
    assert caught.value.path == "days"


# --------------------------------------------------------------------------- byte stability


def test_dumps_are_byte_identical_for_equal_inputs_in_any_order() -> None:
    data = example()
    shuffled = copy.deepcopy(data)
    for key in ("venues", "participants", "staff", "programs", "intents", "exceptions"):
        shuffled[key].reverse()
    shuffled["programs"][0]["recurrence"]["weekdays"].reverse()
    assert load_scenario(shuffled) == load_scenario(data)
    assert dump_scenario(load_scenario(shuffled)) == dump_scenario(load_scenario(data))


def test_dump_format_is_fixed() -> None:
    data = example()
    data["participants"][0]["name"] = "Zoë Nguyễn"
    text = dump_scenario(load_scenario(data))
    assert text.endswith("}\n")
    assert "Zoë Nguyễn" in text
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_loading_accepts_a_path_text_bytes_or_mapping() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    expected = load_scenario(EXAMPLE)
    for source in (str(EXAMPLE), text, text.encode(), json.loads(text)):
        assert load_scenario(source) == expected


# --------------------------------------------------------------------------- encodings


def test_records_without_id_or_recorded_at_get_deterministic_defaults() -> None:
    data = example()
    for record in data["intents"]:
        record.pop("id")
        record.pop("recorded_at", None)
    scenario = load_scenario(data)
    ids = {r.id for r in scenario.intents}
    assert ids == {f"intent-{i:04d}" for i in range(len(data["intents"]))}
    earliest = min(r.start for r in scenario.intents)
    assert {r.recorded_at for r in scenario.intents} == {
        datetime.combine(earliest, time(0), tzinfo=UTC)
    }
    assert load_scenario(data) == scenario


@pytest.mark.parametrize(
    ("weekdays", "expected"),
    [
        (["WE"], {loomcore.Weekday.WE}),
        (["we", "Friday"], {loomcore.Weekday.WE, loomcore.Weekday.FR}),
        ([0, 6], {loomcore.Weekday.MO, loomcore.Weekday.SU}),
        (["SUNDAY", "MO"], {loomcore.Weekday.MO, loomcore.Weekday.SU}),
    ],
)
def test_weekdays_accept_names_numbers_and_full_names(
    weekdays: list[object], expected: set[loomcore.Weekday]
) -> None:
    data = example()
    data["programs"][0]["recurrence"]["weekdays"] = weekdays
    program = next(p for p in load_scenario(data).organisation.programs if p.id == "centre-wed")
    assert isinstance(program.recurrence, loomcore.Weekly)
    assert program.recurrence.weekdays == expected


def test_lenient_inputs_read_as_the_canonical_ones() -> None:
    data = example()
    lenient = copy.deepcopy(data)
    lenient["participants"][2]["supervision_weight"] = 1.5
    lenient["programs"][0]["start_time"] = "09:30:00"
    lenient["intents"][3]["recorded_at"] = "2026-09-25T03:12:00Z"
    assert load_scenario(lenient) == load_scenario(data)
    aisha = next(p for p in load_scenario(lenient).organisation.participants if p.wheelchair)
    assert aisha.supervision_weight == Decimal("1.5")
    assert '"supervision_weight": "1.5"' in dump_scenario(load_scenario(lenient))


# --------------------------------------------------------------------------- faults


def _set(path: tuple[Any, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _delete(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return change


def _duplicate(key: str, index: int) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[key].append(copy.deepcopy(data[key][index]))

    return change


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("missing field", _delete(("venues", 0, "capacity")), "venues[0].capacity", "missing"),
    ("missing program id", _delete(("programs", 1, "id")), "programs[1].id", "missing"),
    ("text for a number", _set(("venues", 1, "capacity"), "ten"), "venues[1].capacity", "'ten'"),
    ("true for a number", _set(("vehicles", 0, "seats"), True), "vehicles[0].seats", "True"),
    ("number for a string", _set(("participants", 3, "name"), 7), "participants[3].name", "7"),
    ("text for a bool", _set(("staff", 0, "driver"), "yes"), "staff[0].driver", "'yes'"),
    ("a list expected", _set(("venues",), {"id": "x"}), "venues", ""),
    ("bad date", _set(("programs", 0, "active_from"), "2026-13-01"),
     "programs[0].active_from", "'2026-13-01'"),
    ("not ISO date", _set(("intents", 4, "start"), "06/06/2026"),
     "intents[4].start", "'06/06/2026'"),
    ("bad time", _set(("programs", 1, "start_time"), "10am"), "programs[1].start_time", "'10am'"),
    ("end before start", _set(("programs", 0, "end_time"), "08:00"),
     "programs[0].end_time", "'centre-wed'"),
    ("naive recorded_at", _set(("intents", 3, "recorded_at"), "2026-09-25T03:12:00"),
     "intents[3].recorded_at", "no UTC offset"),
    ("bad decimal", _set(("participants", 2, "supervision_weight"), "lots"),
     "participants[2].supervision_weight", "'lots'"),
    ("bad NDIS number", _set(("participants", 0, "ndis_number"), "12345"),
     "participants[0].ndis_number", "'12345'"),
    ("unknown intent kind", _set(("intents", 2, "kind"), "enrol"), "intents[2].kind", "'enrol'"),
    ("unknown exception kind", _set(("exceptions", 1, "kind"), "holiday"),
     "exceptions[1].kind", "'holiday'"),
    ("missing kind", _delete(("intents", 0, "kind")), "intents[0].kind", "needs a kind"),
    ("unknown recurrence kind", _set(("programs", 0, "recurrence", "kind"), "monthly"),
     "programs[0].recurrence.kind", "'monthly'"),
    ("unknown weekday", _set(("programs", 0, "recurrence", "weekdays"), ["WE", "XX"]),
     "programs[0].recurrence.weekdays[1]", "'XX'"),
    ("bad fortnight week", _set(("programs", 2, "recurrence", "week"), "C"),
     "programs[2].recurrence.week", "'C'"),
    ("unknown field", _set(("venues", 0, "colour"), "blue"), "venues[0].colour", "'colour'"),
    ("unknown venue", _set(("programs", 2, "venue_id"), "nowhere"),
     "programs[2].venue_id", "'nowhere'"),
    ("duplicate participant", _duplicate("participants", 4), "participants[8].id", "'priya-patel'"),
    ("duplicate program", _duplicate("programs", 0), "programs[3].id", "'centre-wed'"),
    ("duplicate record id", _set(("exceptions", 2, "id"), "enrol-tom-sat"),
     "exceptions[2].id", "'enrol-tom-sat'"),
    ("unknown participant", _set(("intents", 1, "participant_id"), "nobody"),
     "intents[1].participant_id", "'nobody'"),
    ("unknown program", _set(("exceptions", 0, "program_id"), "yoga"),
     "exceptions[0].program_id", "'yoga'"),
    ("unknown staff", _set(("intents", 13, "staff_id"), "ghost"),
     "intents[13].staff_id", "'ghost'"),
    ("unknown one-day venue", _set(("exceptions", 1, "venue_id"), "moon"),
     "exceptions[1].venue_id", "'moon'"),
    ("window too long", _set(("settings", "window_weeks"), 17), "settings.window_weeks", "17"),
    ("unknown timezone", _set(("settings", "timezone"), "Mars/Olympus"),
     "settings.timezone", "'Mars/Olympus'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "path", "names"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_scenarios_name_the_fault(
    change: Callable[[dict[str, Any]], None], path: str, names: str
) -> None:
    data = example()
    change(data)
    with pytest.raises(DocumentError) as caught:
        load_scenario(data)
    assert caught.value.path == path
    assert names in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("envelope", "path", "names"),
    [
        ({"version": 2}, "version", "newer"),
        ({"version": 0}, "version", "unknown"),
        ({"version": "1"}, "version", "'1'"),
        ({"format": "loomcore.export"}, "format", "'loomcore.export'"),
        ({"format": None}, "format", "no format"),
    ],
)
def test_unknown_format_or_version_is_refused(
    envelope: dict[str, Any], path: str, names: str
) -> None:
    data = example() | envelope
    if envelope.get("format", "") is None:
        del data["format"]
    with pytest.raises(DocumentError) as caught:
        load_scenario(data)
    assert caught.value.path == path
    assert names in str(caught.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"format": 1', "not valid")],
)
def test_text_that_is_not_a_document_is_refused(text: str, names: str) -> None:
    source = text if text.startswith("{") else text.encode()
    with pytest.raises(DocumentError, match=names):
        load_scenario(source)


def test_document_errors_are_loom_errors_and_value_errors() -> None:
    with pytest.raises(DocumentError) as caught:
        load_scenario(example() | {"version": 99})
    assert isinstance(caught.value, LoomError)
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_is_an_os_error() -> None:
    with pytest.raises(FileNotFoundError):
        load_scenario(EXAMPLE.with_name("no-such-scenario.json"))


def test_malformed_export_names_the_fault() -> None:
    loom = planned(load_scenario(EXAMPLE))
    data = json.loads(dump_export(export_window(loom, date(2026, 10, 7), date(2026, 10, 7))))
    data["days"][0]["instances"][0]["start"] = "2026-10-07T09:30:00"
    with pytest.raises(DocumentError) as caught:
        load_export(data)
    assert caught.value.path == "days[0].instances[0].start"
    with pytest.raises(DocumentError, match="newer") as newer:
        load_export(data | {"version": 2})
    assert newer.value.path == "version"
    with pytest.raises(DocumentError) as scenario_instead:
        load_export(example())
    assert scenario_instead.value.path == "format"


def _an_export() -> dict[str, Any]:
    loom = planned(load_scenario(EXAMPLE))
    data: dict[str, Any] = json.loads(
        dump_export(export_window(loom, date(2026, 10, 7), date(2026, 10, 7)))
    )
    return data


EXPORT_FAULTS: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("instance status", ("instances", 0, "status"), "bogus", "instances[0].status"),
    ("instance origin", ("instances", 0, "origin"), "made up", "instances[0].origin"),
    ("allocation status", ("instances", 0, "allocations", 0, "status"), "x",
     "allocations[0].status"),
    ("shift role", ("instances", 0, "shifts", 0, "role"), "boss", "shifts[0].role"),
    ("run direction", ("instances", 0, "bus_runs", 0, "direction"), "up", "bus_runs[0].direction"),
    ("stop kind", ("instances", 0, "bus_runs", 0, "stops", 0, "kind"), "x", "stops[0].kind"),
    ("negative km", ("instances", 0, "bus_runs", 0, "km"), -1.0, "bus_runs[0].km"),
    ("band", ("instances", 0, "billing_lines", 0, "band"), "dawn", "billing_lines[0].band"),
    ("instance under another day", ("instances", 0, "date"), "2026-10-08", "instances[0].date"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("where", "value", "path"), [f[1:] for f in EXPORT_FAULTS], ids=[f[0] for f in EXPORT_FAULTS]
)
def test_an_export_holding_what_no_plan_holds_is_refused(
    where: tuple[Any, ...], value: Any, path: str
) -> None:
    data = _an_export()
    load_export(data)  # as written, it reads
    holder: Any = data["days"][0]
    for step in where[:-1]:
        holder = holder[step]
    holder[where[-1]] = value
    with pytest.raises(DocumentError) as caught:
        load_export(data)
    assert caught.value.path.startswith("days[0].")
    assert caught.value.path.endswith(path)
    assert str(value) in str(caught.value)


def test_an_export_in_an_unknown_timezone_is_refused() -> None:
    data = _an_export() | {"timezone": "Nope/Nope"}
    with pytest.raises(DocumentError, match="unknown timezone 'Nope/Nope'") as caught:
        load_export(data)
    assert caught.value.path == "timezone"


def test_scenario_built_in_python_checks_its_records() -> None:
    org = load_scenario(EXAMPLE).organisation
    stray = Enrolment(program_id="centre-wed", participant_id="nobody", start=TODAY)
    with pytest.raises(loomcore.UnknownParticipantError):
        Scenario(organisation=org, intents=[stray])
    twice = Enrolment(id="x", program_id="centre-wed", participant_id="tom-kelly", start=TODAY)
    with pytest.raises(loomcore.DuplicateIdError):
        Scenario(organisation=org, intents=[twice, twice])


def every_kind_of_record() -> tuple[list[Intent], list[OneOff]]:
    """One record of each kind the example lacks, naming its people, bus and programs."""
    d = date(2026, 10, 5)
    intents: list[Intent] = [
        loomcore.StaffUnpin(program_id="centre-wed", staff_id="kim-lee", start=d),
        loomcore.VehiclePin(program_id="sat-outing", vehicle_id="bus-1", start=d),
        loomcore.VehicleUnpin(program_id="sat-outing", vehicle_id="bus-1", start=d.replace(day=20)),
        loomcore.StaffLeave(staff_id="ben-fraser", start=d, end=d.replace(day=9), reason="leave"),
        loomcore.StaffReturn(staff_id="ben-fraser", start=d.replace(day=8)),
        loomcore.VehicleMaintenance(
            vehicle_id="bus-1", start=d.replace(day=12), end=d.replace(day=16)
        ),
        loomcore.VehicleReturn(vehicle_id="bus-1", start=d.replace(day=14)),
    ]
    one_offs: list[OneOff] = [
        loomcore.Reschedule(
            program_id="centre-wed", date=date(2026, 10, 21), to_date=date(2026, 10, 22)
        ),
        loomcore.StaffSwap(
            program_id="centre-wed", date=date(2026, 10, 28), in_staff_id="jas-patel"
        ),
    ]
    return intents, one_offs


def test_a_scenario_holds_every_kind_of_record() -> None:
    base = load_scenario(EXAMPLE)
    intents, one_offs = every_kind_of_record()
    scenario = attrs.evolve(
        base, intents=[*base.intents, *intents], exceptions=[*base.exceptions, *one_offs]
    )
    data = json.loads(dump_scenario(scenario))
    assert {r["kind"] for r in data["intents"]} == set(INTENT_KINDS)
    assert {r["kind"] for r in data["exceptions"]} == set(ONE_OFF_KINDS)
    again = load_scenario(data)
    assert again == scenario
    loom = planned(again)
    leave = next(r for r in loom.intents() if isinstance(r, loomcore.StaffLeave))
    assert leave.program_id == ""
    assert leave.staff_id == "ben-fraser"
    swapped = loom.instances(date(2026, 10, 28), date(2026, 10, 28), program_id="centre-wed")
    assert "jas-patel" in {s.staff_id for s in swapped[0].shifts}


def test_a_swap_naming_unknown_staff_is_refused_with_its_path() -> None:
    data = example()
    data["exceptions"].append(
        {"kind": "staff_swap", "program_id": "centre-wed", "date": "2026-10-28",
         "in_staff_id": "ghost", "out_staff_id": "kim-lee"}
    )  # fmt: skip
    with pytest.raises(DocumentError) as caught:
        load_scenario(data)
    last = len(data["exceptions"]) - 1
    assert caught.value.path == f"exceptions[{last}].in_staff_id"
    assert "'ghost'" in str(caught.value)
    data["exceptions"][-1] |= {"in_staff_id": "jas-patel", "out_staff_id": "nobody"}
    with pytest.raises(DocumentError) as out:
        load_scenario(data)
    assert out.value.path == f"exceptions[{last}].out_staff_id"


def test_export_document_keeps_days_in_range() -> None:
    doc = export_window(planned(load_scenario(EXAMPLE)), date(2026, 10, 7), date(2026, 10, 8))
    with pytest.raises(LoomError):
        attrs.evolve(doc, end=date(2026, 10, 7))
    assert isinstance(doc, ExportDocument)


# --------------------------------------------------------------------------- the docs


DOCS = EXAMPLE.parent.parent / "docs" / "documents.md"


def doc_example(marker: str) -> str:
    """The ```json block that follows ``<!-- example: marker`` in docs/documents.md."""
    page = DOCS.read_text(encoding="utf-8")
    after = page[page.index(f"<!-- example: {marker}") :]
    block = after[after.index("```json\n") + len("```json\n") :]
    return block[: block.index("\n```")] + "\n"


def test_docs_show_the_example_scenario_file() -> None:
    assert doc_example("examples/scenario.json") == EXAMPLE.read_text(encoding="utf-8")


def test_docs_show_the_export_exactly_as_it_is_written() -> None:
    loom = planned(load_scenario(EXAMPLE))
    doc = export_window(loom, date(2026, 10, 6), date(2026, 10, 7))
    assert doc_example("export of examples/scenario.json") == dump_export(doc)


def test_docs_list_every_kind() -> None:
    page = DOCS.read_text(encoding="utf-8")
    tables = (RECURRENCE_KINDS, INTENT_KINDS, ONE_OFF_KINDS)
    missing = [kind for table in tables for kind in table if f"| `{kind}` |" not in page]
    assert missing == []
