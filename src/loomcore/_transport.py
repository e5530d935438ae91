"""Vehicles and bus runs for a day's instances: ``plan_bus_runs``.

Theory of operation
-------------------
For each instance with transport, in order of start time:

1. The riders are the attending participants who need transport and have
   a pickup location (others are named in a ``no-pickup-location``
   warning).
2. Vehicles: pinned vehicles first, then every other vehicle in a stable,
   date-independent order (a hash of program and vehicle), skipping
   vehicles under maintenance (:class:`VehicleMaintenance`) and vehicles
   whose runs that day would overlap. Vehicles are added until their seats
   (the driver's seat excluded) and wheelchair places carry every rider.
3. :func:`loomcore._routing.plan_routes` plans the pickup runs (depot →
   homes → venue) and the drop-off runs (venue → homes → depot) with the
   pluggable travel model. Pickup runs arrive ``arrive_before_minutes``
   before the start; drop-off runs leave ``depart_after_minutes`` after the
   end. Every stop gets a time.
4. Drivers come from :func:`loomcore._staffing.assign_drivers`.

Riders who cannot be carried, rides over the limit, and runs without a
driver are warnings, never errors. The result depends only on the inputs
and the date.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import chain, islice, pairwise
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from ._inputs import PlanInputs, TransportSettings, remembered
from ._model import Location, Vehicle
from ._routing import Rider, RoutePlan, Seats, plan_routes, rough_over_limit, surely_over_limit
from ._staffing import ranked
from ._tables import keep

if TYPE_CHECKING:  # typing only: _plan imports this module
    from ._plan import Instance

__all__ = ["BusRun", "Stop", "TransportSettings", "plan_bus_runs"]

_T = TypeVar("_T")


@attrs.frozen(kw_only=True, order=True)
class Stop:
    """One stop of a run: ``kind`` is ``depot``, ``pickup``, ``venue`` or ``dropoff``."""

    at: datetime
    kind: str
    participant_id: str = ""
    location: Location | None = None


@attrs.frozen(kw_only=True)
class BusRun:
    """A vehicle's run to (``pickup``) or from (``dropoff``) an instance.

    ``driver_id`` is empty when no driver could be found (a ``no-driver``
    warning says so). ``km`` is the distance by the travel model.
    """

    id: str
    instance_id: str
    direction: str
    vehicle_id: str
    driver_id: str
    stops: tuple[Stop, ...]
    km: float

    @property
    def departs(self) -> datetime:
        """When the vehicle leaves its first stop."""
        return self.stops[0].at

    @property
    def arrives(self) -> datetime:
        """When the vehicle reaches its last stop."""
        return self.stops[-1].at

    @property
    def riders(self) -> tuple[str, ...]:
        """Participants carried, in stop order."""
        return tuple(s.participant_id for s in self.stops if s.participant_id)


Note = tuple[str, str, str]  # (code, message, participant id)
Direction = Literal["pickup", "dropoff"]


class _Fleet:
    """Which vehicles are free when, on the day."""

    def __init__(self, inputs: PlanInputs, day: date) -> None:
        self.inputs = inputs
        self.day = day
        self.busy: dict[str, list[tuple[datetime, datetime]]] = {}
        self._usable: frozenset[str] | None = None

    def usable(self, vehicle: Vehicle) -> bool:
        usable = self._usable
        if usable is None:
            usable = self._usable = _usable(self.inputs, self.day)
        return vehicle.id in usable

    def free(self, vehicle_id: str, spans: Sequence[tuple[datetime, datetime]]) -> bool:
        booked = self.busy.get(vehicle_id)
        return not booked or not any(s < e2 and s2 < e for s, e in spans for s2, e2 in booked)

    def book(self, vehicle_id: str, start: datetime, end: datetime) -> None:
        self.busy.setdefault(vehicle_id, []).append((start, end))


def plan_bus_runs(
    inputs: PlanInputs,
    day: date,
    instances: Sequence[Instance],
    settings: TransportSettings,
) -> tuple[dict[str, tuple[BusRun, ...]], dict[str, tuple[Note, ...]]]:
    """Bus runs for each instance of ``day`` that has transport, and warnings.

    Returns ``(runs by instance id, warnings by instance id)``; runs have no
    driver yet (see :func:`loomcore._staffing.assign_drivers`).
    """
    fleet = _Fleet(inputs, day)
    memo = inputs._day_memo(day)
    runs: dict[str, tuple[BusRun, ...]] = {}
    notes: dict[str, tuple[Note, ...]] = {}
    # the instances served last time, in order, each with the runs it was
    # given: while this day's instances begin as those did, each given the
    # very same runs (another thread planning other inputs may replace an
    # instance's entry), the fleet stands as it stood then
    before = memo.get(("runs order", day), ())
    served: list[tuple[str, Any]] = []
    for inst in sorted(instances, key=lambda i: (i.start, i.id)):
        if not inst.transport or inst.status == "cancelled":
            continue
        # Everything the instance's runs depend on beyond the organisation
        # and the instance's id; of the vehicles free for it, only those it
        # took (a later vehicle it never reached changes nothing). The one
        # entry kept per instance is used again only if made from all of it.
        # The free vehicles are looked at only as far as that needs. Who
        # attends, as the allocations tell it: the very tuple of (mostly
        # shared) allocations compares faster than the ids made from it.
        asked = (
            inst.allocations,
            inst.venue_id,
            inst.start,
            inst.end,
            inst.pinned_vehicles,
            settings,
        )
        key = ("runs", day, inst.id)
        found = memo.get(key)
        if found is not None and found[0] != asked:
            found = None
        at = len(served)
        if (
            found is not None
            and at < len(before)
            and before[at][0] == inst.id
            and before[at][1] is found[2]
        ):
            made = found[2]  # the same vehicles free as then: the same runs
            served.append((inst.id, made))
            runs[inst.id], notes[inst.id] = made
            for run in made[0]:
                fleet.book(run.vehicle_id, run.departs, run.arrives)
            continue
        before = ()  # from here on the fleet may differ
        free = _free_vehicles(inputs, inst, fleet, settings)
        head = list(islice(free, len(found[1][0]) + 1)) if found is not None else []
        if found is not None and _takes_the_same(found[1], head):
            made = found[2]
        else:
            spare = head + list(free)
            left = list(spare)
            made = _instance_runs(inputs, inst, left, settings)
            taken = [v.id for v in spare[: len(spare) - len(left)]]
            memo[key] = (asked, (taken, not left), made)
        served.append((inst.id, made))
        runs[inst.id], notes[inst.id] = made
        for run in runs[inst.id]:
            fleet.book(run.vehicle_id, run.departs, run.arrives)
    memo[("runs order", day)] = tuple(served)
    return runs, notes


def _usable(inputs: PlanInputs, day: date) -> frozenset[str]:
    """Ids of the vehicles in service on ``day`` (not under maintenance, with
    a spare seat), remembered for the day (maintenance records belong to no
    program: a change to them drops the day-wide memo's days from its start)."""
    return remembered(
        inputs._day_memo(day),
        ("usable", day),
        (),  # reads nothing beyond the organisation and the records the memo is kept with
        lambda: frozenset(
            v.id
            for v in inputs.organisation.vehicles
            if v.seats > 1 and not inputs.value(("maintenance", "", v.id), day, False)
        ),
    )


def _takes_the_same(taken: tuple[list[str], bool], spare: list[Vehicle]) -> bool:
    """Whether runs that took the vehicles ``taken`` (ids, and whether they
    were all there were) from the front of a list of free vehicles would
    take the same from ``spare``: the same at its front, and no more behind
    them if none were left then (with one more, it might have been taken)."""
    ids, all_of_them = taken
    if len(spare) < len(ids) or (all_of_them and len(spare) > len(ids)):
        return False
    return all(v.id == i for v, i in zip(spare, ids, strict=False))


def _instance_runs(
    inputs: PlanInputs, inst: Instance, spare: list[Vehicle], settings: TransportSettings
) -> tuple[tuple[BusRun, ...], tuple[Note, ...]]:
    """The instance's runs on ``spare`` (the vehicles free for it, in order
    of preference), and warnings. Takes the vehicles it uses from the front
    of ``spare``, and no others: the runs depend on those alone (and on
    whether ``spare`` ran out)."""
    notes: list[Note] = []
    riders: list[Rider] = []
    for pid in inst.attending:
        person = inputs.participants[pid]
        if not person.needs_transport:
            continue
        if person.pickup is None:
            notes.append(("no-pickup-location", f"{inst.id}: {pid!r} has no pickup location", pid))
            continue
        riders.append(Rider(key=pid, location=person.pickup, wheelchair=person.wheelchair))
    venue = inputs.venues.get(inst.venue_id)
    if not riders:
        return (), tuple(notes)
    if venue is None or venue.location is None:
        notes.append(
            ("no-venue-location", f"{inst.id}: venue {inst.venue_id!r} has no location", "")
        )
        return (), tuple(notes)
    vehicles = _enough_for(riders, spare)
    if not vehicles:
        for r in riders:
            notes.append(("seat-shortage", f"{inst.id}: no vehicle free for {r.key!r}", r.key))
        return (), tuple(notes)
    # Rides too long: add a vehicle (never refuse), while one could help: a
    # rider who lives more than the limit from the venue never will. The
    # route search's first answer says whether to add one (a full search for
    # each fleet size tried cost more than half of all routing); the full
    # search on the fleet so chosen has the last word, and adds more if it
    # still finds such a rider. Where a lower bound on the rides already
    # says the first answer would have one, no first answer is asked for.
    added = 0
    while (
        spare
        and added < _MAX_EXTRA_VEHICLES
        and (
            _surely_helped(riders, vehicles, venue.location, settings)
            or _helped(
                _rough("pickup", riders, vehicles, venue.location, settings),
                riders,
                venue.location,
                settings,
            )
        )
    ):
        vehicles.append(spare.pop(0))
        added += 1
    pickup = _route("pickup", riders, vehicles, venue.location, settings)
    while (
        spare
        and added < _MAX_EXTRA_VEHICLES
        and _helped(pickup.over_ride_limit, riders, venue.location, settings)
    ):
        vehicles.append(spare.pop(0))
        added += 1
        pickup = _route("pickup", riders, vehicles, venue.location, settings)
    dropoff = _route("dropoff", riders, vehicles, venue.location, settings)
    notes += _route_notes(inst, pickup)
    out = _runs(inst, "pickup", riders, pickup, venue.location, vehicles, settings)
    out += _runs(inst, "dropoff", riders, dropoff, venue.location, vehicles, settings)
    return tuple(out), tuple(notes)


def _spans(inst: Instance, settings: TransportSettings) -> list[tuple[datetime, datetime]]:
    reach = timedelta(minutes=settings.max_ride_minutes + settings.arrive_before_minutes + 30)
    back = timedelta(minutes=settings.max_ride_minutes + settings.depart_after_minutes + 30)
    before = _clock_times(inst.start, (-reach, timedelta()))[0]
    after = _clock_times(inst.end, (timedelta(), back))[1]
    return [(before, inst.start), (inst.end, after)]


_MAX_EXTRA_VEHICLES = 3


def _surely_helped(
    riders: Sequence[Rider],
    vehicles: Sequence[Vehicle],
    venue: Location,
    settings: TransportSettings,
) -> bool:
    """Whether the vehicles are sure to leave a rider over the ride limit
    who could ride within it on a vehicle of their own: what
    :func:`_helped` would find in the first answer, told by a bound,
    without a search (:func:`surely_over_limit`)."""
    limit = settings.max_ride_minutes
    could = [r.key for r in riders if settings.travel.minutes(r.location, venue) <= limit]
    return surely_over_limit(
        riders,
        _seats("pickup", vehicles, venue),
        could,
        direction="pickup",
        travel=settings.travel,
        max_ride_minutes=limit,
        stop_minutes=settings.stop_minutes,
    )


def _helped(
    over_limit: Sequence[str], riders: Sequence[Rider], venue: Location, settings: TransportSettings
) -> bool:
    """Whether a rider over the ride limit could ride within it on a vehicle of their own."""
    over = set(over_limit)
    limit = settings.max_ride_minutes
    return any(
        r.key in over and settings.travel.minutes(r.location, venue) <= limit for r in riders
    )


def _free_vehicles(
    inputs: PlanInputs, inst: Instance, fleet: _Fleet, settings: TransportSettings
) -> Iterator[Vehicle]:
    """Vehicles that can serve the instance, pinned first, then in stable
    order; each looked at only when the one before has been taken."""
    pinned = inst.pinned_vehicles
    spans = _spans(inst, settings)
    for v in chain(
        (inputs.vehicles[v] for v in pinned if v in inputs.vehicles),
        (v for v in ranked((inst.program_id,), inputs.organisation.vehicles) if v.id not in pinned),
    ):
        if fleet.usable(v) and fleet.free(v.id, spans):
            yield v


def _enough_for(riders: Sequence[Rider], spare: list[Vehicle]) -> list[Vehicle]:
    """Take vehicles off ``spare`` (in order) until every rider has a place."""
    chosen: list[Vehicle] = []
    need_wc = sum(1 for r in riders if r.wheelchair)
    need_seats = len(riders) - need_wc
    seats = wheelchairs = 0
    while spare and (seats < need_seats or wheelchairs < need_wc):
        vehicle = spare.pop(0)
        chosen.append(vehicle)
        seats += vehicle.seats - 1
        wheelchairs += vehicle.wheelchair_places
    return chosen


def _route(
    direction: Direction,
    riders: Sequence[Rider],
    vehicles: Sequence[Vehicle],
    venue: Location,
    settings: TransportSettings,
) -> RoutePlan:
    return _ask(plan_routes, direction, riders, vehicles, venue, settings)


def _rough(
    direction: Direction,
    riders: Sequence[Rider],
    vehicles: Sequence[Vehicle],
    venue: Location,
    settings: TransportSettings,
) -> tuple[str, ...]:
    """Riders over the ride limit in the search's first answer (:func:`rough_over_limit`)."""
    return _ask(rough_over_limit, direction, riders, vehicles, venue, settings)


def _ask(
    question: Callable[..., _T],
    direction: Direction,
    riders: Sequence[Rider],
    vehicles: Sequence[Vehicle],
    venue: Location,
    settings: TransportSettings,
) -> _T:
    """``question`` (``plan_routes`` or ``rough_over_limit``) about these
    riders on these vehicles, with the settings' travel model and limits."""
    return question(
        riders,
        _seats(direction, vehicles, venue),
        direction=direction,
        travel=settings.travel,
        max_ride_minutes=settings.max_ride_minutes,
        stop_minutes=settings.stop_minutes,
    )


def _seats(direction: Direction, vehicles: Sequence[Vehicle], venue: Location) -> tuple[Seats, ...]:
    """Each vehicle as the router sees it on a run of ``direction`` to or from ``venue``."""
    return tuple(
        _seat(direction, v.id, v.seats, v.wheelchair_places, v.depot, venue) for v in vehicles
    )


def _seat(
    direction: Direction,
    key: str,
    seats: int,
    places: int,
    depot: Location | None,
    venue: Location,
) -> Seats:
    """One vehicle's :class:`Seats`, the same object each time it is asked
    for (a day asks for each vehicle again for every run it may serve, and
    the router's memos keep them as keys)."""
    ask = (direction, key, seats, places, depot, venue)
    found = _SEATS.get(ask)
    if found is None:
        home = depot or venue
        made = Seats(
            key=key,
            seats=seats - 1,
            wheelchair_places=places,
            start=home if direction == "pickup" else venue,
            end=venue if direction == "pickup" else home,
        )
        found = keep(_SEATS, ask, made, _MOST_SEATS)
    return found


_SEATS: dict[tuple[Any, ...], Seats] = {}
_MOST_SEATS = 4096


def _route_notes(inst: Instance, plan: RoutePlan) -> list[Note]:
    notes: list[Note] = [
        ("seat-shortage", f"{inst.id}: no seat for {pid!r}", pid) for pid in plan.unserved
    ]
    notes += [
        ("ride-too-long", f"{inst.id}: {pid!r} rides longer than the limit", pid)
        for pid in plan.over_ride_limit
    ]
    return notes


def _runs(
    inst: Instance,
    direction: str,
    riders: Sequence[Rider],
    plan: RoutePlan,
    venue: Location,
    vehicles: Sequence[Vehicle],
    settings: TransportSettings,
) -> list[BusRun]:
    by_id = {v.id: v for v in vehicles}
    where = {r.key: r.location for r in riders}
    out = []
    for n, route in enumerate(r for r in plan.routes if r.riders):
        vehicle = by_id[route.vehicle]
        depot = vehicle.depot or venue
        stops = _timed_stops(inst, direction, route.riders, depot, venue, where, settings)
        run = BusRun(
            id=f"{inst.id}/{direction}/{n + 1}",
            instance_id=inst.id,
            direction=direction,
            vehicle_id=vehicle.id,
            driver_id="",
            stops=stops,
            km=round(route.km, 3),
        )
        out.append(run)
    return out


def _timed_stops(
    inst: Instance,
    direction: str,
    riders: Sequence[str],
    depot: Location,
    venue: Location,
    where: dict[str, Location],
    settings: TransportSettings,
) -> tuple[Stop, ...]:
    travel = settings.travel
    # whole minutes, rounded up: times a driver can read, never optimistic
    dwell = timedelta(minutes=math.ceil(settings.stop_minutes))
    kind = "pickup" if direction == "pickup" else "dropoff"
    points = [depot, *(where[p] for p in riders), venue]
    if direction == "dropoff":
        points = [venue, *(where[p] for p in riders), depot]
    legs = [timedelta(minutes=math.ceil(travel.minutes(a, b))) for a, b in pairwise(points)]
    total = sum(legs, timedelta()) + dwell * len(riders)
    # each stop's time as real time from the instance's start or end
    if direction == "pickup":
        anchor = inst.start
        t = -timedelta(minutes=settings.arrive_before_minutes) - total
    else:
        anchor = inst.end
        t = timedelta(minutes=settings.depart_after_minutes)
    times = [t]
    for leg in legs[:-1]:
        t += leg
        times.append(t)
        t += dwell
    times.append(t + legs[-1])
    at = _clock_times(anchor, times)
    first, last = ("depot", "venue") if direction == "pickup" else ("venue", "depot")
    return (
        Stop(at=at[0], kind=first, location=points[0]),
        *(
            Stop(at=t, kind=kind, participant_id=pid, location=where[pid])
            for t, pid in zip(at[1:-1], riders, strict=True)
        ),
        Stop(at=at[-1], kind=last, location=points[-1]),
    )


def _clock_times(anchor: datetime, offsets: Sequence[timedelta]) -> list[datetime]:
    """``anchor`` plus each of ``offsets`` of real time, as local clock times.

    Aware datetimes add as clock times: across a change of the clocks (a
    DST day) that is off by the change, so there the sums are made in UTC.
    """
    first, last = anchor + offsets[0], anchor + offsets[-1]
    if first.utcoffset() == anchor.utcoffset() == last.utcoffset():
        return [anchor + o for o in offsets]
    zone, start = anchor.tzinfo, anchor.astimezone(UTC)
    return [(start + o).astimezone(zone) for o in offsets]
