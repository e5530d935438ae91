"""Routing quality: loomcore's bus-routing solver against Google OR-Tools.

Usage::

    python benchmarks/routing_quality.py [--json] [--cases N] [--seed S] [--time-limit 2]

Each case is one bus run around Sydney: a venue in Parramatta, a depot 5–15
km away, 5–40 homes up to 30 km from the venue (evenly spread in distance, so
denser near it), 1–4 vehicles of 4–11 seats and 0–2 wheelchair places, about
15 % wheelchair riders, and room for everyone (seats are added where the
draw falls short, so the larger cases are often full to the last seat).
Cases alternate pickup and drop-off. Both solvers get the same travel model
(great circle × 1.3 at 35 km/h, OR-Tools in whole metres and hundredths of
a minute), the same two-minute dwell per stop, and an unused vehicle drives
nothing.

Every case is solved twice:

* with the default 60-minute ride limit. With ten riders on a bus spread
  over 30 km this limit often cannot be kept; both solvers then minimise
  minutes over the limit first (10,000 km per minute, OR-Tools through soft
  upper bounds on a ride-time dimension) and distance second, and a rider
  whose direct ride alone is over 60 minutes has that ride as their limit.
* without a ride limit, where the figures compare distance alone.

OR-Tools is a benchmark-only dependency (``pip install ortools``, or the
``bench`` extra); loomcore never imports it. Exit status 2 when it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import attrs

from loomcore._model import Location
from loomcore._routing import GreatCircleTravel, Rider, Seats, plan_routes

VENUE = Location(lat=-33.8150, lon=151.0011)  # Parramatta
TRAVEL = GreatCircleTravel()
MAX_RIDE = 60.0
NO_LIMIT = 10_000.0  # minutes: a limit no ride reaches
STOP = 2.0
DISTANCE_SCALE = 1000  # OR-Tools works in whole metres ...
TIME_SCALE = 100  # ... and hundredths of a minute
LATE_COST = 10_000  # km per minute over a ride limit, as in loomcore
SUITES = (("ride_limit_60", MAX_RIDE), ("no_ride_limit", NO_LIMIT))


@attrs.frozen(kw_only=True)
class Case:
    """One benchmark instance."""

    name: str
    direction: str
    riders: tuple[Rider, ...]
    vehicles: tuple[Seats, ...]


def _offset(origin: Location, km: float, bearing: float) -> Location:
    lat = origin.lat + km * math.cos(bearing) / 111.32
    lon = origin.lon + km * math.sin(bearing) / (111.32 * math.cos(math.radians(origin.lat)))
    return Location(lat=lat, lon=lon)


def make_case(index: int, stops: int, seed: int) -> Case:
    """A deterministic instance with ``stops`` riders; capacities always suffice."""
    rng = random.Random(seed * 1_000_003 + index)
    wheelchair = [rng.random() < 0.15 for _ in range(stops)]
    for i in [i for i, w in enumerate(wheelchair) if w][8:]:  # 4 vehicles × 2 places
        wheelchair[i] = False
    need_wc = sum(wheelchair)
    need_seats = stops - need_wc
    fewest = max(1, math.ceil(need_seats / 11), math.ceil(need_wc / 2))
    count = rng.randint(fewest, 4)
    seats = [rng.randint(4, 11) for _ in range(count)]
    places = [rng.randint(0, 2) for _ in range(count)]
    while sum(seats) < need_seats:
        seats[seats.index(min(seats))] += 1
    while sum(places) < need_wc:
        places[places.index(min(places))] += 1
    direction = "pickup" if index % 2 == 0 else "dropoff"
    depot = _offset(VENUE, rng.uniform(5, 15), rng.uniform(0, 2 * math.pi))
    ends = (depot, VENUE) if direction == "pickup" else (VENUE, depot)
    riders = tuple(
        Rider(
            key=f"p{i:02d}",
            location=_offset(VENUE, 30 * rng.random(), rng.uniform(0, 2 * math.pi)),
            wheelchair=wheelchair[i],
        )
        for i in range(stops)
    )
    vehicles = tuple(
        Seats(
            key=f"bus{v}", seats=seats[v], wheelchair_places=places[v], start=ends[0], end=ends[1]
        )
        for v in range(count)
    )
    return Case(name=f"c{index:02d}", direction=direction, riders=riders, vehicles=vehicles)


def make_cases(count: int, seed: int) -> list[Case]:
    """``count`` cases whose sizes run evenly from 5 to 40 stops."""
    sizes = [5 + (35 * k) // max(1, count - 1) for k in range(count)]
    return [make_case(k, n, seed) for k, n in enumerate(sizes)]


def _minutes(case: Case, home: Location, end: Location) -> float:
    """A direct ride between a home and the venue, the right way round."""
    if case.direction == "pickup":
        return TRAVEL.minutes(home, end)
    return TRAVEL.minutes(end, home)


def ride_limits(case: Case, max_ride: float) -> list[float]:
    """Each rider's limit, raised to their direct ride when that alone is longer."""
    limits = []
    for r in case.riders:
        direct = [
            _minutes(case, r.location, v.end if case.direction == "pickup" else v.start)
            for v in case.vehicles
            if (v.wheelchair_places if r.wheelchair else v.seats) > 0
        ]
        limits.append(max(max_ride, min(direct, default=0.0)))
    return limits


