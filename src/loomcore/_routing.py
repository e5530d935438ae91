"""Bus routing: which vehicle carries which riders, and in what order.

Theory of operation
-------------------
One call plans one direction of one bus run: a *pickup* (each vehicle leaves
its depot, collects riders at home and ends at the venue) or a *drop-off*
(each vehicle leaves the venue, takes riders home and ends at its depot).
The objective is the total distance driven; seats, wheelchair places and the
longest allowed ride constrain it.

Both directions are solved as one problem, the drop-off: a vehicle leaves its
start, visits riders and finishes at its end, and a rider's ride runs from
the start to their stop. A pickup read backwards is exactly that: the solver
transposes the travel matrices, swaps each vehicle's two ends, solves, and
reverses the routes. Distances along a reversed route over the transposed
matrix are those of the forward route, so asymmetric road networks are
honoured.

Times: a rider's ride runs from the moment the vehicle leaves the venue (or
their home) to the moment it reaches their home (or the venue); it includes
the dwell at every other stop in between but not at the rider's own. Each
rider is one stop with one dwell.

The search:

1. Greedy insertion builds a first plan: riders farthest from the start go
   first, each to its cheapest place that keeps every rule.
2. Local search takes it to a local optimum over granular neighbourhoods
   (each rider's nearest riders): relocate, swap, or-opt of two or three
   stops, 2-opt inside a route and tail exchange (2-opt*) between routes.
   Distance deltas are computed in O(1) and only improving candidates are
   checked in full against capacities and ride limits.
3. A fixed number of ruin-and-recreate rounds (string removal around a
   seed rider, greedy reinsertion in a random order) under a simulated
   annealing acceptance, seeded with ``random.Random(0)``; each new best is
   polished by local search.

Invariants:

1. Every rider is on exactly one route or in ``unserved``.
2. No route carries more riders than seats, or more wheelchair riders than
   wheelchair places; a wheelchair rider never takes a seat.
3. A rider rides longer than the limit only when the search found no plan
   that avoids it (or their direct ride alone exceeds it); they are named in
   ``over_ride_limit``. Riders are left out only when no vehicle has room.
4. Same inputs, same plan: riders and vehicles are handled in key order,
   every tie goes to the first in that order, the random stream is seeded
   and the work budget is a fixed number of rounds, never a clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Literal, Protocol

import attrs

from ._errors import InvalidRecordError
from ._model import Location

__all__ = ["GreatCircleTravel", "Rider", "Route", "RoutePlan", "Seats", "Travel", "plan_routes"]

EARTH_RADIUS_KM = 6371.0088
_EPS = 1e-9
_UNSERVED_COST = 1e7  # per rider left out: outweighs any distance
_EXCESS_COST = 1e4  # per minute over a ride limit: outweighs any plausible detour
_NEAR = 10  # riders in each granular neighbourhood
_ROUNDS = 200  # ruin-and-recreate rounds per call
_STRINGS = 3  # most routes one ruin touches
_STRING_LEN = 8  # longest string of stops one ruin removes from a route
_POLISH = 0.0  # polish a recreated plan by local search when this close to the best
_EXCHANGE = 1
_V1 = 0
_HEAT = 3.0  # starting temperature, as a share of the mean distance per rider


class Travel(Protocol):
    """Distances and driving times between two points; need not be symmetric."""

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
    driven at a constant speed."""

    road_factor: float = attrs.field(default=1.3, validator=_positive)
    speed_kmh: float = attrs.field(default=35.0, validator=_positive)

    def km(self, a: Location, b: Location) -> float:
        """Haversine distance times ``road_factor``."""
        p1, p2 = math.radians(a.lat), math.radians(b.lat)
        h = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2
        )
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))) * self.road_factor

    def minutes(self, a: Location, b: Location) -> float:
        """``km`` at ``speed_kmh``."""
        return self.km(a, b) / self.speed_kmh * 60.0


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


@attrs.frozen(kw_only=True)
class Rider:
    """A participant to carry: ``location`` is their home."""

    key: str = attrs.field(validator=_key)
    location: Location
    wheelchair: bool = False


