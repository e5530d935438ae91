"""Bus routing: which vehicle carries which riders, and in what order.

Theory of operation
-------------------
One call plans one direction of one bus run: a *pickup* (each vehicle leaves
its depot, collects riders at home and ends at the venue) or a *drop-off*
(each vehicle leaves the venue, takes riders home and ends at its depot).
The objective is the total distance driven; seats, wheelchair places and the
longest allowed ride constrain it. An unused vehicle drives nothing.

Both directions are solved as one problem, the drop-off: a vehicle leaves its
start, visits riders and finishes at its end, and a rider's ride runs from
the start to their stop. A pickup read backwards is exactly that: the solver
transposes the travel matrices, swaps each vehicle's two ends, solves, and
reverses the routes. Distances along a reversed route over the transposed
matrix are those of the forward route, so one-way road networks are honoured.
A travel model that declares itself ``symmetric`` needs no transposing: a
pickup is then the very problem of the drop-off with the same riders and
vehicles, and one search serves both.

Searches are remembered (the 8,192 most recent, when the travel model can
be hashed), keyed by the problem in drop-off form: the riders, the vehicles
with a pickup's ends swapped, the travel model, the limits, and whether the
matrices were transposed. A remembered search gives the routes' stops; their
figures are summed afresh in driving order for the direction asked. The
week-to-week repeats of a roll, and a drop-off after its pickup with a
symmetric model, cost one search. The memos can be handed to another
process and taken from one (``remembered``, ``remember``, ``made``): worker
processes planning days start with this one's answers and send theirs back.

``surely_over_limit`` answers a cheaper one still, from a lower bound and
without solving: whether, however the vehicles share the riders, one of
those named rides over the limit (some vehicle carries at least its share
of them, and the last of those rides through the others' stops and their
quickest legs in). Transport asks it before ``rough_over_limit``.

``rough_over_limit`` answers a cheaper question: who rides over the limit
in the search's best plan once it has gone ten rounds without a new best
(or in the second start's plan, if cheaper); for a run solved exactly, in
its plan, at the same cost. Transport asks it to decide whether a fleet is
short of vehicles. The search is then kept paused (the four most recent);
a ``plan_routes`` call for the same problem runs it on from there instead
of starting again, and ends at the very plan an unpaused search gives.

A ride runs from the moment the vehicle leaves the venue (or the rider's
home) to the moment it reaches the rider's home (or the venue), with the
dwell at every other stop in between. Each rider is one stop with one dwell.

A plan's cost is its distance plus 10,000 km per minute of ride over a limit
plus 10 million km per rider left out, so room comes first, then ride limits,
then distance. A rider whose direct ride alone is over the limit has that
direct ride as their own limit while solving (and is still reported).

A run of up to eight riders (most of a day's runs) is solved exactly, if
its vehicles leave from one or two places (or more, for fewer riders: the
work grows with the places times 2**riders). Each vehicle's cheapest route
over every set of riders is built up one stop at a time, keeping for each
set and last stop only the orders no other order beats on both cost so far
and time of arrival (a later arrival can only make what follows later).
An order is a number in an array that gives the order it grew from and
its last stop: growing one costs the same however long it is, and what is
remembered of the orders holds nothing for the cyclic collector to walk.
The vehicles then share the riders out by dynamic programming over sets,
carrying as many riders as there is room for (as the search does), at the
least cost. That costs less than the search below up to eight riders, and
finds plans it misses (giving a vehicle another's whole route, say). The
first answer of such a run is its plan. The cheapest orders from a start
are remembered apart (the most recent, up to 250,000 orders in 4,096
runs, in this process only), as they read nothing of the vehicles but
where they start: the same riders asked again with a vehicle added, or
with another set of vehicles free (a day re-planned after an edit), cost
only the last legs to each vehicle's end and the sharing out.

Larger runs are searched:

1. Greedy insertion builds a first plan, riders farthest from the start
   first, each where it adds least cost.
2. A second start fills each vehicle in turn with its nearest riders,
   onward from its start and, apart, back from its end (the order of a
   driver collecting the nearest rider next from a pickup's depot); the
   cheaper fill is polished, and at the end the search's plan stands only
   if it beats it (greedy insertion alone can miss plans that
   spread riders over vehicles it has not used yet).
3. Local search descends to a local optimum over granular neighbourhoods
   (each rider's ten nearest riders): move a string of one to three stops,
   swap two stops in place, exchange two riders between routes each to
   their best place, 2-opt within a route, tail exchange (2-opt*) between
   routes, and handing a route's tail to an unused vehicle. Distance
   changes are found in O(1); only improving candidates are checked in full
   against capacities and ride limits. Riders on unchanged routes are not
   looked at again ("don't look" marks). As local search only tries moves
   that shorten the drive, minutes over a limit are worked down by
   ruin and recreate, whose insertion prices them.
4. Up to 200 ruin-and-recreate rounds, 25 per rider for small runs (strings
   of stops removed around a random rider, then reinserted greedily in a
   random, far-first or near-first order, or by regret) under simulated
   annealing, each candidate that beats the current plan polished by local
   search. The loop stops early after 100 rounds without a new best (half
   the rounds, for small runs).

Invariants:

1. Every rider is on exactly one route or in ``unserved``.
2. No route carries more riders than seats, or more wheelchair riders than
   wheelchair places; a wheelchair rider never takes a seat.
3. Riders are left out only when no vehicle has room of their kind left.
4. Same inputs, same plan: riders and vehicles are handled in key order,
   ties go to the first in that order, the random stream is
   ``random.Random(0)`` and the work is counted in rounds, never timed. A
   remembered search is the one a fresh call would run.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from functools import cached_property
from itertools import chain, pairwise
from operator import itemgetter
from typing import Any, ClassVar, Literal, NoReturn, Protocol, TypeVar

import attrs

from ._errors import InvalidRecordError
from ._model import Location
from ._tables import keep

__all__ = ["GreatCircleTravel", "Rider", "Route", "RoutePlan", "Seats", "Travel", "plan_routes"]

EARTH_RADIUS_KM = 6371.0088
_EPS = 1e-9
_UNSERVED_COST = 1e7  # per rider left out: outweighs any distance
_LATE_COST = 1e4  # per minute over a ride limit: outweighs any plausible detour
_NEAR = 10  # riders in each granular neighbourhood
_ROUNDS = 200  # most ruin-and-recreate rounds per call ...
_IDLE = 100  # ... stopping after this many without a new best
_ROUNDS_PER_RIDER = 25  # small runs need fewer: the budget is min(_ROUNDS, 25 n)
_STRINGS = 3  # most routes one ruin touches
_STRING_LEN = 8  # longest string of stops one ruin removes from a route
_HEAT = 3.0  # starting temperature, in mean km per rider of the first plan
_MEMO = 8192  # searches remembered
_GLANCE = 10  # rounds without a new best before a search's first answer (rough_over_limit)
_EXACT = 8  # runs of up to this many riders are solved exactly (see _exact) ...
_EXACT_WORK = 2 * 7**2 * 2**7  # ... if (starts × riders² × 2**riders) is at most this,
_EXACT_STARTS = 2  # ... or, at eight riders, if they start from at most this many places
_PAUSED = 4  # searches kept paused after that answer, to be run on if asked for in full

_T = TypeVar("_T")
Plan = tuple[list[list[int]], list[int]]  # routes by vehicle, riders left out
Found = tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]  # a search's stops, left out


class Travel(Protocol):
    """Distances and driving times between two points; need not be symmetric.

    A model must be pure: the same two points always give the same answers.
    A model may declare a class attribute ``symmetric = True`` (read with
    ``getattr(travel, "symmetric", False)``) when ``km(a, b) == km(b, a)``
    and ``minutes(a, b) == minutes(b, a)`` hold exactly, to the last bit:
    pickups and drop-offs then share one search. A model that can be hashed
    (equal models hashing alike) lets searches be remembered across calls.
    """

    def km(self, a: Location, b: Location) -> float:
        """Road distance from ``a`` to ``b`` in kilometres, non-negative."""
        ...

    def minutes(self, a: Location, b: Location) -> float:
        """Driving time from ``a`` to ``b`` in minutes, non-negative."""
        ...


def _positive(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise InvalidRecordError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(kw_only=True)
class GreatCircleTravel:
    """The default travel model: great-circle distance times a road factor,
    driven at a constant speed. Symmetric to the last bit."""

    symmetric: ClassVar[bool] = True  # km(a, b) == km(b, a), minutes likewise

    road_factor: float = attrs.field(default=1.3, validator=_positive)
    speed_kmh: float = attrs.field(default=35.0, validator=_positive)

    def km(self, a: Location, b: Location) -> float:
        """Haversine distance times ``road_factor``, the same either way."""
        if (b.lat, b.lon) < (a.lat, a.lon):  # one order of the two points: exactly symmetric
            a, b = b, a
        key = (a.lat, a.lon, b.lat, b.lon)
        arc = _ARCS.get(key)
        if arc is None:
            arc = keep(_ARCS, key, _arc(*key), _MOST_ARCS)
        return arc * self.road_factor

    def minutes(self, a: Location, b: Location) -> float:
        """``km`` at ``speed_kmh``."""
        return self.km(a, b) / self.speed_kmh * 60.0


def _arc(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle km between two points (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


#: Great-circle km by pair of points (lat, lon, lat, lon; the lesser point
#: first): a day's runs measure the same homes, depots and venues again and
#: again (17,000 pairs in 170,000 measurements over the benchmark's roll and
#: a month of edits). Emptied when full.
_ARCS: dict[tuple[float, float, float, float], float] = {}
_MOST_ARCS = 1 << 16


def _key(inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecordError(f"{type(inst).__name__}.key must be a non-empty string")


def _count(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise InvalidRecordError(
            f"{type(inst).__name__} {getattr(inst, 'key', '')!r}: {attribute.name} "
            f"must be a whole number, not negative, got {value!r}",
            field=attribute.name,
        )


@attrs.frozen(kw_only=True, cache_hash=True)
class Rider:
    """A participant to carry: ``location`` is their home."""

    key: str = attrs.field(validator=_key)
    location: Location
    wheelchair: bool = False


@attrs.frozen(kw_only=True, cache_hash=True)
class Seats:
    """One vehicle for one run: room for riders and the two ends of its route.

    ``seats`` excludes the driver's. A wheelchair rider takes a wheelchair
    place, every other rider a seat. For a pickup ``start`` is the depot and
    ``end`` the venue; for a drop-off the other way round.
    """

    key: str = attrs.field(validator=_key)
    seats: int = attrs.field(validator=_count)
    wheelchair_places: int = attrs.field(default=0, validator=_count)
    start: Location
    end: Location


@attrs.frozen(kw_only=True)
class Route:
    """One vehicle's run: riders in visiting order, with each rider's ride."""

    vehicle: str
    riders: tuple[str, ...]
    km: float
    minutes: float
    ride_minutes: tuple[float, ...]


@attrs.frozen(kw_only=True)
class RoutePlan:
    """Routes of the vehicles used, riders left out for want of room, and
    riders whose ride is longer than the limit (both sorted by key)."""

    routes: tuple[Route, ...]
    unserved: tuple[str, ...] = ()
    over_ride_limit: tuple[str, ...] = ()

    @property
    def total_km(self) -> float:
        """Distance driven by all vehicles."""
        return sum(r.km for r in self.routes)


class _Problem:
    """One call's data in drop-off form (``vehicles`` given so, and the
    matrices transposed for a pickup unless the travel model is symmetric).
    Riders are 0..n-1; vehicle v starts at node n + 2v and ends at node n + 2v + 1."""

    def __init__(
        self,
        riders: Sequence[Rider],
        vehicles: Sequence[Seats],
        travel: Travel,
        transpose: bool,
        max_ride: float,
        stop: float,
    ) -> None:
        self.n, self.m, self.stop, self.max_ride = len(riders), len(vehicles), stop, max_ride
        self.riders, self.travel, self.transpose = tuple(riders), travel, transpose
        points = [r.location for r in riders] + [x for v in vehicles for x in (v.start, v.end)]
        self.D, self.T = _matrices(points, travel, transpose)
        self.start = [self.n + 2 * v for v in range(self.m)]
        self.end = [self.n + 2 * v + 1 for v in range(self.m)]
        self.wc = [int(r.wheelchair) for r in riders]
        self.seats = [v.seats for v in vehicles]
        self.places = [v.wheelchair_places for v in vehicles]
        self.limit = [max(max_ride, self._direct(u)) for u in range(self.n)]
        self.second: _Search | None = None  # the second start, once made
        # the vehicles by where they start, as the riders see it (the distances
        # and times to them): vehicles starting alike share their orders
        self.origins: dict[tuple[tuple[float, ...], tuple[float, ...]], list[int]] = {}
        for v, s in enumerate(self.start):
            key = (tuple(self.D[s][: self.n]), tuple(self.T[s][: self.n]))
            self.origins.setdefault(key, []).append(v)
        # solved exactly when that is cheap: few riders, from few places
        starts = len(self.origins)
        self.exact = self.n <= _EXACT and (
            starts * self.n**2 * 2**self.n <= _EXACT_WORK
            or (self.n == _EXACT and starts <= _EXACT_STARTS)
        )

    # What only the search reads (a run solved exactly never does), made when first read.

    @cached_property
    def Dt(self) -> list[list[float]]:
        """The distances transposed: ``Dt[b][a] == D[a][b]``."""
        return [list(col) for col in zip(*self.D, strict=True)]

    @cached_property
    def Tt(self) -> list[list[float]]:
        """The times transposed."""
        return [list(col) for col in zip(*self.T, strict=True)]

    @cached_property
    def reach(self) -> list[float]:
        """Each rider's distance from the nearest start."""
        D, start = self.D, self.start
        return [min((D[s][u] for s in start), default=0.0) for u in range(self.n)]

    @cached_property
    def near(self) -> list[list[int]]:
        """The other riders by distance there and back, nearest first, for each rider."""
        D = self.D
        return [
            sorted((w for w in range(self.n) if w != u), key=lambda w: D[u][w] + D[w][u])
            for u in range(self.n)
        ]

    @cached_property
    def close(self) -> list[list[int]]:
        """Each rider's granular neighbourhood: the ``_NEAR`` nearest of :attr:`near`."""
        return [near[:_NEAR] for near in self.near]

    def _direct(self, u: int) -> float:
        """The shortest ride ``u`` could have alone: their limit if over ``max_ride``."""
        caps = self.places if self.wc[u] else self.seats
        rides = [self.T[s][u] for s, c in zip(self.start, caps, strict=True) if c > 0]
        return min(rides, default=0.0)


