"""Small runs of the scale benchmark: correctness only, never timing."""

from __future__ import annotations

import gc
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from loomcore import Loom, Store

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import phases
import roll
from scale_org import Generated, Sizes, generate, load_memory, load_postgres

TINY = Sizes(
    programs=6,
    participants=40,
    staff=10,
    vehicles=3,
    venues=2,
    intents=600,
    exceptions=60,
    years=2,
    per_program=6,
)


@pytest.fixture(scope="module")
def generated() -> Generated:
    return generate(TINY, seed=3)


def _window_matches_from_scratch(store: Store, generated: Generated) -> None:
    clock = roll.Clock(roll.roll_time(generated.today))
    loom = Loom(store, clock=clock)
    window = loom.window()
    stored = [d.plan for d in store.planned_days(window.start, window.end)]
    assert [p.date for p in stored] == list(window.days())
    assert stored == loom.preview(window.start, window.end)
    assert any(p.instances for p in stored)


def test_generator_is_deterministic(generated: Generated) -> None:
    again = generate(TINY, seed=3)
    assert again == generated
    assert len(generated.intents) == TINY.intents
    assert len(generated.one_offs) == TINY.exceptions
    assert generate(TINY, seed=4) != generated


def test_scaled_sizes_keep_a_handful_of_each() -> None:
    tiny = Sizes().scaled(0.0001)
    assert tiny.programs >= 3
    assert tiny.participants >= 20
    assert tiny.intents >= 50
    assert Sizes().scaled(0.1).intents == 50_000


def _three_nights_on(generated: Generated) -> Generated:
    """The same records, on the day the benchmark's clock stopped."""
    return attrs.evolve(generated, today=generated.today + timedelta(days=3))


def _run(store: Store, generated: Generated) -> dict[str, Any]:
    figures = roll.run(store, generated, weeks=4, nights=3, edits=2)
    assert figures["days_planned"] == 28
    assert figures["edits"] == 6
    return figures


def test_roll_benchmark_on_memory_store(generated: Generated) -> None:
    store = load_memory(generated)
    _run(store, generated)
    _window_matches_from_scratch(store, _three_nights_on(generated))


def test_fresh_roll_equals_preview_on_memory_store(generated: Generated) -> None:
    store = load_memory(generated)
    store.set_window_weeks(4)
    Loom(store, clock=roll.Clock(roll.roll_time(generated.today))).roll()
    _window_matches_from_scratch(store, generated)


def test_roll_benchmark_on_postgres_store(generated: Generated, pg_engine: Any) -> None:
    from conftest import clean_database
    from loomcore_pg import PostgresStore

    clean_database(pg_engine)
    store = PostgresStore(pg_engine)
    load_postgres(generated, store)
    assert len(store.records()) == len(generated.records)
    assert store.revision() == len(generated.records) + 1
    _run(store, generated)
    _window_matches_from_scratch(store, _three_nights_on(generated))


def test_main_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        roll.main(
            [
                "--json",
                "--quiet",
                "--scale",
                "0.001",
                "--years",
                "1",
                "--weeks",
                "2",
                "--nights",
                "1",
                "--edits",
                "1",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["figures"]["full_roll_s"] > 0
    assert result["peak_rss_mb"] > 0
    assert result["gc_freeze"] is False
    before, after = result["machine"]["reference_ms"]
    assert before > 0
    assert after > 0


def test_the_reference_work_is_the_same_every_time() -> None:
    # the figure runs are compared by: the very same work in every version
    assert roll._reference_work() == 503918
    assert roll.reference_ms() > 0


def test_main_with_gc_freeze_unfreezes_on_the_way_out(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = ["--scale", "0.001", "--years", "1", "--weeks", "2", "--nights", "1", "--edits", "1"]
    assert roll.main(["--json", "--quiet", "--gc-freeze", *tiny]) == 0
    assert '"gc_freeze": true' in capsys.readouterr().out
    assert gc.get_freeze_count() == 0


def test_phases_stop_where_asked(generated: Generated) -> None:
    loaded = phases.run_until("load", generated, weeks=4, nights=2, edits=2)
    assert loaded.revision() == len(generated.records) + 1  # and the organisation
    assert loaded.planned_days() == ()
    rolled = phases.run_until("roll", generated, weeks=4, nights=2, edits=2)
    assert len(rolled.planned_days()) == 28
    assert rolled.revision() == loaded.revision()
    edited = phases.run_until("edits", generated, weeks=4, nights=2, edits=2)
    assert edited.revision() == loaded.revision() + 4
    changes = edited.changes_since(loaded.revision())
    assert all(c.kind == "record" for c in changes)  # each change is a record added
    assert {c.record.id for c in changes if c.record is not None} == {
        "edit-2",
        "edit-3",
        "edit-4",
        "edit-5",
    }
    _window_matches_from_scratch(
        edited, attrs.evolve(generated, today=generated.today + timedelta(days=2))
    )
    with pytest.raises(ValueError, match="phase must be one of"):
        phases.run_until("lunch", generated)
