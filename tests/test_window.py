"""The window and the local times of the roll."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from builders import SYDNEY
from loomcore import InvalidWindowError, Loom, MemoryStore, Organisation, window_for
from loomcore._window import next_local_time


@pytest.mark.parametrize(
    ("today", "weeks", "end"),
    [
        (date(2026, 10, 1), 4, date(2026, 10, 28)),  # the brief's example
        (date(2026, 10, 1), 2, date(2026, 10, 14)),
        (date(2026, 10, 1), 16, date(2027, 1, 20)),
        (date(2028, 2, 20), 2, date(2028, 3, 4)),  # across 29 Feb
    ],
)
def test_window_bounds(today: date, weeks: int, end: date) -> None:
    w = window_for(today, weeks)
    assert (w.start, w.end, w.weeks) == (today, end, weeks)
    assert len(w) == len(list(w.days())) == 7 * weeks
    assert today in w
    assert end in w
    assert date(2000, 1, 1) not in w


@pytest.mark.parametrize("weeks", [0, 1, 17, -3, 4.0, True, None])
def test_window_size_outside_2_to_16_is_refused(weeks: object) -> None:
    with pytest.raises(InvalidWindowError) as info:
        window_for(date(2026, 10, 1), weeks)  # type: ignore[arg-type]
    assert info.value.weeks == weeks


@pytest.mark.parametrize(
    ("now_utc", "expected_local"),
    [
        # 23:00 Sydney on 30 Sep → 00:05 on 1 Oct
        (datetime(2026, 9, 30, 13, 0, tzinfo=UTC), datetime(2026, 10, 1, 0, 5)),
        # exactly at 00:05 → the next day's 00:05
        (datetime(2026, 9, 30, 14, 5, tzinfo=UTC), datetime(2026, 10, 2, 0, 5)),
        # the night before DST starts (4 Oct 2026) and the night before it ends (5 Apr 2026)
        (datetime(2026, 10, 3, 12, 0, tzinfo=UTC), datetime(2026, 10, 4, 0, 5)),
        (datetime(2026, 4, 4, 12, 0, tzinfo=UTC), datetime(2026, 4, 5, 0, 5)),
    ],
)
def test_next_roll_is_0005_local(now_utc: datetime, expected_local: datetime) -> None:
    nxt = next_local_time(now_utc, time(0, 5), SYDNEY)
    assert nxt.replace(tzinfo=None) == expected_local
    assert nxt > now_utc


@pytest.mark.parametrize("clock_zone", [SYDNEY, UTC], ids=["local clock", "UTC clock"])
def test_a_time_in_the_repeated_hour_is_next_once_however_now_is_given(clock_zone: Any) -> None:
    # 4 April 2027: at 03:00 AEDT the clocks go back to 02:00 AEST. At 02:10
    # AEST (the second 02:10) the day's 02:30 came 40 minutes ago, at its
    # first occurrence: the next is tomorrow's
    now = datetime(2027, 4, 4, 2, 10, fold=1, tzinfo=SYDNEY).astimezone(clock_zone)
    nxt = next_local_time(now, time(2, 30), SYDNEY)
    assert (nxt.date(), nxt.time()) == (date(2027, 4, 5), time(2, 30))
    assert nxt.timestamp() > now.timestamp()
    before = datetime(2027, 4, 4, 2, 10, tzinfo=SYDNEY).astimezone(clock_zone)  # the first 02:10
    first = next_local_time(before, time(2, 30), SYDNEY)
    assert first.timestamp() - before.timestamp() == 20 * 60


def test_health_counts_the_last_day_due_once_a_repeated_roll_time_has_passed() -> None:
    now = datetime(2027, 4, 4, 2, 10, fold=1, tzinfo=SYDNEY)  # 40 minutes after the first 02:30
    loom = Loom(MemoryStore(), clock=lambda: now, roll_at=time(2, 30))
    loom.load(Organisation(), weeks=2)
    loom.store.delete_days(date(2027, 4, 17), None)  # the window's last day, not planned
    assert loom.health().missing_days == (date(2027, 4, 17),)