def _matrices(
    points: list[Location], travel: Travel, transpose: bool
) -> tuple[list[list[float]], list[list[float]]]:
    """Distance and time matrices over ``points``, each pair asked of ``travel``
    once (each pair either way round once, if it is symmetric)."""
    index: dict[Location, int] = {}
    for p in points:
        index.setdefault(p, len(index))
    places = list(index)
    symmetric = bool(getattr(travel, "symmetric", False))
    km = _table(places, travel.km, symmetric)
    if type(travel) is GreatCircleTravel:  # the same arithmetic as its minutes(), half the work
        speed = travel.speed_kmh
        mins = [[x / speed * 60.0 for x in row] for row in km]
    else:
        mins = _table(places, travel.minutes, symmetric)
    for measure, table in (("km", km), ("minutes", mins)):
        for a, row in enumerate(table):
            # none negative (the least is not), none infinite or NaN (the sum is finite)
            if not (min(row) >= 0.0 and math.isfinite(sum(row))):
                _refuse_figure(measure, row, places[a], places)
    if transpose:
        km = [list(col) for col in zip(*km, strict=True)]
        mins = [list(col) for col in zip(*mins, strict=True)]
    if len(places) == len(points):  # no point twice: the tables are the matrices
        return km, mins
    ids = [index[p] for p in points]
    pick = itemgetter(*ids)  # more than one point: a vehicle has two
    return [list(pick(km[i])) for i in ids], [list(pick(mins[i])) for i in ids]


def _refuse_figure(
    measure: str, row: list[float], start: Location, places: list[Location]
) -> NoReturn:
    """Raise for the first figure of ``row`` (from ``start`` to each of
    ``places``) that is negative or not finite, naming the leg."""
    b = next(j for j, x in enumerate(row) if not (x >= 0.0 and math.isfinite(x)))
    end = places[b]
    raise InvalidRecordError(
        f"the travel model returned a negative or non-finite value: {row[b]!r} {measure} "
        f"from ({start.lat}, {start.lon}) to ({end.lat}, {end.lon})"
    )


