"""MemoryStore against the store contract, plus what only the memory store promises."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from loomcore import (
    Cancellation,
    Enrolment,
    Intent,
    MemoryStore,
    OneOff,
    Record,
    Reschedule,
    Store,
)
from loomcore.testing import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self) -> Store:
        return MemoryStore()


def test_stores_are_independent() -> None:
    a, b = MemoryStore(), MemoryStore()
    a.set_window_weeks(3)
    assert b.window_weeks() is None


# -------------------------------------------------------- the record index

_AT = datetime(2026, 1, 1, tzinfo=UTC)
_EPOCH = date(2026, 1, 1)
# lengths on each side of the index's span classes (7, 31, 92, 366, 1096 days)
_LENGTHS = st.one_of(st.none(), st.sampled_from([0, 6, 7, 8, 31, 32, 92, 93, 366, 367, 1096, 1097]))
_DAYS = st.integers(min_value=-1200, max_value=400).map(lambda n: _EPOCH + timedelta(days=n))


@st.composite
def _records_and_range(draw: st.DrawFn) -> tuple[list[Record], date, date]:
    """Records around a range ``[start, end]``, many of them just inside or
    just outside it (an intent ending the day before ``start``, on it, after it)."""
    start = draw(_DAYS)
    end = start + timedelta(days=draw(st.integers(min_value=0, max_value=200)))
    near = st.integers(min_value=-2, max_value=2)
    out: list[Record] = []
    for n in range(draw(st.integers(min_value=0, max_value=40))):
        program = draw(st.sampled_from(["wed", "sat"]))
        day = draw(st.one_of(_DAYS, near.map(lambda d: start + timedelta(days=d))))
        kind = draw(st.sampled_from(["intent", "cancel", "move"]))
        if kind == "intent":
            length = draw(_LENGTHS)
            if length is not None and draw(st.booleans()):  # ends next to the range's start
                day = start - timedelta(days=length + draw(near))
            out.append(
                Enrolment(
                    id=f"r{n}",
                    program_id=program,
                    participant_id=draw(st.sampled_from(["ann", "bob"])),
                    start=day,
                    end=None if length is None else day + timedelta(days=length),
                    recorded_at=_AT,
                )
            )
        elif kind == "cancel":
            out.append(Cancellation(id=f"r{n}", program_id=program, date=day, recorded_at=_AT))
        else:
            to = day + timedelta(days=draw(st.integers(min_value=-30, max_value=30).filter(bool)))
            out.append(
                Reschedule(id=f"r{n}", program_id=program, date=day, to_date=to, recorded_at=_AT)
            )
    return out, start, end


def _overlaps(r: Intent, start: date, end: date) -> bool:
    return r.start <= end and (r.end is None or r.end >= start)


@given(case=_records_and_range())
@settings(max_examples=200, deadline=None)
def test_load_records_equals_a_scan_of_every_record(
    case: tuple[list[Record], date, date],
) -> None:
    """The indexes answer as a pass over every record would, in the order added:
    intents overlapping the range, one-offs naming a date in it, and what the
    origin date of a move into the range holds."""
    records, start, end = case
    store = MemoryStore()
    for r in records:
        store.add_record(r)
    one_offs = [
        r for r in records if isinstance(r, OneOff) and any(start <= d <= end for d in r.dates())
    ]
    origins = {(r.program_id, r.date) for r in one_offs if isinstance(r, Reschedule)}
    one_offs += [
        r
        for r in records
        if isinstance(r, OneOff) and r not in one_offs and (r.program_id, r.date) in origins
    ]
    intents = [
        r
        for r in records
        if isinstance(r, Intent)
        and (
            _overlaps(r, start, end)
            or any(r.program_id == p and _overlaps(r, d, d) for p, d in origins)
        )
    ]
    loaded = store.load_records(start, end)
    assert loaded.intents == tuple(intents)
    assert loaded.one_offs == tuple(r for r in records if r in one_offs)
