"""The export document: planned days of a date range, with everything in them.

Theory of operation
-------------------
An :class:`ExportDocument` is what host apps read and analysts diff: every
day of a range with its instances, allocations, staff and transport demand,
warnings, provenance and origin. It is built from stored plans
(:func:`export_window`) or from plans computed on the fly
(:func:`export_plans`, e.g. from :meth:`Loom.preview`).

Invariants
~~~~~~~~~~
1. The document depends on its inputs only: it carries no "generated at"
   time, so equal plans give byte-identical :func:`dump_export` text and
   two exports diff to exactly what changed.
2. ``load_export(dump_export(doc)) == doc``; aware date-times keep their
   instant and offset.
3. Days are sorted by date, unique, and lie within ``[start, end]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import attrs

from ._bands import Band
from ._errors import DayOutsideWindowError, DocumentError, InvalidDateRangeError, InvalidRecordError
from ._inputs import _zone
from ._plan import DayPlan
from ._serial import check_envelope, converter, dumps, read_document, structure
from ._service import Loom

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ExportDocument",
    "dump_export",
    "export_plans",
    "export_window",
    "load_export",
]

EXPORT_FORMAT = "loomcore.export"
#: The newest export version this loomcore reads and the one it writes.
EXPORT_VERSION = 1


def _by_date(days: Iterable[DayPlan]) -> tuple[DayPlan, ...]:
    return tuple(sorted(days, key=lambda d: d.date))


@attrs.frozen(kw_only=True)
class ExportDocument:
    """Planned days from ``start`` to ``end`` (inclusive) in ``timezone``.

    ``generated_from`` names what the plans came from (the organisation's
    name by default); it is never a wall-clock time, so the document stays
    byte-stable.
    """

    format: str = EXPORT_FORMAT
    version: int = EXPORT_VERSION
    timezone: str = attrs.field(validator=lambda _i, _a, value: _zone(value))
    start: date
    end: date
    generated_from: str = ""
    days: tuple[DayPlan, ...] = attrs.field(default=(), converter=_by_date)

    def __attrs_post_init__(self) -> None:
        if self.format != EXPORT_FORMAT or self.version != EXPORT_VERSION:
            raise InvalidRecordError(
                f"an ExportDocument is {EXPORT_FORMAT!r} version {EXPORT_VERSION}, "
                f"got {self.format!r} version {self.version!r}"
            )
        if self.end < self.start:
            raise InvalidDateRangeError(self.start, self.end, "export")
        previous: date | None = None
        for i, day in enumerate(self.days):
            if day.date == previous or not self.start <= day.date <= self.end:
                raise InvalidRecordError(
                    f"day {day.date.isoformat()} is repeated or outside "
                    f"{self.start.isoformat()}..{self.end.isoformat()}",
                    field=f"days[{i}]",
                )
            previous = day.date


def export_window(loom: Loom, start: date, end: date) -> ExportDocument:
    """The stored plans of ``[start, end]`` as an export document.

    Every day of the range must be planned (in the window or kept in
    history); raises :class:`DayOutsideWindowError` naming the first that is
    not, and :class:`InvalidDateRangeError` when ``end`` is before ``start``.
    For days beyond the window use ``export_plans(loom.preview(start, end), …)``.
    """
    if end < start:
        raise InvalidDateRangeError(start, end, "export range")
    stored = {p.date: p.plan for p in loom.store.planned_days(start, end)}
    day = start
    while day <= end:
        if day not in stored:
            raise DayOutsideWindowError(day, "is not planned; preview it or widen the window")
        day += timedelta(days=1)
    return ExportDocument(
        timezone=loom.timezone,
        start=start,
        end=end,
        generated_from=loom.store.organisation().name,
        days=stored.values(),
    )


def export_plans(
    plans: Iterable[DayPlan], timezone: str, *, generated_from: str = ""
) -> ExportDocument:
    """Day plans (e.g. from :meth:`Loom.preview`) as an export document.

    The range runs from the earliest to the latest plan's date. Raises
    :class:`DocumentError` when there is no plan and
    :class:`InvalidRecordError` when two plans share a date.
    """
    days = _by_date(plans)
    if not days:
        raise DocumentError("an export needs at least one day plan", "days")
    return ExportDocument(
        timezone=timezone,
        start=days[0].date,
        end=days[-1].date,
        generated_from=generated_from,
        days=days,
    )


def dump_export(doc: ExportDocument) -> str:
    """The export document as JSON text, byte-identical for equal documents."""
    return dumps(converter.unstructure(doc))


def load_export(source: str | bytes | os.PathLike[str] | Mapping[str, Any]) -> ExportDocument:
    """Read an export document from a file path, JSON text or a parsed mapping.

    Raises :class:`DocumentError` naming the fault's path for an unknown
    format, a newer version or any malformed content; :class:`OSError` for a
    file that cannot be read.
    """
    data = read_document(source)
    check_envelope(data, EXPORT_FORMAT, EXPORT_VERSION)
    doc = structure(data, ExportDocument)
    faults = list(_faults(doc))
    if faults:
        path, message = faults[0]
        more = f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""
        raise DocumentError(f"{message}{more}", path)
    return doc


#: The words an export's fields take, as the planner writes them.
_WORDS: dict[str, frozenset[str]] = {
    "status": frozenset({"scheduled", "cancelled"}),
    "origin": frozenset({"generated", "intent", "exception"}),
    "allocation status": frozenset({"attending", "cancelled"}),
    "role": frozenset({"lead", "support", "driver"}),
    "direction": frozenset({"pickup", "dropoff"}),
    "kind": frozenset({"depot", "pickup", "venue", "dropoff"}),
    "band": frozenset(b.value for b in Band),
}


def _faults(doc: ExportDocument) -> Iterable[tuple[str, str]]:
    """``(path, message)`` for every value an export cannot hold, in document order."""

    def check(
        path: str, field: str, value: str, words: str | None = None
    ) -> Iterable[tuple[str, str]]:
        allowed = _WORDS[words or field]
        if value not in allowed:
            expected = ", ".join(repr(w) for w in sorted(allowed))
            yield f"{path}.{field}", f"unknown {field} {value!r}; expected one of {expected}"

    for d, day in enumerate(doc.days):
        for i, inst in enumerate(day.instances):
            at = f"days[{d}].instances[{i}]"
            if inst.date != day.date:
                yield f"{at}.date", f"instance {inst.id} on {inst.date} is listed under {day.date}"
            yield from check(at, "status", inst.status)
            yield from check(at, "origin", inst.origin)
            for a, allocation in enumerate(inst.allocations):
                where = f"{at}.allocations[{a}]"
                yield from check(where, "status", allocation.status, "allocation status")
                yield from check(where, "origin", allocation.origin)
            for s, shift in enumerate(inst.shifts):
                yield from check(f"{at}.shifts[{s}]", "role", shift.role)
            for r, run in enumerate(inst.bus_runs):
                yield from check(f"{at}.bus_runs[{r}]", "direction", run.direction)
                if not run.km >= 0:
                    yield f"{at}.bus_runs[{r}].km", f"a run's km must not be negative, got {run.km}"
                for s, stop in enumerate(run.stops):
                    yield from check(f"{at}.bus_runs[{r}].stops[{s}]", "kind", stop.kind)
            for b, line in enumerate(inst.billing_lines):
                yield from check(f"{at}.billing_lines[{b}]", "band", line.band)