@attrs.frozen(kw_only=True)
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
    """One call's data in drop-off form. Riders are 0..n-1; vehicle v starts
    at node n + 2v and ends at node n + 2v + 1."""

    def __init__(
        self,
        riders: Sequence[Rider],
        vehicles: Sequence[Seats],
        travel: Travel,
        reverse: bool,
        max_ride: float,
        stop: float,
    ) -> None:
        self.n, self.m, self.stop = len(riders), len(vehicles), stop
        ends = [(v.end, v.start) if reverse else (v.start, v.end) for v in vehicles]
        points = [r.location for r in riders] + [x for pair in ends for x in pair]
        self.D, self.T = _matrices(points, travel, reverse)
        self.Dt = [list(col) for col in zip(*self.D, strict=True)]  # Dt[b][a] == D[a][b]
        self.start = [self.n + 2 * v for v in range(self.m)]
        self.end = [self.n + 2 * v + 1 for v in range(self.m)]
        self.wc = [int(r.wheelchair) for r in riders]
        self.seats = [v.seats for v in vehicles]
        self.places = [v.wheelchair_places for v in vehicles]
        self.limit = [max(max_ride, self._direct(u)) for u in range(self.n)]
        self.reach = [min(self.D[s][u] for s in self.start) for u in range(self.n)]
        self.near = [
            sorted((w for w in range(self.n) if w != u), key=lambda w: self.D[u][w] + self.D[w][u])
            for u in range(self.n)
        ]
        self.close = [near[:_NEAR] for near in self.near]

    def has_room(self, v: int, u: int) -> bool:
        """Whether vehicle ``v`` could carry rider ``u`` at all."""
        return (self.places if self.wc[u] else self.seats)[v] > 0

    def _direct(self, u: int) -> float:
        # A rider whose direct ride alone exceeds the limit gets that as theirs.
        rides = [self.T[self.start[v]][u] for v in range(self.m) if self.has_room(v, u)]
        return min(rides, default=0.0)


def _matrices(
    points: list[Location], travel: Travel, transpose: bool
) -> tuple[list[list[float]], list[list[float]]]:
    """Distance and time matrices over ``points``, each pair asked of ``travel`` once."""
    index: dict[Location, int] = {}
    for p in points:
        index.setdefault(p, len(index))
    places = list(index)
    km = [[float(travel.km(a, b)) for b in places] for a in places]
    mins = [[float(travel.minutes(a, b)) for b in places] for a in places]
    for row in km + mins:
        if not all(0.0 <= x < math.inf for x in row):
            raise InvalidRecordError("the travel model returned a negative or non-finite value")
    ids = [index[p] for p in points]
    if transpose:
        return [[km[j][i] for j in ids] for i in ids], [[mins[j][i] for j in ids] for i in ids]
    return [[km[i][j] for j in ids] for i in ids], [[mins[i][j] for j in ids] for i in ids]


