"""The bounded tables that hand back the same object for the same question.

Each must answer exactly what it would without the table (the same values,
whatever was asked before, also once the table has been emptied for being
full), and the very object it answered last time while it is kept.
"""

from __future__ import annotations

import math

import attrs
import pytest

from loomcore import Staff, _routing, _staffing, _transport
from loomcore._model import Location
from loomcore._routing import GreatCircleTravel, Seats
from loomcore._transport import Direction

HOME, VENUE, DEPOT = (
    Location(lat=-33.81, lon=151.00),
    Location(lat=-33.87, lon=151.21),
    Location(lat=-33.92, lon=151.10),
)


@pytest.mark.parametrize("most", [1, 2, 4096])
def test_a_vehicles_seats_are_its_own_for_each_run_and_the_same_object_while_kept(
    monkeypatch: pytest.MonkeyPatch, most: int
) -> None:
    monkeypatch.setattr(_transport, "_MOST_SEATS", most)
    _transport._SEATS.clear()
    asked: list[tuple[Direction, str, int, int, Location | None, Location]] = [
        ("pickup", "v1", 8, 1, DEPOT, VENUE),
        ("dropoff", "v1", 8, 1, DEPOT, VENUE),
        ("pickup", "v1", 8, 1, None, VENUE),  # no depot: it starts at the venue
        ("pickup", "v2", 5, 0, DEPOT, HOME),
    ]
    for direction, key, seats, places, depot, venue in asked * 2:
        seat = _transport._seat(direction, key, seats, places, depot, venue)
        home = depot or venue
        assert seat == Seats(
            key=key,
            seats=seats - 1,  # the driver's seat is not for riders
            wheelchair_places=places,
            start=home if direction == "pickup" else venue,
            end=venue if direction == "pickup" else home,
        )
        assert len(_transport._SEATS) <= most
    again = _transport._seat("dropoff", "v2", 5, 0, DEPOT, HOME)
    assert _transport._seat("dropoff", "v2", 5, 0, DEPOT, HOME) is again


def test_a_pickups_vehicle_is_swapped_end_for_end_and_the_same_object_while_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_routing, "_MOST_SWAPPED", 2)
    _routing._SWAPPED.clear()
    seats = [Seats(key=f"v{n}", seats=n + 1, start=DEPOT, end=VENUE) for n in range(5)]
    for s in seats * 2:
        swapped = _routing._swapped(s)
        assert swapped == attrs.evolve(s, start=VENUE, end=DEPOT)
        assert _routing._swapped(s) is swapped
        assert len(_routing._SWAPPED) <= 2


def test_distances_are_the_same_remembered_or_not_and_either_way_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_routing, "_MOST_ARCS", 3)
    _routing._ARCS.clear()
    travel = GreatCircleTravel(road_factor=1.25)
    points = [HOME, VENUE, DEPOT, Location(lat=-33.70, lon=150.90)]
    for a in points * 2:
        for b in points:
            expected = _routing._arc(a.lat, a.lon, b.lat, b.lon) * 1.25
            assert math.isclose(travel.km(a, b), expected, rel_tol=1e-12)
            assert travel.km(a, b) == travel.km(b, a)  # to the last bit
            assert len(_routing._ARCS) <= 3


def test_a_pools_drivers_and_places_follow_the_very_pool_asked_about() -> None:
    first = (
        Staff(id="a", name="A", driver=True),
        Staff(id="b", name="B"),
        Staff(id="c", name="C", driver=True),
    )
    other = (Staff(id="d", name="D", driver=True), Staff(id="a", name="A", driver=True))
    drivers = _staffing._drivers(first)
    assert [p.id for p in drivers] == ["a", "c"]
    assert _staffing._drivers(first) is drivers  # kept while it is the same pool
    # an equal pool that is another object, and another pool, are answered afresh
    equal = first[:1] + first[1:]
    assert equal == first
    assert equal is not first
    assert [p.id for p in _staffing._drivers(equal)] == ["a", "c"]
    assert [p.id for p in _staffing._drivers(other)] == ["d", "a"]
    assert _staffing._places(other) == {"d": 0, "a": 1}
    assert _staffing._places(first) == {"a": 0, "b": 1, "c": 2}
    assert _staffing._places(first) is _staffing._places(first)


def test_what_is_kept_with_a_pool_is_made_again_for_another_pool_under_its_key() -> None:
    # the key holds the pool's id, which another object may take once the
    # pool is gone: what was kept is used only for the very same pool
    cache: dict[object, tuple[object, str]] = {}
    first, second = ("p", 1), ("q", 2)

    def never() -> str:
        raise AssertionError("kept: not made again")

    assert _staffing._kept_with(cache, "k", first, lambda: "from the first") == "from the first"
    assert _staffing._kept_with(cache, "k", first, never) == "from the first"
    assert _staffing._kept_with(cache, "k", second, lambda: "from the second") == "from the second"