def score(case: Case, routes: dict[str, list[int]], max_ride: float) -> tuple[float, int, float]:
    """Distance, riders over the limit and minutes over their limits of routes
    given in driving order, as rider indices by vehicle key."""
    km = late = 0.0
    over = 0
    limits = ride_limits(case, max_ride)
    for v in case.vehicles:
        order = routes.get(v.key, [])
        if not order:
            continue
        path = [v.start, *(case.riders[i].location for i in order), v.end]
        km += sum(TRAVEL.km(a, b) for a, b in pairwise(path))
        legs = [TRAVEL.minutes(a, b) for a, b in pairwise(path)]
        for k, i in enumerate(order):
            if case.direction == "pickup":
                ride = sum(legs[k + 1 :]) + STOP * (len(order) - 1 - k)
            else:
                ride = sum(legs[: k + 1]) + STOP * k
            over += ride > max_ride + 1e-6
            late += max(0.0, ride - limits[i] - 1e-6)
    return km, over, late


def solve_loomcore(case: Case, max_ride: float = MAX_RIDE) -> tuple[dict[str, list[int]], float]:
    """loomcore's routes by vehicle key, and the milliseconds it took."""
    started = time.perf_counter()
    plan = plan_routes(
        case.riders,
        case.vehicles,
        direction=case.direction,  # type: ignore[arg-type]
        max_ride_minutes=max_ride,
        stop_minutes=STOP,
    )
    ms = (time.perf_counter() - started) * 1000
    index = {r.key: i for i, r in enumerate(case.riders)}
    assert not plan.unserved, plan.unserved
    return {r.vehicle: [index[k] for k in r.riders] for r in plan.routes}, ms


