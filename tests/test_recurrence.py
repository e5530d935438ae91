"""Recurrence rules: weekly, fortnightly Week A / Week B, RRULE."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from loomcore import Fortnightly, RRule, Weekday, Weekly
from loomcore._recurrence import _occurrences_in_year


def days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def test_weekly_runs_on_its_weekdays_only() -> None:
    rule = Weekly(weekdays=["MO", "we", Weekday.FR])
    runs = [d for d in days(date(2026, 10, 5), 14) if rule.runs_on(d)]
    assert [d.strftime("%a %d") for d in runs] == [
        "Mon 05",
        "Wed 07",
        "Fri 09",
        "Mon 12",
        "Wed 14",
        "Fri 16",
    ]
    assert Weekly(weekdays=[0, 2]) == Weekly(weekdays=["MONDAY", "WEDNESDAY"])


@pytest.mark.parametrize(
    ("anchor", "day", "week"),
    [
        (date(2026, 10, 7), date(2026, 10, 5), "A"),  # Monday of the anchor week
        (date(2026, 10, 7), date(2026, 10, 11), "A"),  # its Sunday
        (date(2026, 10, 7), date(2026, 10, 12), "B"),
        (date(2026, 10, 7), date(2026, 10, 19), "A"),
        (date(2026, 10, 7), date(2026, 10, 4), "B"),  # the week before the anchor
        (date(2026, 10, 7), date(2026, 9, 28), "B"),  # its Monday
        (date(2026, 10, 7), date(2026, 9, 21), "A"),  # two weeks before
        (date(2026, 10, 7), date(2036, 10, 8), "A"),  # 522 weeks later
        (date(2026, 10, 11), date(2026, 10, 5), "A"),  # anchor on a Sunday
    ],
)
def test_week_a_and_b_alternate_from_the_anchor(anchor: date, day: date, week: str) -> None:
    assert Fortnightly(weekdays=["MO"], anchor=anchor).week_of(day) == week


def test_fortnightly_program_runs_every_other_week() -> None:
    week_a = Fortnightly(weekdays=["TU"], anchor=date(2026, 10, 6), week="A")
    week_b = Fortnightly(weekdays=["TU"], anchor=date(2026, 10, 6), week="B")
    tuesdays = days(date(2026, 10, 6), 43)[::7]
    assert [week_a.runs_on(d) for d in tuesdays] == [True, False, True, False, True, False, True]
    assert [week_b.runs_on(d) for d in tuesdays] == [
        not x for x in [True, False, True, False, True, False, True]
    ]


@pytest.mark.parametrize(
    ("rule", "dtstart", "expected"),
    [
        # first Saturday of each month
        (
            "FREQ=MONTHLY;BYDAY=1SA",
            date(2026, 1, 1),
            [date(2026, 10, 3), date(2026, 11, 7), date(2026, 12, 5)],
        ),
        # every second Wednesday counted from dtstart
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE",
            date(2026, 10, 7),
            [
                date(2026, 10, 7),
                date(2026, 10, 21),
                date(2026, 11, 4),
                date(2026, 11, 18),
                date(2026, 12, 2),
                date(2026, 12, 16),
                date(2026, 12, 30),
            ],
        ),
        # a count ends the rule
        ("FREQ=WEEKLY;COUNT=2;BYDAY=TH", date(2026, 10, 1), [date(2026, 10, 1), date(2026, 10, 8)]),
    ],
)
def test_rrule_occurrences(rule: str, dtstart: date, expected: list[date]) -> None:
    r = RRule(rule=rule, dtstart=dtstart)
    assert [d for d in days(date(2026, 10, 1), 92) if r.runs_on(d)] == expected


def test_rrule_never_runs_before_dtstart() -> None:
    r = RRule(rule="FREQ=DAILY", dtstart=date(2026, 10, 10))
    assert not r.runs_on(date(2026, 10, 9))
    assert r.runs_on(date(2026, 10, 10))


def test_rrule_wkst_matters_for_weekly_intervals() -> None:
    # RFC 5545's own example: WKST changes which days an INTERVAL=2 rule picks.
    mo = RRule(rule="FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU", dtstart=date(1997, 8, 5))
    su = RRule(
        rule="FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU", dtstart=date(1997, 8, 5), wkst=Weekday.SU
    )
    span = days(date(1997, 8, 1), 40)
    assert [d.day for d in span if mo.runs_on(d)] == [5, 10, 19, 24]
    assert [d.day for d in span if su.runs_on(d)] == [5, 17, 19, 31]


def test_rrule_is_not_replayed_for_each_date() -> None:
    r = RRule(rule="FREQ=MONTHLY;BYDAY=-1FR", dtstart=date(2000, 1, 1))
    _occurrences_in_year.cache_clear()
    hits = [d for d in days(date(2030, 1, 1), 365) if r.runs_on(d)]
    info = _occurrences_in_year.cache_info()
    assert len(hits) == 12
    assert info.misses == 1  # the year was expanded once for 365 questions
    assert info.hits == 364