class _Search:
    """A plan under construction: routes per vehicle plus cached figures."""

    def __init__(self, p: _Problem, rng: random.Random) -> None:
        self.p, self.rng = p, rng
        self.routes: list[list[int]] = [[] for _ in range(p.m)]
        self.unserved: list[int] = []
        self.where = [-1] * p.n  # vehicle carrying each rider, -1 for none
        self.pos = [-1] * p.n
        self.km = [0.0] * p.m
        self.excess = [0.0] * p.m
        self.arr: list[list[float]] = [[] for _ in range(p.m)]
        self.slack: list[list[float]] = [[math.inf] for _ in range(p.m)]
        self.late: list[list[int]] = [[0] for _ in range(p.m)]
        self.cum: list[list[float]] = [[] for _ in range(p.m)]
        self.load = [0] * p.m
        self.wload = [0] * p.m
        self.touched: set[int] = set()  # routes changed since the last snapshot
        self.dirty = [True] * p.n  # riders local search should look at again

    # -- bookkeeping -------------------------------------------------------

    def refresh(self, v: int) -> None:
        """Recompute route ``v``'s cached figures after a change."""
        p, r, where, pos = self.p, self.routes[v], self.where, self.pos
        D, T, L, stop, wc = p.D, p.T, p.limit, p.stop, p.wc
        prev, t, km, ex, chairs = p.start[v], -stop, 0.0, 0.0, 0
        arr, cum = [0.0] * len(r), [0.0] * len(r)
        for i, x in enumerate(r):
            km += D[prev][x]
            t += stop + T[prev][x]
            arr[i], cum[i], where[x], pos[x], prev = t, km, v, i, x
            chairs += wc[x]
            if t > L[x]:
                ex += t - L[x]
        # From each stop on: how many riders are late, and the least spare
        # time of those who are not (what a later arrival may use up).
        slack, late = [math.inf] * (len(r) + 1), [0] * (len(r) + 1)
        for i in range(len(r) - 1, -1, -1):
            spare = L[r[i]] - arr[i]
            if spare < 0:
                slack[i], late[i] = slack[i + 1], late[i + 1] + 1
            else:
                slack[i], late[i] = min(slack[i + 1], spare), late[i + 1]
        self.km[v] = km + D[prev][p.end[v]] if r else 0.0
        self.excess[v], self.arr[v], self.cum[v] = ex, arr, cum
        self.slack[v], self.late[v] = slack, late
        self.wload[v], self.load[v] = chairs, len(r) - chairs
        self.touched.add(v)

    def cost(self) -> float:
        return sum(self.km) + _EXCESS_COST * sum(self.excess) + _UNSERVED_COST * len(self.unserved)

    def snapshot(self) -> tuple[list[list[int]], list[int]]:
        self.touched = set()
        return [list(r) for r in self.routes], list(self.unserved)

    def restore(self, snap: tuple[list[list[int]], list[int]]) -> None:
        """Go back to ``snap``, rebuilding only the routes changed since the
        last snapshot or restore."""
        changed, self.touched = self.touched, set()
        self.unserved = list(snap[1])
        for u in self.unserved:
            self.where[u] = self.pos[u] = -1
        for v in changed:
            self.routes[v] = list(snap[0][v])
            self.refresh(v)
        self.touched = set()

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
        return km + D[prev][p.end[v]] + _EXCESS_COST * ex

    def apply(self, changes: list[tuple[int, list[int]]]) -> bool:
        """Make the changes if they fit and lower the cost; say whether made."""
        old = new = 0.0
        for v, r in changes:
            c = self.route_cost(v, r)
            if c is None:
                return False
            old += self.km[v] + _EXCESS_COST * self.excess[v]
            new += c
        if new >= old - _EPS:
            return False
        for v, r in changes:
            self.routes[v] = r
            self.refresh(v)
        self.mark(v for v, _ in changes)
        return True

    # -- insertion -----------------------------------------------------------

    def insert(self, u: int) -> None:
        """Put ``u`` where it adds least lateness, then least distance."""
        v, i = self._cheapest(u)
        if v < 0:
            self.unserved.append(u)
            self.where[u] = self.pos[u] = -1
            return
        self.routes[v].insert(i, u)
        self.refresh(v)

    def _cheapest(self, u: int) -> tuple[int, int]:
        p = self.p
        D, T, stop, lim = p.D, p.T, p.stop, p.limit[u]
        best, bv, bi = math.inf, -1, -1
        for v in range(p.m):
            if (self.wload[v] >= p.places[v]) if p.wc[u] else (self.load[v] >= p.seats[v]):
                continue
            r, arr, slack, late = self.routes[v], self.arr[v], self.slack[v], self.late[v]
            prev, depart, k = p.start[v], 0.0, len(r)
            for i in range(k + 1):
                nxt = r[i] if i < k else p.end[v]
                t = depart + T[prev][u]
                c = D[prev][u] + D[u][nxt] - (D[prev][nxt] if k else 0.0)
                if t > lim:
                    c += _EXCESS_COST * (t - lim)
                if i < k and c < best:
                    shift = t + stop + T[u][nxt] - arr[i]
                    if shift < 0:
                        c += _EXCESS_COST * self._lateness(v, i, shift)
                    else:  # exact unless an on-time rider becomes late
                        c += _EXCESS_COST * (shift * late[i] + max(0.0, shift - slack[i]))
                        if shift > slack[i] and c < best:
                            c += _EXCESS_COST * (
                                self._lateness(v, i, shift) - shift * late[i] - shift + slack[i]
                            )
                if c < best:
                    best, bv, bi = c, v, i
                if i < k:
                    depart = arr[i] + stop
                prev = nxt
        return bv, bi

    def _lateness(self, v: int, i: int, shift: float) -> float:
        """Extra lateness of route ``v``'s stops from ``i`` on if reached ``shift`` later."""
        r, arr, L = self.routes[v], self.arr[v], self.p.limit
        return sum(
            max(0.0, arr[j] + shift - L[r[j]]) - max(0.0, arr[j] - L[r[j]])
            for j in range(i, len(r))
        )

    # -- local search --------------------------------------------------------

    def local_search(self) -> None:
        """First-improvement descent until no move lowers the cost.

        Only riders on routes changed since they were last examined are
        examined again (route-level "don't look" marks)."""
        dirty = self.dirty
        again = True
        while again:
            again = False
            for u in range(self.p.n):
                if dirty[u]:
                    dirty[u] = False
                    if self.where[u] >= 0 and self._improve(u):
                        again = True

    def mark(self, vehicles: Iterable[int]) -> None:
        """Have local search look again at every rider on these routes."""
        for v in vehicles:
            for x in self.routes[v]:
                self.dirty[x] = True

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
            self._relocate(u, a, i, gain)
            or self._swap(u, a, i, pu, su)
            or self._cross(u, a, i)
            or self._or_opt(u, a, i)
            or (_EXCHANGE and self._exchange(u, a, i, gain))
        )

    def _relocate(self, u: int, a: int, i: int, gain: float) -> bool:
        p, D = self.p, self.p.D
        A = self.routes[a]
        rest = A[:i] + A[i + 1 :]
        for w in p.close[u]:
            b = self.where[w]
            if b < 0:
                continue
            B, j = self.routes[b], self.pos[w]
            pw, sw = self._around(b, j)
            for prev, nxt, k in ((w, sw, j + 1), (pw, w, j)):
                if u in (prev, nxt) or D[prev][u] + D[u][nxt] - D[prev][nxt] >= gain - _EPS:
                    continue
                if a == b:
                    k -= k > i
                    if self.apply([(a, [*rest[:k], u, *rest[k:]])]):
                        return True
                elif self.apply([(a, rest), (b, [*B[:k], u, *B[k:]])]):
                    return True
        for v in range(p.m):
            s, e = p.start[v], p.end[v]
            empty = not self.routes[v] and v != a
            if empty and D[s][u] + D[u][e] < gain - _EPS and self.apply([(a, rest), (v, [u])]):
                return True
        return False

    def _swap(self, u: int, a: int, i: int, pu: int, su: int) -> bool:
        D = self.p.D
        for w in self.p.close[u]:
            b, j = self.where[w], self.pos[w]
            if b < 0 or (a == b and abs(i - j) < 2):
                continue
            pw, sw = self._around(b, j)
            delta = (
                D[pu][w] + D[w][su] - D[pu][u] - D[u][su]
                + D[pw][u] + D[u][sw] - D[pw][w] - D[w][sw]
            )  # fmt: skip
            if delta < -_EPS:
                A2 = list(self.routes[a])
                A2[i] = w
                B2 = A2 if a == b else list(self.routes[b])
                B2[j] = u
                if self.apply([(a, A2)] if a == b else [(a, A2), (b, B2)]):
                    return True
        return False

    def _slot(self, v: int, r: list[int], x: int) -> tuple[float, int]:
        """Cheapest place for ``x`` in route ``r`` of vehicle ``v``, by distance only."""
        p, D = self.p, self.p.D
        if not r:
            return D[p.start[v]][x] + D[x][p.end[v]], 0
        Dx = D[x]
        prev, best, at = p.start[v], math.inf, 0
        for k, nxt in enumerate([*r, p.end[v]]):
            c = D[prev][x] + Dx[nxt] - D[prev][nxt]
            if c < best:
                best, at = c, k
            prev = nxt
        return best, at

    def _exchange(self, u: int, a: int, i: int, gain: float) -> bool:
        """Swap ``u`` with a neighbour on another route, each to its best place."""
        p, D = self.p, self.p.D
        A = self.routes[a]
        rest_a = A[:i] + A[i + 1 :]
        for w in p.close[u]:
            b, j = self.where[w], self.pos[w]
            if b < 0 or b == a:
                continue
            if p.wc[u] != p.wc[w]:
                continue
            B = self.routes[b]
            pw, sw = self._around(b, j)
            gain_b = D[pw][w] + D[w][sw] - (D[pw][sw] if len(B) > 1 else 0.0)
            rest_b = B[:j] + B[j + 1 :]
            ca, ka = self._slot(a, rest_a, w)
            if ca - gain - gain_b >= -_EPS:
                continue
            cb, kb = self._slot(b, rest_b, u)
            if ca + cb - gain - gain_b < -_EPS and self.apply(
                [(a, [*rest_a[:ka], w, *rest_a[ka:]]), (b, [*rest_b[:kb], u, *rest_b[kb:]])]
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

    def _cross(self, u: int, a: int, i: int) -> bool:
        """2-opt* between routes, 2-opt within one: make ``u`` adjacent to a neighbour."""
        D, A = self.p.D, self.routes[a]
        for w in self.p.close[u]:
            b, j = self.where[w], self.pos[w]
            if b < 0:
                continue
            B = self.routes[b]
            if a == b:
                lo, hi = min(i, j), max(i, j)
                if hi - lo < 2:
                    continue
                x, y = A[lo], A[hi]
                _, sy = self._around(a, hi)
                if D[x][y] + D[A[lo + 1]][sy] - D[x][A[lo + 1]] - D[y][sy] < -_EPS and self.apply(
                    [(a, [*A[: lo + 1], *A[hi:lo:-1], *A[hi + 1 :]])]
                ):
                    return True
                continue
            old = self.km[a] + self.km[b]
            ca, cb = self.cum[a], self.cum[b]
            for h, t in ((i + 1, j), (i, j + 1)):  # u then w's tail; w then u's tail
                new = self._join(a, h, B, cb, t) + self._join(b, t, A, ca, h)
                if new < old - _EPS and self.apply([(a, A[:h] + B[t:]), (b, B[:t] + A[h:])]):
                    return True
        return False

    def _or_opt(self, u: int, a: int, i: int) -> bool:
        """Move the two or three stops starting at ``u``, either way round."""
        p, D, A, where = self.p, self.p.D, self.routes[a], self.where
        pu = A[i - 1] if i else p.start[a]
        for size in (2, 3):
            if i + size > len(A):
                break
            seg = A[i : i + size]
            first, last = seg[0], seg[-1]
            sl = A[i + size] if i + size < len(A) else p.end[a]
            gain = D[pu][first] + D[last][sl] - (D[pu][sl] if len(A) > size else 0.0) - _EPS
            rest = A[:i] + A[i + size :]
            to_first, to_last, from_first, from_last = p.Dt[first], p.Dt[last], D[first], D[last]
            for w in p.close[u]:
                b = where[w]
                if b < 0 or w in seg:
                    continue
                B = rest if a == b else self.routes[b]
                j = B.index(w) if a == b else self.pos[w]
                start, end = p.start[b], p.end[b]
                for k in (j, j + 1):
                    prev = B[k - 1] if k else start
                    nxt = B[k] if k < len(B) else end
                    base = D[prev][nxt] if B else 0.0
                    if to_first[prev] + from_last[nxt] - base < gain:
                        part = seg
                    elif to_last[prev] + from_first[nxt] - base < gain:
                        part = seg[::-1]
                    else:
                        continue
                    B2 = [*B[:k], *part, *B[k:]]
                    if self.apply([(a, B2)] if a == b else [(a, rest), (b, B2)]):
                        return True
        return False

    # -- ruin and recreate ---------------------------------------------------

    def ruin(self) -> list[int]:
        """Remove a few strings of consecutive stops from routes near a random rider."""
        p, rng = self.p, self.rng
        served = [u for u in range(p.n) if self.where[u] >= 0]
        if not served:
            return []
        seed = served[rng.randrange(len(served))]
        strings = rng.randint(1, min(_STRINGS, sum(1 for r in self.routes if r)))
        longest = max(1, min(_STRING_LEN, len(served) // 3))
        hit: list[int] = []
        removed: list[int] = []
        for w in [seed, *p.near[seed]]:
            v = self.where[w]
            if len(hit) == strings:
                break
            if v < 0 or v in hit:
                continue
            hit.append(v)
            r, j = self.routes[v], self.pos[w]
            size = rng.randint(1, min(longest, len(r)))
            lo = rng.randint(max(0, j - size + 1), min(j, len(r) - size))
            removed += r[lo : lo + size]
            self.routes[v] = r[:lo] + r[lo + size :]
        for u in removed:
            self.where[u] = self.pos[u] = -1
        for v in hit:
            self.refresh(v)
        return removed

    def recreate(self, removed: list[int]) -> None:
        """Insert the removed riders, and any left out, in a random kind of order."""
        pool, self.unserved = removed + self.unserved, []
        how = self.rng.randrange(3)
        if how == 0:
            self.rng.shuffle(pool)
        else:
            pool.sort(key=lambda u: self.p.reach[u], reverse=how == 1)
        for u in pool:
            self.insert(u)


def _solve(p: _Problem) -> _Search:
    rng = random.Random(0)
    s = _Search(p, rng)
    for u in sorted(range(p.n), key=lambda u: -p.reach[u]):
        s.insert(u)
    s.local_search()
    best = cur = s.snapshot()
    best_cost = cur_cost = s.cost()
    hot = _HEAT * sum(s.km) / max(1, p.n)
    for k in range(_ROUNDS):
        s.recreate(s.ruin())
        s.mark(s.touched)
        c = s.cost()
        if c < (cur_cost if _V1 else best_cost) * (1 + _POLISH):
            s.local_search()
            c = s.cost()
        if c < best_cost - _EPS:
            best, best_cost = s.snapshot(), c
            cur, cur_cost = best, best_cost
        elif c < cur_cost - hot * (1 - k / _ROUNDS) * math.log(1.0 - rng.random()):
            cur, cur_cost = s.snapshot(), c
        else:
            s.restore(cur)
    s.touched = set(range(p.m))
    s.restore(best)
    s.mark(range(p.m))
    s.local_search()
    return s


Direction = Literal["pickup", "dropoff"]
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

    ``direction`` is ``"pickup"`` (vehicles go start → homes → end, a ride
    lasts until the end) or ``"dropoff"`` (a ride lasts from the start).
    Riders who find no room are named in ``unserved``; riders whose ride is
    longer than ``max_ride_minutes`` in ``over_ride_limit``. Only vehicles
    with riders get a route, listed in the order ``vehicles`` was given.
    Raises :class:`InvalidRecordError` for duplicate keys or bad settings.
    """
    if direction not in ("pickup", "dropoff"):
        raise InvalidRecordError(f"direction must be 'pickup' or 'dropoff', got {direction!r}")
    if not (max_ride_minutes > 0 and stop_minutes >= 0):
        raise InvalidRecordError("max_ride_minutes must be positive and stop_minutes not negative")
    rs = sorted(riders, key=lambda r: r.key)
    given = list(vehicles)
    vs = sorted(given, key=lambda v: v.key)
    for kind, keys in (("rider", [r.key for r in rs]), ("vehicle", [v.key for v in vs])):
        twins = sorted({a for a, b in pairwise(keys) if a == b})
        if twins:
            raise InvalidRecordError(f"duplicate {kind} key {twins[0]!r}", record_id=twins[0])
    reverse = direction == "pickup"
    p = _Problem(rs, vs, travel, reverse, max_ride_minutes, stop_minutes)
    s = _solve(p)
    routes = {vs[v].key: _route(p, vs[v].key, v, s.routes[v], rs, reverse) for v in range(p.m)}
    over = sorted(
        key
        for r in routes.values()
        for key, ride in zip(r.riders, r.ride_minutes, strict=True)
        if ride > max_ride_minutes + _EPS
    )
    return RoutePlan(
        routes=tuple(routes[v.key] for v in given if routes[v.key].riders),
        unserved=tuple(sorted(rs[u].key for u in s.unserved)),
        over_ride_limit=tuple(over),
    )


def _route(
    p: _Problem, key: str, v: int, nodes: list[int], rs: list[Rider], reverse: bool
) -> Route:
    """The route as the caller sees it, figures summed in driving order."""
    if reverse:
        path = [p.end[v], *reversed(nodes), p.start[v]]
        km = sum(p.D[b][a] for a, b in pairwise(path))
        legs = [p.T[b][a] for a, b in pairwise(path)]
    else:
        path = [p.start[v], *nodes, p.end[v]]
        km = sum(p.D[a][b] for a, b in pairwise(path))
        legs = [p.T[a][b] for a, b in pairwise(path)]
    if not nodes:
        return Route(vehicle=key, riders=(), km=0.0, minutes=0.0, ride_minutes=())
    n, stop = len(nodes), p.stop
    if reverse:  # rider k rides legs k+1.. and waits at every later stop
        rides = [sum(legs[k + 1 :]) + stop * (n - 1 - k) for k in range(n)]
    else:  # rider k rides legs ..k and waits at every earlier stop
        rides = [sum(legs[: k + 1]) + stop * k for k in range(n)]
    return Route(
        vehicle=key,
        riders=tuple(rs[x].key for x in path[1:-1]),
        km=km,
        minutes=sum(legs) + stop * n,
        ride_minutes=tuple(rides),
    )