def _table(
    places: list[Location], measure: Callable[[Location, Location], float], symmetric: bool
) -> list[list[float]]:
    """``measure`` between every two places; each pair measured one way only if symmetric."""
    if not symmetric:
        return [[float(measure(a, b)) for b in places] for a in places]
    table = [[0.0] * len(places) for _ in places]
    for i, a in enumerate(places):
        row = table[i]
        for j in range(i, len(places)):
            row[j] = table[j][i] = float(measure(a, places[j]))
    return table


class _Search:
    """A plan under construction: routes per vehicle plus cached figures."""

    def __init__(self, p: _Problem, rng: random.Random) -> None:
        self.p, self.rng = p, rng
        self.routes: list[list[int]] = [[] for _ in range(p.m)]
        self.unserved: list[int] = []
        self.where = [-1] * p.n  # vehicle carrying each rider, -1 for none
        self.pos = [-1] * p.n
        self.km = [0.0] * p.m
        self.excess = [0.0] * p.m  # minutes over ride limits
        self.arr: list[list[float]] = [[] for _ in range(p.m)]  # ride at each stop
        self.cum: list[list[float]] = [[] for _ in range(p.m)]  # km from the start
        self.slack: list[list[float]] = [[math.inf] for _ in range(p.m)]
        self.late: list[list[int]] = [[0] for _ in range(p.m)]
        self.load = [0] * p.m
        self.wload = [0] * p.m
        self.touched: set[int] = set()  # routes changed since the last snapshot
        self.dirty = [True] * p.n  # riders local search should look at again

    # -- bookkeeping -------------------------------------------------------

    def refresh(self, v: int) -> None:
        """Recompute route ``v``'s cached figures after a change."""
        p, r, where, pos = self.p, self.routes[v], self.where, self.pos
        D, T, L, stop, wc = p.D, p.T, p.limit, p.stop, p.wc
        prev, t, km, ex, chairs, i = p.start[v], -stop, 0.0, 0.0, 0, 0
        arr: list[float] = []
        cum: list[float] = []
        spares: list[float] = []
        for x in r:
            km += D[prev][x]
            t += stop + T[prev][x]
            arr.append(t)
            cum.append(km)
            where[x] = v
            pos[x] = i
            i += 1
            chairs += wc[x]
            spare = L[x] - t
            spares.append(spare)
            if spare < 0:
                ex += t - L[x]
            prev = x
        # From each stop on: how many riders are late, and the least spare
        # time of those who are not (what a later arrival may use up).
        slack, late = [math.inf] * (i + 1), [0] * (i + 1)
        least, count = math.inf, 0
        while i:
            i -= 1
            spare = spares[i]
            if spare < 0:
                count += 1
            elif spare < least:
                least = spare
            slack[i], late[i] = least, count
        self.km[v] = km + D[prev][p.end[v]] if r else 0.0
        self.excess[v], self.arr[v], self.cum[v] = ex, arr, cum
        self.slack[v], self.late[v] = slack, late
        self.wload[v], self.load[v] = chairs, len(r) - chairs
        self.touched.add(v)

    def cost(self) -> float:
        return sum(self.km) + _LATE_COST * sum(self.excess) + _UNSERVED_COST * len(self.unserved)

    def snapshot(self) -> Plan:
        self.touched = set()
        return [list(r) for r in self.routes], list(self.unserved)

    def restore(self, plan: Plan, everything: bool = False) -> None:
        """Go back to ``plan``, rebuilding only the routes changed since the
        last snapshot or restore unless told to rebuild ``everything``."""
        changed = range(self.p.m) if everything else self.touched
        self.unserved = list(plan[1])
        for u in self.unserved:
            self.where[u] = self.pos[u] = -1
        for v in list(changed):
            self.routes[v] = list(plan[0][v])
            self.refresh(v)
        self.touched = set()
        self.dirty = [everything] * self.p.n

    def route_cost(self, v: int, r: list[int]) -> float | None:
        """Cost of route ``r`` on vehicle ``v``, or None if it does not fit."""
        p = self.p
        if not r:
            return 0.0
        D, T, L, stop, wc = p.D, p.T, p.limit, p.stop, p.wc
        prev, t, km, ex, chairs = p.start[v], -stop, 0.0, 0.0, 0
        for x in r:
            km += D[prev][x]
            t += stop + T[prev][x]
            if t > L[x]:
                ex += t - L[x]
            chairs += wc[x]
            prev = x
        if chairs > p.places[v] or len(r) - chairs > p.seats[v]:
            return None
        return km + D[prev][p.end[v]] + _LATE_COST * ex

    def apply(self, changes: list[tuple[int, list[int]]]) -> bool:
        """Make the changes if they fit and lower the cost; say whether made."""
        old = new = 0.0
        for v, r in changes:
            c = self.route_cost(v, r)
            if c is None:
                return False
            old += self.km[v] + _LATE_COST * self.excess[v]
            new += c
        if new >= old - _EPS:
            return False
        for v, r in changes:
            self.routes[v] = r
            self.refresh(v)
            for x in r:
                self.dirty[x] = True
        return True

    # -- insertion -----------------------------------------------------------

    def insert(self, u: int, v: int, i: int) -> None:
        """Put ``u`` at position ``i`` of route ``v``, or among the left out if ``v < 0``."""
        if v < 0:
            self.unserved.append(u)
            self.where[u] = self.pos[u] = -1
            return
        r = self.routes[v]
        r.insert(i, u)
        self.refresh(v)
        for x in r[max(0, i - 1) : i + 2]:
            self.dirty[x] = True

    def cheapest(self, u: int) -> tuple[float, int, int]:
        """Where ``u`` adds least cost: the cost, route and position (-1 if nowhere)."""
        best = (math.inf, -1, -1)
        for v in range(self.p.m):
            c, i = self._cheapest_in(u, v, best[0])
            if c < best[0]:
                best = (c, v, i)
        return best

    def _cheapest_in(self, u: int, v: int, bound: float) -> tuple[float, int]:
        """Cheapest place for ``u`` on route ``v`` if it costs less than ``bound``."""
        p = self.p
        if (self.wload[v] >= p.places[v]) if p.wc[u] else (self.load[v] >= p.seats[v]):
            return math.inf, -1
        D, stop, lim = p.D, p.stop, p.limit[u]
        to_u, from_u, time_to_u, time_from_u = p.Dt[u], D[u], p.Tt[u], p.T[u]
        r, arr, slack, late = self.routes[v], self.arr[v], self.slack[v], self.late[v]
        prev, depart = p.start[v], 0.0
        best, bi = bound, -1
        for i, nxt in enumerate(r):
            t = depart + time_to_u[prev]
            c = to_u[prev] + from_u[nxt] - D[prev][nxt]
            if t > lim:
                c += _LATE_COST * (t - lim)
            if c < best:
                shift = t + stop + time_from_u[nxt] - arr[i]  # later arrival at every later stop
                if shift < 0:
                    c += _LATE_COST * self._lateness(v, i, shift)
                else:  # exact unless an on-time rider becomes late
                    room = slack[i]
                    c += _LATE_COST * (shift * late[i] + (shift - room if shift > room else 0.0))
                    if shift > room and c < best:
                        extra = self._lateness(v, i, shift) - shift * late[i] - shift + room
                        c += _LATE_COST * extra
                if c < best:
                    best, bi = c, i
            depart = arr[i] + stop
            prev = nxt
        # the last place: just before the end, with no stop after it
        end = p.end[v]
        t = depart + time_to_u[prev]
        c = to_u[prev] + from_u[end] - D[prev][end] if r else to_u[prev] + from_u[end]
        if t > lim:
            c += _LATE_COST * (t - lim)
        if c < best:
            return c, len(r)
        return (best, bi) if bi >= 0 else (math.inf, -1)

    def _lateness(self, v: int, i: int, shift: float) -> float:
        """Extra lateness of route ``v``'s stops from ``i`` on if reached ``shift`` later."""
        r, arr, L = self.routes[v], self.arr[v], self.p.limit
        total = 0.0  # summed stop by stop, in order (as sum() of a list does on 3.11)
        for k in range(i, len(r)):
            a, limit = arr[k], L[r[k]]
            later = a + shift - limit
            over = a - limit
            total += (later if later > 0.0 else 0.0) - (over if over > 0.0 else 0.0)
        return total

    def regret_insert(self, pool: list[int]) -> None:
        """Insert first the rider who would lose most by missing their best route."""
        m = self.p.m
        table = {u: [self._cheapest_in(u, v, math.inf) for v in range(m)] for u in pool}
        while table:
            pick, top = -1, (-math.inf, 0.0)
            for u, options in table.items():
                first = second = math.inf  # the two least costs
                for c, _ in options:
                    if c < first:
                        first, second = c, first
                    elif c < second:
                        second = c
                score = (second - first if first < math.inf else -1.0, -first)
                if score > top:
                    pick, top = u, score
            options = table.pop(pick)
            v = min(range(m), key=lambda v: options[v][0])
            if options[v][0] == math.inf:
                self.insert(pick, -1, -1)
                continue
            self.insert(pick, v, options[v][1])
            for u, opts in table.items():
                opts[v] = self._cheapest_in(u, v, math.inf)

    # -- local search --------------------------------------------------------

    def local_search(self) -> None:
        """First-improvement descent until no marked rider has an improving move."""
        dirty, again = self.dirty, True
        while again:
            again = False
            for u in range(self.p.n):
                if dirty[u]:
                    dirty[u] = False
                    if self.where[u] >= 0 and self._improve(u):
                        again = True

    def _around(self, v: int, i: int) -> tuple[int, int]:
        """The nodes before and after position ``i`` of route ``v``."""
        r, p = self.routes[v], self.p
        return (r[i - 1] if i else p.start[v]), (r[i + 1] if i + 1 < len(r) else p.end[v])

    def _improve(self, u: int) -> bool:
        a, i = self.where[u], self.pos[u]
        pu, su = self._around(a, i)
        D, A = self.p.D, self.routes[a]
        gain = D[pu][u] + D[u][su] - (D[pu][su] if len(A) > 1 else 0.0)
        return (
            self._move(u, a, i, 1)
            or self._swap(u, a, i, pu, su)
            or self._cross(u, a, i)
            or self._move(u, a, i, 2)
            or self._move(u, a, i, 3)
            or self._exchange(u, a, i, gain)
        )

    def _move(self, u: int, a: int, i: int, size: int) -> bool:
        """Move the ``size`` stops starting at ``u`` next to a neighbour (or onto
        an empty vehicle), either way round."""
        p, D, A, where = self.p, self.p.D, self.routes[a], self.where
        if i + size > len(A):
            return False
        seg = A[i : i + size]
        first, last = seg[0], seg[-1]
        pu = A[i - 1] if i else p.start[a]
        sl = A[i + size] if i + size < len(A) else p.end[a]
        gain = D[pu][first] + D[last][sl] - (D[pu][sl] if len(A) > size else 0.0) - _EPS
        rest = A[:i] + A[i + size :]
        chairs = sum(p.wc[x] for x in seg)
        to_first, to_last, from_first, from_last = p.Dt[first], p.Dt[last], D[first], D[last]
        wload, load, places, seats = self.wload, self.load, p.places, p.seats
        fits = [
            v == a or (wload[v] + chairs <= places[v] and load[v] + size - chairs <= seats[v])
            for v in range(p.m)
        ]
        for w in p.close[u]:
            b = where[w]
            if b < 0 or not fits[b] or w in seg:
                continue
            B = rest if a == b else self.routes[b]
            j = B.index(w) if a == b else self.pos[w]
            for k in (j + 1, j) if size == 1 else (j, j + 1):
                prev = B[k - 1] if k else p.start[b]
                nxt = B[k] if k < len(B) else p.end[b]
                base = D[prev][nxt]
                if to_first[prev] + from_last[nxt] - base < gain:
                    part = seg
                elif size > 1 and to_last[prev] + from_first[nxt] - base < gain:
                    part = seg[::-1]
                else:
                    continue
                B2 = [*B[:k], *part, *B[k:]]
                if self.apply([(a, B2)] if a == b else [(a, rest), (b, B2)]):
                    return True
        for v in range(p.m):
            s, e = p.start[v], p.end[v]
            if self.routes[v] or v == a or not fits[v]:
                continue
            if to_first[s] + from_last[e] < gain and self.apply([(a, rest), (v, seg)]):
                return True
            if (
                size > 1
                and to_last[s] + from_first[e] < gain
                and self.apply([(a, rest), (v, seg[::-1])])
            ):
                return True
        return False

    def _swap(self, u: int, a: int, i: int, pu: int, su: int) -> bool:
        """Swap ``u`` with a neighbour, each taking the other's place."""
        D = self.p.D
        for w in self.p.close[u]:
            b, j = self.where[w], self.pos[w]
            if b < 0 or (a == b and abs(i - j) < 2):
                continue
            pw, sw = self._around(b, j)
            delta = D[pu][w] + D[w][su] - D[pu][u] - D[u][su]
            delta += D[pw][u] + D[u][sw] - D[pw][w] - D[w][sw]
            if delta < -_EPS:
                A2 = list(self.routes[a])
                A2[i] = w
                B2 = A2 if a == b else list(self.routes[b])
                B2[j] = u
                if self.apply([(a, A2)] if a == b else [(a, A2), (b, B2)]):
                    return True
        return False

    def _exchange(self, u: int, a: int, i: int, gain: float) -> bool:
        """Swap ``u`` with a like neighbour on another route, each to its best place."""
        p, D = self.p, self.p.D
        A = self.routes[a]
        rest_a = A[:i] + A[i + 1 :]
        for w in p.close[u]:
            b, j = self.where[w], self.pos[w]
            if b < 0 or b == a or p.wc[u] != p.wc[w]:
                continue
            B = self.routes[b]
            pw, sw = self._around(b, j)
            gain_b = D[pw][w] + D[w][sw] - (D[pw][sw] if len(B) > 1 else 0.0)
            ca, ka = self._slot(a, rest_a, w)
            if ca - gain - gain_b >= -_EPS:  # distances are never negative: cb >= 0
                continue
            rest_b = B[:j] + B[j + 1 :]
            cb, kb = self._slot(b, rest_b, u)
            if ca + cb - gain - gain_b < -_EPS and self.apply(
                [(a, [*rest_a[:ka], w, *rest_a[ka:]]), (b, [*rest_b[:kb], u, *rest_b[kb:]])]
            ):
                return True
        return False

    def _slot(self, v: int, r: list[int], x: int) -> tuple[float, int]:
        """Cheapest place for ``x`` in route ``r`` of vehicle ``v``, by distance only."""
        p, D = self.p, self.p.D
        start, end, to_x, from_x = p.start[v], p.end[v], p.Dt[x], D[x]
        if not r:
            return to_x[start] + from_x[end], 0
        best, at, prev = to_x[start] + from_x[r[0]] - D[start][r[0]], 0, r[0]
        for k in range(1, len(r)):
            nxt = r[k]
            c = to_x[prev] + from_x[nxt] - D[prev][nxt]
            if c < best:
                best, at = c, k
            prev = nxt
        c = to_x[prev] + from_x[end] - D[prev][end]
        return (c, len(r)) if c < best else (best, at)

    def _cross(self, u: int, a: int, i: int) -> bool:
        """2-opt* between routes, 2-opt within one: make ``u`` adjacent to a neighbour."""
        p, D, A = self.p, self.p.D, self.routes[a]
        if i + 1 < len(A) and self._split(u, a, i):
            return True
        for w in p.close[u]:
            b, j = self.where[w], self.pos[w]
            if b < 0:
                continue
            B = self.routes[b]
            if a == b:  # reverse the stops between them
                lo, hi = min(i, j), max(i, j)
                if hi - lo < 2:
                    continue
                x, y, z = A[lo], A[hi], A[lo + 1]
                sy = A[hi + 1] if hi + 1 < len(A) else p.end[a]
                if D[x][y] + D[z][sy] - D[x][z] - D[y][sy] < -_EPS and self.apply(
                    [(a, [*A[: lo + 1], *A[hi:lo:-1], *A[hi + 1 :]])]
                ):
                    return True
                continue
            old = self.km[a] + self.km[b] - _EPS
            ca, cb = self.cum[a], self.cum[b]
            # u → w: u's route ends with w's tail, w's route with u's old tail
            new = ca[i] + D[u][w] + cb[-1] - cb[j] + D[B[-1]][p.end[a]]
            if (
                new < old
                and new + self._join(b, j, A, ca, i + 1) < old
                and self.apply([(a, A[: i + 1] + B[j:]), (b, B[:j] + A[i + 1 :])])
            ):
                return True
            # w → u: the same, the other way round
            new = cb[j] + D[w][u] + ca[-1] - ca[i] + D[A[-1]][p.end[b]]
            if (
                new < old
                and new + self._join(a, i, B, cb, j + 1) < old
                and self.apply([(a, A[:i] + B[j + 1 :]), (b, B[: j + 1] + A[i:])])
            ):
                return True
        return False

    def _split(self, u: int, a: int, i: int) -> bool:
        """Hand the stops after ``u`` to an empty vehicle, either way round."""
        p, D, A, ca = self.p, self.p.D, self.routes[a], self.cum[a]
        empty = [v for v in range(p.m) if not self.routes[v]]
        if not empty:
            return False
        tail, first, last = A[i + 1 :], A[i + 1], A[-1]
        now = self.km[a] - ca[i] - D[u][p.end[a]] - _EPS  # what the tail costs now
        ahead, behind = ca[-1] - ca[i + 1], sum(D[y][x] for x, y in pairwise(tail))
        for v in empty:
            s, e = p.start[v], p.end[v]
            if D[s][first] + ahead + D[last][e] < now and self.apply([(a, A[: i + 1]), (v, tail)]):
                return True
            if D[s][last] + behind + D[first][e] < now and self.apply(
                [(a, A[: i + 1]), (v, tail[::-1])]
            ):
                return True
        return False

    def _join(self, v: int, h: int, Y: list[int], cy: list[float], t: int) -> float:
        """Distance of vehicle ``v`` driving its first ``h`` riders, then ``Y[t:]``."""
        p, X = self.p, self.routes[v]
        last = X[h - 1] if h else p.start[v]
        km = self.cum[v][h - 1] if h else 0.0
        if t < len(Y):
            km += p.D[last][Y[t]] + cy[-1] - cy[t]
            last = Y[-1]
        elif not h:
            return 0.0
        return km + p.D[last][p.end[v]]

    # -- ruin and recreate ---------------------------------------------------

    def ruin(self) -> list[int]:
        """Remove strings of stops from a few routes near a random rider."""
        p, bits, where, dirty = self.p, self.rng.getrandbits, self.where, self.dirty
        # every rider is on a route or left out, so the served are all but those
        count = p.n - len(self.unserved)
        if not count:
            return []
        k = _below(bits, count)
        seed = k if not self.unserved else [u for u in range(p.n) if where[u] >= 0][k]
        used = p.m - self.routes.count([])
        strings = 1 + _below(bits, min(_STRINGS, used))
        longest = max(1, min(_STRING_LEN, count // 3))
        hit: list[int] = []
        removed: list[int] = []
        for w in chain((seed,), p.near[seed]):
            v = where[w]
            if v < 0 or v in hit:
                continue
            hit.append(v)
            r, j = self.routes[v], self.pos[w]
            size = 1 + _below(bits, min(longest, len(r)))
            lo = max(0, j - size + 1)
            lo += _below(bits, min(j, len(r) - size) - lo + 1)
            removed += r[lo : lo + size]
            if lo:
                dirty[r[lo - 1]] = True
            if lo + size < len(r):
                dirty[r[lo + size]] = True
            self.routes[v] = r[:lo] + r[lo + size :]
            if len(hit) == strings:
                break
        for u in removed:
            where[u] = self.pos[u] = -1
        for v in hit:
            self.refresh(v)
        return removed

    def recreate(self, removed: list[int]) -> None:
        """Insert the removed riders, and any left out, in one of four orders."""
        pool, self.unserved = removed + self.unserved, []
        how = _below(self.rng.getrandbits, 4)
        if how == 3:
            self.regret_insert(pool)
            return
        if how == 0:
            self.rng.shuffle(pool)
        else:
            pool.sort(key=lambda u: self.p.reach[u], reverse=how == 1)
        for u in pool:
            self.insert(u, *self.cheapest(u)[1:])


def _below(bits: Callable[[int], int], n: int) -> int:
    """A number in ``range(n)``, ``n > 0``, drawn from the random bits exactly as
    ``random.Random.randrange(n)`` draws it (``randint(a, b)`` is ``a + _below(bits,
    b - a + 1)``), without its checks of the arguments."""
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def _greedy(p: _Problem) -> _Search:
    """The first start: riders farthest from the start first, each where it
    adds least cost; polished by local search."""
    s = _Search(p, random.Random(0))
    for u in sorted(range(p.n), key=lambda u: -p.reach[u]):
        s.insert(u, *s.cheapest(u)[1:])
    s.local_search()
    return s


def _nearest_first(p: _Problem) -> _Search:
    """The second start: greedy insertion can miss plans that spread riders
    over vehicles it has not used yet; nearest-first filling finds them.
    Filled from each vehicle's start and, apart, from its end (a pickup's
    depot: the order a driver collecting the nearest rider next would
    take); the cheaper fill is polished. Made once per problem (a first
    answer and the full search share it)."""
    if p.second is None:
        fills = []
        for backward in (False, True):
            s = _Search(p, random.Random(0))
            _fill_nearest_first(s, backward)
            fills.append(s)
        s = _cheaper(*fills)
        s.local_search()
        p.second = s
    return p.second


def _cheaper(s: _Search, alt: _Search) -> _Search:
    return alt if alt.cost() < s.cost() - _EPS else s


def _solve(p: _Problem) -> _Search:
    """The search's plan for ``p``."""
    steps = _solving(p)
    next(steps)
    return _finish(steps)


def _finish(steps: Generator[Plan, None, _Search]) -> _Search:
    """Run a search paused at its glance to the end; its plan."""
    try:
        next(steps)
    except StopIteration as done:
        found: _Search = done.value
        return found
    raise AssertionError("a search pauses once")  # pragma: no cover


def _solving(p: _Problem) -> Generator[Plan, None, _Search]:
    """The search, pausing once to yield the best plan so far: after
    ``_GLANCE`` rounds without a new best, or at the end of the rounds if
    sooner. Resumed, it goes on exactly as if it had not paused. A run
    solved exactly (``_Problem.exact``) yields its plan, and ends there."""
    if p.exact:
        s = _exact(p)
        yield s.snapshot()
        return s
    s = _greedy(p)
    best = cur = s.snapshot()
    best_cost = cur_cost = s.cost()
    heat = _HEAT * sum(s.km) / max(1, p.n)
    idle = 0
    rounds = min(_ROUNDS, _ROUNDS_PER_RIDER * p.n)
    patience = min(_IDLE, rounds // 2)
    glanced = False
    for k in range(rounds):
        if idle == _GLANCE and not glanced:
            glanced = True
            yield best
        if idle == patience:
            break
        idle += 1
        s.recreate(s.ruin())
        c = s.cost()
        if c < cur_cost - _EPS:
            s.local_search()
            c = s.cost()
        if c < best_cost - _EPS:
            best = cur = s.snapshot()
            best_cost = cur_cost = c
            idle = 0
        elif c < cur_cost - heat * (1 - k / rounds) * math.log(1.0 - s.rng.random()):
            cur, cur_cost = s.snapshot(), c
        else:
            s.restore(cur)
    if not glanced:
        yield best
    s.restore(best, everything=True)
    s.local_search()
    return _cheaper(s, _nearest_first(p))


# Orders of stops, grown one stop at a time, are numbered and kept in a
# trail: an array that gives, for the order numbered i, at i - 1 (the start,
# no stop, is numbered 0), the number of the order it grew from times
# ``width`` (more than any stop) plus its last stop. An array, not tuples
# pointing at tuples: one object to the collector, whose items it never
# walks, however many orders a memo keeps. An order's *tag* is its number
# times ``width``.
_Trail = tuple[int, "array[int]"]  # width, the trail
# an order while growing: its cost so far, its time of arrival at its last stop, its tag
_Label = tuple[float, float, int]
# an order found: its cost so far, its last stop, its tag
_Order = tuple[float, int, int]
# set of riders (bits) -> cost, the route's order and the trail it is in
_Routes = dict[int, tuple[float, _Order, _Trail]]


def _exact(p: _Problem) -> _Search:
    """The cheapest plan that carries as many riders as there is room for, for
    a run of few riders (``_Problem.exact``).

    Each vehicle's cheapest route over each set of riders comes first
    (:func:`_cheapest_routes`); the vehicles then share the riders out by
    dynamic programming over sets of riders, vehicle by vehicle. Ties go to
    the first found, so the plan is the same every time.
    """
    n, m = p.n, p.m
    cheapest = _cheapest_routes(p)
    size, full, inf = 1 << n, (1 << n) - 1, math.inf
    # the cheapest way for the vehicles so far to carry each set of riders
    cost = [inf] * size
    cost[0] = 0.0
    # per vehicle, for each set: what the vehicles before it carried of the
    # set when it took the rest (-1: it took none, the set is as before)
    came: list[list[int]] = []
    for v in range(m):
        route = [inf] * size
        for sub, (k, _, _) in cheapest[v].items():
            route[sub] = k
        if v == m - 1:
            last = _all_on_the_last(cost, route)
            if last >= 0:
                came.append([-1] * size)
                if last != full:
                    came[v][full] = last
                break  # cost[full] is the answer
        more, took = cost[:], [-1] * size
        for mask, base in enumerate(cost):
            if base == inf:
                continue
            free = sub = full & ~mask
            while sub:
                k = base + route[sub]
                if k < more[mask | sub]:
                    more[mask | sub] = k
                    took[mask | sub] = mask
                sub = (sub - 1) & free
        cost = more
        came.append(took)
    # room first (as the search, which leaves a rider out only for want of it), then cost
    served = min((s for s in range(size) if cost[s] < inf), key=lambda s: (-s.bit_count(), cost[s]))
    stops: list[list[int]] = [[] for _ in range(m)]
    riders = served
    for v in reversed(range(len(came))):
        before = came[v][riders]
        if before >= 0:
            _, order, trail = cheapest[v][riders ^ before]
            stops[v] = _stops(order, trail)
            riders = before
    s = _Search(p, random.Random(0))
    s.restore((stops, [u for u in range(n) if not served >> u & 1]), everything=True)
    return s


def _all_on_the_last(cost: list[float], route: list[float]) -> int:
    """The last vehicle's step of :func:`_exact` when every rider can be
    carried: only the riders the others leave can go on it, one set for
    each, so ``2**n`` sets to try instead of ``3**n``. Sets ``cost[full]``
    as the whole step would (the same sets tried in the same order, the
    first of equal cost kept) and returns the riders the others carry then
    (``full`` itself if the last vehicle takes none); -1, changing nothing,
    if not every rider can be carried: the whole step must be taken."""
    full = len(cost) - 1
    best, pick = cost[full], full
    for mask, base in enumerate(cost):
        k = base + route[full ^ mask]
        if k < best and mask != full:
            best, pick = k, mask
    if best == math.inf:
        return -1
    cost[full] = best
    return pick


def _cheapest_routes(p: _Problem) -> list[_Routes]:
    """Each vehicle's cheapest route over each set of riders it has room for:
    the cheapest order over the set from its start (:func:`_best_orders`,
    shared by vehicles leaving from one place), then on to its end."""
    D = p.D
    cheapest: list[_Routes] = [{} for _ in range(p.m)]
    for (row, times), vs in p.origins.items():
        orders, trail = _best_orders(p, p.start[vs[0]], row, times)
        for mask, chairs, entries in orders:
            others = mask.bit_count() - chairs
            for v in vs:
                if chairs > p.places[v] or others > p.seats[v]:
                    continue
                end = p.end[v]
                best = entries[0]
                total = best[0] + D[best[1]][end]
                for order in entries:
                    k = order[0] + D[order[1]][end]
                    if k < total:
                        total, best = k, order
                cheapest[v][mask] = (total, best, trail)
    return cheapest


def _stops(order: _Order, trail: _Trail) -> list[int]:
    """The stops of ``order``, first to last."""
    width, grown = trail
    stops = []
    tag = order[2]
    while tag:  # the start's tag is 0
        code = grown[tag // width - 1]
        stop = code % width
        stops.append(stop)
        tag = code - stop
    stops.reverse()
    return stops


# per set of riders (bits, in order of size), its wheelchair riders and, for each
# last stop, the cheapest order over the set ending there; the trail they are in
_Orders = tuple[tuple[tuple[int, int, tuple[_Order, ...]], ...], _Trail]


def _best_orders(
    p: _Problem, start: int, row: tuple[float, ...], times: tuple[float, ...]
) -> _Orders:
    """:func:`_grow_orders`, remembered: the riders and the start's distances
    and times to them are all it reads, and a run asks again with the same
    riders as vehicles are added to it or freed by another run of the day."""
    key = (p.riders, p.travel, p.transpose, p.stop, tuple(p.limit), row, times)
    try:
        hash(key)
    except TypeError:  # a travel model that cannot be hashed
        return _grow_orders(p, start)
    return _ORDERS.ask(lambda _: _grow_orders(p, start), key)


def _grow_orders(p: _Problem, start: int) -> _Orders:
    """For each set of riders and last stop, the cheapest order from ``start``
    over the set ending there, as ``(cost so far (km plus lateness), last
    stop, tag)``, in the order found; and the trail the tags are read in.

    Orders grow one stop at a time. For each set and last stop only the
    orders no other order beats on both cost so far and time of arrival are
    kept: whatever follows a beaten order costs the same or more after the
    order that beats it. An order is kept as its tag, its number in the
    trail, which gives the order it grew from and its last stop
    (:func:`_stops` spells it out), so growing one costs the same however
    long it is.
    """
    n, D, T, L, stop, wc = p.n, p.D, p.T, p.limit, p.stop, p.wc
    chairs_in = sum(1 << u for u in range(n) if wc[u])  # the wheelchair riders, as a set
    width = n or 1  # a state is set * width + last stop
    # from each place, each rider's stop: its bit, the leg's km and minutes (with the stop), limit
    legs = {
        a: [(x, 1 << x, D[a][x], stop + T[a][x], L[x]) for x in range(n)]
        for a in (start, *range(n))
    }
    trail = array("q")
    add = trail.append
    tag = width  # the next order's
    found: dict[int, list[_Order]] = {}
    layer: dict[int, list[_Label]] = {0: [(0.0, -stop, 0)]}
    while layer:
        grown: dict[int, list[_Label]] = {}
        for state, labels in layer.items():
            mask = state // width
            for x, bit, leg, drive, limit in legs[state % width if mask else start]:
                if mask & bit:
                    continue
                key = (mask | bit) * width + x
                kept = grown.get(key)
                for cost, clock, parent in labels:
                    t = clock + drive
                    k = cost + leg
                    if t > limit:
                        k += _LATE_COST * (t - limit)
                    if kept is None:
                        kept = grown[key] = [(k, t, tag)]
                        add(parent + x)
                        tag += width
                        continue
                    if len(kept) == 1:  # most often: the same as below, for one kept
                        e = kept[0]
                        if e[0] <= k and e[1] <= t:
                            continue
                        if k <= e[0] and t <= e[1]:
                            kept[0] = (k, t, tag)
                        else:
                            kept.append((k, t, tag))
                        add(parent + x)
                        tag += width
                        continue
                    for e in kept:
                        if e[0] <= k and e[1] <= t:
                            break  # beaten: dropped
                    else:
                        for e in kept:
                            if k <= e[0] and t <= e[1]:  # it beats one: drop those it beats
                                kept[:] = [e for e in kept if not (k <= e[0] and t <= e[1])]
                                break
                        kept.append((k, t, tag))
                        add(parent + x)
                        tag += width
        for state, labels in grown.items():
            k, _, own = labels[0] if len(labels) == 1 else min(labels, key=itemgetter(0))
            found.setdefault(state // width, []).append((k, state % width, own))
        layer = grown
    orders = tuple((mask, (mask & chairs_in).bit_count(), tuple(e)) for mask, e in found.items())
    return orders, (width, trail)


def _first_answer(p: _Problem, plan: Plan) -> _Search:
    """``plan`` (a search's best so far, already polished), or the second
    start if that is cheaper (never, for a run solved exactly)."""
    s = _Search(p, random.Random(0))
    s.restore(plan, everything=True)
    return s if p.exact else _cheaper(s, _nearest_first(p))


def _fill_nearest_first(s: _Search, backward: bool = False) -> None:
    """Each vehicle in turn takes the nearest rider it has room for until
    full: onward from its start, or, ``backward``, back from its end."""
    p, D = s.p, s.p.D
    left = set(range(p.n))
    for v in range(p.m):
        here = p.end[v] if backward else p.start[v]
        while True:
            fits = [
                u
                for u in left
                if ((s.wload[v] < p.places[v]) if p.wc[u] else (s.load[v] < p.seats[v]))
            ]
            if not fits:
                break
            if backward:
                u = min(fits, key=lambda u: (D[u][here], u))
                s.insert(u, v, 0)
            else:
                u = min(fits, key=lambda u: (D[here][u], u))
                s.insert(u, v, len(s.routes[v]))
            left.discard(u)
            here = u
    for u in sorted(left):
        s.insert(u, -1, -1)


Direction = Literal["pickup", "dropoff"]
_Key = tuple[tuple[Rider, ...], tuple[Seats, ...], Travel, bool, float, float]
_GREAT_CIRCLE = GreatCircleTravel()


def plan_routes(
    riders: Iterable[Rider],
    vehicles: Iterable[Seats],
    *,
    direction: Direction,
    travel: Travel = _GREAT_CIRCLE,
    max_ride_minutes: float = 60.0,
    stop_minutes: float = 2.0,
) -> RoutePlan:
    """Plan one direction of a bus run: the shortest total distance that fits.

    ``direction`` is ``"pickup"`` (each vehicle drives start → homes → end and
    a ride lasts until the end) or ``"dropoff"`` (a ride lasts from the
    start). Each rider's stop takes ``stop_minutes``. Riders who find no room
    are named in ``unserved``; riders whose ride is longer than
    ``max_ride_minutes`` in ``over_ride_limit``: both are outcomes, never
    errors. Only vehicles with riders get a route, in the order ``vehicles``
    was given. Raises :class:`InvalidRecordError` for duplicate keys, a bad
    direction or limit, or a travel model giving negative or infinite values.

    Answers are remembered (the call is pure and its arguments frozen): a
    day planned again asks the same questions for its unchanged instances.
    """
    call = (tuple(riders), tuple(vehicles), direction, travel, max_ride_minutes, stop_minutes)
    return _remembering(_planned, _plan_routes, call)


def _remembering(
    cached: Callable[[Any], _T], plain: Callable[..., _T], args: tuple[Any, ...]
) -> _T:
    """``cached(args)``, or ``plain(*args)`` when ``args`` cannot be hashed (a
    travel model that cannot be: nothing is remembered then)."""
    try:
        hash(args)
    except TypeError:
        return plain(*args)
    return cached(args)


_MISSING: Any = object()


class _Memo:
    """Answers by question, the least recently asked dropped beyond ``size``
    (and, with ``weigh``, beyond a total weight of ``most``); safe across
    threads. Unlike ``functools.lru_cache`` its entries can be handed to
    another process and taken from one (``loomcore._parallel``): a day
    planned there is planned again here at the price of one planned here."""

    def __init__(
        self,
        name: str,
        size: int,
        *,
        shared: bool = True,
        weigh: Callable[[Any], int] | None = None,
        most: int = 0,
    ) -> None:
        if weigh is not None and most <= 0:  # it would keep nothing
            raise ValueError(f"memo {name!r} is weighed: it needs a most weight above 0")
        self.name = name
        self.size = size
        self.shared = shared  # handed to other processes (see made())
        self.weigh = weigh  # an answer's weight, if answers differ much in size
        self.most = most  # the most weight kept, with weigh
        self._weight = 0
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def ask(self, compute: Callable[[Any], _T], key: Any) -> _T:
        """The answer to ``key``, by ``compute(key)`` unless remembered."""
        with self._lock:
            found = self._entries.get(key, _MISSING)
            if found is not _MISSING:
                self._entries.move_to_end(key)
                return found  # type: ignore[no-any-return]
        found = compute(key)
        self.put(key, found)
        made = _made
        if made is not None and self.shared:
            made.append((self.name, key, found))
        return found

    def put(self, key: Any, value: Any) -> None:
        """Remember ``value`` as the answer to ``key``; with ``weigh``, an
        answer heavier than ``most`` alone is not remembered (nor anything
        dropped for it)."""
        entries, weigh = self._entries, self.weigh
        weight = 0 if weigh is None else weigh(value)
        if weigh is not None and weight > self.most:
            return
        with self._lock:
            if weigh is not None:
                replaced = entries.get(key, _MISSING)
                if replaced is not _MISSING:
                    self._weight -= weigh(replaced)
                self._weight += weight
            entries[key] = value
            entries.move_to_end(key)
            while len(entries) > self.size or (weigh is not None and self._weight > self.most):
                _, dropped = entries.popitem(last=False)
                if weigh is not None:
                    self._weight -= weigh(dropped)

    def weight(self) -> int:
        """The total weight of the answers kept (0 without ``weigh``)."""
        with self._lock:
            return self._weight

    def items(self) -> list[tuple[Any, Any]]:
        with self._lock:
            return list(self._entries.items())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0


_PLANS = _Memo("plan", _MEMO)  # plan_routes calls and their answers
_SEARCHES = _Memo("search", _MEMO)  # problems in drop-off form and their searches' stops
_FIRST = _Memo("first", _MEMO)  # problems and who rides over the limit in a first answer
# the cheapest orders over every set of riders from one start (see _best_orders):
# asked again as vehicles are added to a run or freed by another, and after an
# edit by the runs of the days it re-plans, whose fleets change as vehicles are
# taken or freed. Kept by their number of orders grown, which their memory
# roughly follows (60-250 bytes an order, the most for runs of few riders):
# 250,000 orders, 35 MB at the very most and about 17 MB in the benchmark's
# organisation, hold about the orders of its 16-week window.
_ORDERS = _Memo("orders", 4096, shared=False, weigh=lambda found: len(found[1][1]), most=250_000)
# each run's quickest legs for surely_over_limit, asked again as vehicles are added
_QUICKEST = _Memo("quickest", 64, shared=False)
_MEMOS = {m.name: m for m in (_PLANS, _SEARCHES, _FIRST)}
# answers worked out since made() began, when a caller keeps count (a worker process)
_made: list[tuple[str, Any, Any]] | None = None

Entry = tuple[str, Any, Any]  # (memo, question, answer)


def remembered() -> list[Entry]:
    """Every remembered routing answer, to hand to another process."""
    return [(m.name, k, v) for m in _MEMOS.values() for k, v in m.items()]


def remember(entries: Iterable[Entry]) -> None:
    """Remember answers worked out elsewhere (by :func:`remembered` or :func:`made`)."""
    for name, key, value in entries:
        _MEMOS[name].put(key, value)


@contextlib.contextmanager
def made() -> Iterator[list[Entry]]:
    """The answers worked out (not found remembered) inside the block.

    For one thread at a time: a worker process planning one day."""
    global _made
    out: list[Entry] = []
    _made = out
    try:
        yield out
    finally:
        _made = None


def _planned(call: tuple[Any, ...]) -> RoutePlan:
    return _PLANS.ask(_plan_call, call)


def _plan_call(call: tuple[Any, ...]) -> RoutePlan:
    return _plan_routes(*call)


def _plan_routes(
    riders: tuple[Rider, ...],
    vehicles: tuple[Seats, ...],
    direction: Direction,
    travel: Travel,
    max_ride_minutes: float,
    stop_minutes: float,
) -> RoutePlan:
    rs, vs, args = _drop_form(riders, vehicles, direction, travel, max_ride_minutes, stop_minutes)
    back = direction == "pickup"
    stops, left_out = _remembering(_remembered, _search, args)
    routes = {v.key: _route(v, stops[i], rs, travel, back, stop_minutes) for i, v in enumerate(vs)}
    over = sorted(
        key
        for r in routes.values()
        for key, ride in zip(r.riders, r.ride_minutes, strict=True)
        if ride > max_ride_minutes + _EPS
    )
    return RoutePlan(
        routes=tuple(routes[v.key] for v in vehicles if routes[v.key].riders),
        unserved=tuple(sorted(rs[u].key for u in left_out)),
        over_ride_limit=tuple(over),
    )


def rough_over_limit(
    riders: Iterable[Rider],
    vehicles: Iterable[Seats],
    *,
    direction: Direction,
    travel: Travel = _GREAT_CIRCLE,
    max_ride_minutes: float = 60.0,
    stop_minutes: float = 2.0,
) -> tuple[str, ...]:
    """Keys of riders over ``max_ride_minutes`` in a first answer, sorted.

    The first answer is the search's best plan once it has gone ten rounds
    without a new best (or the second start's, if cheaper): a few times
    cheaper than the full search of :func:`plan_routes`, and as good at
    telling whether a fleet is short of vehicles for ride limits. A run
    solved exactly (up to eight riders from few starts) has its plan as
    its first answer. The search is kept paused (the four most recent: a
    paused search holds its matrices), so a :func:`plan_routes` call for
    the same problem that follows runs it on from there, at no extra cost
    and to the very plan it would give without the pause. Arguments as for :func:`plan_routes`.
    """
    rs, _, args = _drop_form(
        tuple(riders), tuple(vehicles), direction, travel, max_ride_minutes, stop_minutes
    )
    return tuple(sorted(rs[x].key for x in _remembering(_rough, _glance, args)))


def surely_over_limit(
    riders: Sequence[Rider],
    vehicles: Sequence[Seats],
    among: Iterable[str],
    *,
    direction: Direction,
    travel: Travel = _GREAT_CIRCLE,
    max_ride_minutes: float = 60.0,
    stop_minutes: float = 2.0,
) -> bool:
    """Whether, however ``vehicles`` share and carry ``riders``, one of the
    riders keyed in ``among`` rides longer than ``max_ride_minutes``: so in
    :func:`rough_over_limit`'s answer too, without solving. For vehicles
    with room for every rider (else False).

    A lower bound, cheap to work out. Some vehicle carries at least ``k``,
    the named riders' share per vehicle rounded up; the last of them to
    reach the venue (or to be reached from it) rides through them all, each
    costing its stop and at least its quickest leg in from any other point
    of the run. So the ``k`` quickest of those legs, and ``k - 1`` stops,
    are a ride someone rides at least. False says nothing either way.
    """
    keys = set(among)
    named = [r for r in riders if r.key in keys]
    chairs = sum(1 for r in riders if r.wheelchair)
    if (
        not named
        or not vehicles
        or sum(v.wheelchair_places for v in vehicles) < chairs
        or sum(v.seats for v in vehicles) < len(riders) - chairs
    ):
        return False
    k = -(-len(named) // len(vehicles))
    # where the vehicles run from in drop-off form (a pickup read backwards,
    # where a leg into a rider is the pickup's leg out of them): the venue,
    # for transport's runs
    starts = tuple(dict.fromkeys(v.end if direction == "pickup" else v.start for v in vehicles))
    # the same for every fleet transport tries for a run: worked out once
    args = (tuple(riders), tuple(r.key for r in named), starts, direction, travel)
    legs = _remembering(_quickest, _quickest_legs, args)
    least = (k - 1) * stop_minutes + sum(legs[:k])
    # the bound sums in another order than a route does: a margin for rounding
    return least > max_ride_minutes + _EPS + 1e-6


def _quickest_legs(
    riders: tuple[Rider, ...],
    named: tuple[str, ...],
    starts: tuple[Location, ...],
    direction: Direction,
    travel: Travel,
) -> tuple[float, ...]:
    """For each rider keyed in ``named``, the quickest leg into them (in
    drop-off form) from another rider or one of ``starts``; in ascending order."""
    keys = set(named)
    legs = []
    for r in riders:
        if r.key not in keys:
            continue
        here = r.location
        others = [o.location for o in riders if o is not r] + list(starts)
        if direction == "pickup":
            legs.append(min(float(travel.minutes(here, x)) for x in others))
        else:
            legs.append(min(float(travel.minutes(x, here)) for x in others))
    return tuple(sorted(legs))


def _quickest(args: tuple[Any, ...]) -> tuple[float, ...]:
    return _QUICKEST.ask(lambda key: _quickest_legs(*key), args)


def _glance(
    riders: tuple[Rider, ...],
    vehicles: tuple[Seats, ...],
    travel: Travel,
    transpose: bool,
    max_ride: float,
    stop: float,
) -> tuple[int, ...]:
    """Riders (by index) over ``max_ride`` in the first answer, in drop-off form."""
    return _glanced(_Problem(riders, vehicles, travel, transpose, max_ride, stop))[0]


def _glanced(p: _Problem) -> tuple[tuple[int, ...], Generator[Plan, None, _Search]]:
    """The riders over the limit in the first answer, and the paused search."""
    steps = _solving(p)
    s = _first_answer(p, next(steps))
    over = tuple(
        x
        for route, rides in zip(s.routes, s.arr, strict=True)
        for x, ride in zip(route, rides, strict=True)
        if ride > p.max_ride + _EPS
    )
    return over, steps


_paused: dict[_Key, Generator[Plan, None, _Search]] = {}  # oldest first
_pausing = threading.Lock()


def _rough(key: _Key) -> tuple[int, ...]:
    """``_glance`` remembered, like ``_remembered``; the search is kept paused."""
    return _FIRST.ask(_rough_glance, key)


def _rough_glance(key: _Key) -> tuple[int, ...]:
    over, steps = _glanced(_Problem(*key))
    with _pausing:
        _paused[key] = steps
        while len(_paused) > _PAUSED:
            del _paused[next(iter(_paused))]
    return over


def _forget() -> None:
    """Forget every remembered answer and paused search (for tests)."""
    for memo in (*_MEMOS.values(), _ORDERS, _QUICKEST):
        memo.clear()
    with _pausing:
        _paused.clear()


def _drop_form(
    riders: tuple[Rider, ...],
    vehicles: tuple[Seats, ...],
    direction: Direction,
    travel: Travel,
    max_ride_minutes: float,
    stop_minutes: float,
) -> tuple[tuple[Rider, ...], list[Seats], _Key]:
    """Check a call's arguments; the riders and vehicles in key order, and the
    problem in drop-off form (a pickup's vehicles with their ends swapped)."""
    if direction not in ("pickup", "dropoff"):
        raise InvalidRecordError(f"direction must be 'pickup' or 'dropoff', got {direction!r}")
    if not (max_ride_minutes > 0 and stop_minutes >= 0):
        raise InvalidRecordError("max_ride_minutes must be positive and stop_minutes not negative")
    rs = tuple(sorted(riders, key=lambda r: r.key))
    vs = sorted(vehicles, key=lambda v: v.key)
    for kind, keys in (("rider", [r.key for r in rs]), ("vehicle", [v.key for v in vs])):
        twins = sorted({a for a, b in pairwise(keys) if a == b})
        if twins:
            raise InvalidRecordError(f"duplicate {kind} key {twins[0]!r}", record_id=twins[0])
    back = direction == "pickup"
    drop = tuple(_swapped(v) for v in vs) if back else tuple(vs)
    transpose = back and not getattr(travel, "symmetric", False)
    return rs, vs, (rs, drop, travel, transpose, max_ride_minutes, stop_minutes)


def _swapped(v: Seats) -> Seats:
    """``v`` with its two ends swapped (a pickup's vehicle in drop-off form),
    the same object each time: a day asks again for each vehicle."""
    found = _SWAPPED.get(v)
    if found is None:
        found = keep(_SWAPPED, v, attrs.evolve(v, start=v.end, end=v.start), _MOST_SWAPPED)
    return found


_SWAPPED: dict[Seats, Seats] = {}
_MOST_SWAPPED = 4096


def _search(
    riders: tuple[Rider, ...],
    vehicles: tuple[Seats, ...],
    travel: Travel,
    transpose: bool,
    max_ride: float,
    stop: float,
) -> Found:
    """The stops of each vehicle (by index) and the riders left out, in drop-off form."""
    s = _solve(_Problem(riders, vehicles, travel, transpose, max_ride, stop))
    return tuple(tuple(r) for r in s.routes), tuple(s.unserved)


def _remembered(key: _Key) -> Found:
    """``_search`` remembered: it is pure and its arguments frozen values, so
    remembering it never changes an answer. A search paused by
    :func:`rough_over_limit` is run on instead of started afresh."""
    return _SEARCHES.ask(_run_on_or_search, key)


def _run_on_or_search(key: _Key) -> Found:
    with _pausing:
        steps = _paused.pop(key, None)
    if steps is None:
        return _search(*key)
    s = _finish(steps)
    return tuple(tuple(r) for r in s.routes), tuple(s.unserved)


def _route(
    vehicle: Seats,
    nodes: Sequence[int],
    rs: Sequence[Rider],
    travel: Travel,
    back: bool,
    stop: float,
) -> Route:
    """The route as the caller sees it, figures summed in driving order."""
    if not nodes:
        return Route(vehicle=vehicle.key, riders=(), km=0.0, minutes=0.0, ride_minutes=())
    order = [rs[x] for x in (reversed(nodes) if back else nodes)]  # a pickup was solved backwards
    path = [vehicle.start, *(r.location for r in order), vehicle.end]
    km = sum(float(travel.km(a, b)) for a, b in pairwise(path))
    legs = [float(travel.minutes(a, b)) for a, b in pairwise(path)]
    n = len(nodes)
    if back:  # rider k rides legs k+1.. and waits at every later stop
        rides = [sum(legs[k + 1 :]) + stop * (n - 1 - k) for k in range(n)]
    else:  # rider k rides legs ..k and waits at every earlier stop
        rides = [sum(legs[: k + 1]) + stop * k for k in range(n)]
    return Route(
        vehicle=vehicle.key,
        riders=tuple(r.key for r in order),
        km=km,
        minutes=sum(legs) + stop * n,
        ride_minutes=tuple(rides),
    )