def solve_ortools(
    case: Case, max_ride: float, time_limit: float
) -> tuple[dict[str, list[int]], float]:
    """The same problem for OR-Tools' routing solver, in drop-off form (a pickup
    is solved backwards over transposed matrices, as loomcore does)."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    started = time.perf_counter()
    n, m, back = len(case.riders), len(case.vehicles), case.direction == "pickup"
    points = [r.location for r in case.riders]
    for vehicle in case.vehicles:
        points += [vehicle.end, vehicle.start] if back else [vehicle.start, vehicle.end]
    size = len(points)

    def matrix(f: Any, scale: int) -> list[list[int]]:
        return [
            [
                round((f(points[j], points[i]) if back else f(points[i], points[j])) * scale)
                for j in range(size)
            ]
            for i in range(size)
        ]

    dist = matrix(TRAVEL.km, DISTANCE_SCALE)
    for v in range(m):
        dist[n + 2 * v][n + 2 * v + 1] = 0  # an unused vehicle drives nothing
    starts = [n + 2 * v for v in range(m)]
    manager = pywrapcp.RoutingIndexManager(size, m, starts, [s + 1 for s in starts])
    routing = pywrapcp.RoutingModel(manager)
    # Matrices and vectors, not Python callbacks: OR-Tools runs at full speed.
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(dist))
    for name, flag, caps in (
        ("seats", False, [v.seats for v in case.vehicles]),
        ("wheelchair", True, [v.wheelchair_places for v in case.vehicles]),
    ):
        demand = [int(i < n and case.riders[i].wheelchair == flag) for i in range(size)]
        routing.AddDimensionWithVehicleCapacity(
            routing.RegisterUnaryTransitVector(demand), 0, caps, True, name
        )
    if max_ride < NO_LIMIT:
        # cumul at a rider = their ride: the legs so far plus a dwell at each earlier stop
        mins = matrix(TRAVEL.minutes, TIME_SCALE)
        dwell = round(STOP * TIME_SCALE)
        mins = [[t + (dwell if i < n else 0) for t in row] for i, row in enumerate(mins)]
        routing.AddDimension(routing.RegisterTransitMatrix(mins), 0, 10**9, True, "ride")
        clock = routing.GetDimensionOrDie("ride")
        per_unit = LATE_COST * DISTANCE_SCALE // TIME_SCALE
        for i, limit in enumerate(ride_limits(case, max_ride)):
            bound = math.floor(limit * TIME_SCALE)
            clock.SetCumulVarSoftUpperBound(manager.NodeToIndex(i), bound, per_unit)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(time_limit * 1000))
    solution = routing.SolveWithParameters(params)
    ms = (time.perf_counter() - started) * 1000
    if solution is None:
        raise RuntimeError(f"OR-Tools found no solution for {case.name}")
    routes: dict[str, list[int]] = {}
    for k, seats in enumerate(case.vehicles):
        order, index = [], solution.Value(routing.NextVar(routing.Start(k)))
        while not routing.IsEnd(index):
            order.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes[seats.key] = order[::-1] if back else order
    return routes, ms


def run_suite(
    cases: Sequence[Case], max_ride: float, time_limit: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Solve every case both ways; rows per case and a summary."""
    rows = []
    for case in cases:
        ours, our_ms = solve_loomcore(case, max_ride)
        theirs, their_ms = solve_ortools(case, max_ride, time_limit)
        our_km, our_over, our_late = score(case, ours, max_ride)
        their_km, their_over, their_late = score(case, theirs, max_ride)
        rows.append(
            {
                "case": case.name,
                "direction": case.direction,
                "stops": len(case.riders),
                "vehicles": len(case.vehicles),
                "our_km": round(our_km, 3),
                "ortools_km": round(their_km, 3),
                "ratio": round(our_km / their_km, 4),
                "our_ms": round(our_ms, 1),
                "ortools_ms": round(their_ms, 1),
                "our_over_limit": our_over,
                "ortools_over_limit": their_over,
                "our_late_minutes": round(our_late, 1),
                "ortools_late_minutes": round(their_late, 1),
            }
        )
    return rows, summarise(rows)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in rows]
    speedups = [r["ortools_ms"] / r["our_ms"] for r in rows]
    big = [r["our_ms"] for r in rows if r["stops"] >= 36]
    return {
        "cases": len(rows),
        "mean_ratio": round(statistics.fmean(ratios), 4),
        "median_ratio": round(statistics.median(ratios), 4),
        "worst_ratio": round(max(ratios), 4),
        "best_ratio": round(min(ratios), 4),
        "median_our_ms": round(statistics.median(r["our_ms"] for r in rows), 1),
        "median_our_ms_36_to_40_stops": round(statistics.median(big), 1) if big else None,
        "max_our_ms": round(max(r["our_ms"] for r in rows), 1),
        "median_ortools_ms": round(statistics.median(r["ortools_ms"] for r in rows), 1),
        "median_speedup": round(statistics.median(speedups), 1),
        "min_speedup": round(min(speedups), 1),
        "late_minutes_ours": round(sum(r["our_late_minutes"] for r in rows), 1),
        "late_minutes_ortools": round(sum(r["ortools_late_minutes"] for r in rows), 1),
        "cases_later_than_ortools": sum(
            r["our_late_minutes"] > r["ortools_late_minutes"] + 0.05 for r in rows
        ),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import ortools

    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "python": platform.python_version(),
        "ortools": ortools.__version__,
    }


def print_suite(title: str, rows: list[dict[str, Any]], s: dict[str, Any]) -> None:
    print(f"== {title}")
    head = (
        f"{'case':<5} {'dir':<7} {'stops':>5} {'veh':>3} {'our km':>8} {'OR km':>8} "
        f"{'ratio':>6} {'our ms':>7} {'OR ms':>7} {'over':>5} {'late min':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['case']:<5} {r['direction']:<7} {r['stops']:>5} {r['vehicles']:>3} "
            f"{r['our_km']:>8.2f} {r['ortools_km']:>8.2f} {r['ratio']:>6.3f} "
            f"{r['our_ms']:>7.1f} {r['ortools_ms']:>7.1f} "
            f"{r['our_over_limit']:>2}/{r['ortools_over_limit']:<2} "
            f"{r['our_late_minutes']:>6.0f}/{r['ortools_late_minutes']:<6.0f}"
        )
    print(
        f"distance ratio (ours / OR-Tools) over {s['cases']} cases: mean {s['mean_ratio']:.4f}, "
        f"median {s['median_ratio']:.4f}, worst {s['worst_ratio']:.4f}, best {s['best_ratio']:.4f}"
    )
    print(
        f"time: ours median {s['median_our_ms']:.1f} ms "
        f"(36–40 stops {s['median_our_ms_36_to_40_stops']} ms, max {s['max_our_ms']:.1f}), "
        f"OR-Tools median {s['median_ortools_ms']:.1f} ms; speed-up median "
        f"{s['median_speedup']:.1f}x, least {s['min_speedup']:.1f}x"
    )
    if s["late_minutes_ours"] or s["late_minutes_ortools"]:
        print(
            f"minutes over ride limits, all cases: ours {s['late_minutes_ours']:.0f}, "
            f"OR-Tools {s['late_minutes_ortools']:.0f}; "
            f"ours later in {s['cases_later_than_ortools']} cases"
        )
    print()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cases", type=int, default=30, help="instances (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="instance seed (default 0)")
    parser.add_argument(
        "--time-limit", type=float, default=2.0, help="OR-Tools seconds per instance (default 2)"
    )
    args = parser.parse_args(argv)
    try:
        import ortools  # noqa: F401
    except ImportError:
        print(
            "routing_quality: OR-Tools is missing; install it with `pip install ortools`",
            file=sys.stderr,
        )
        return 2
    cases = make_cases(args.cases, args.seed)
    suites: dict[str, dict[str, Any]] = {}
    for name, max_ride in SUITES:
        rows, summary = run_suite(cases, max_ride, args.time_limit)
        suites[name] = {"summary": summary, "cases": rows}
    if args.json:
        print(json.dumps({"machine": machine(), "suites": suites}, indent=2))
        return 0
    m = machine()
    print(
        f"{args.cases} cases, seed {args.seed}, OR-Tools {m['ortools']} GUIDED_LOCAL_SEARCH "
        f"{args.time_limit:g} s each; {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}\n"
    )
    for name, max_ride in SUITES:
        title = "no ride limit" if max_ride >= NO_LIMIT else f"ride limit {max_ride:g} min"
        print_suite(title, suites[name]["cases"], suites[name]["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
