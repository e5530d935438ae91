"""The scenario document: a whole organisation and its records, as one JSON object.

Theory of operation
-------------------
A scenario is everything a :class:`~loomcore.Loom` needs to plan: settings,
the organisation's reference data (flattened into the document: ``name``,
``venues``, ``participants``, ``staff``, ``vehicles``, ``programs``),
``intents`` and ``exceptions`` (one-offs). :func:`load_scenario` reads it in
three steps, each reporting faults with their place in the document:

1. the envelope: ``format`` must be ``"loomcore.scenario"`` and ``version``
   one this loomcore reads;
2. the shape and values, through the one converter of :mod:`loomcore._serial`;
3. the cross-references: unique ids, every program's venue, every id a record
   names.

Invariants
~~~~~~~~~~
1. A :class:`Scenario` is complete: every record has an id and a
   ``recorded_at``. A record given without an id gets ``intent-NNNN`` or
   ``exception-NNNN`` from its position (0-based) in the list it came in; one
   without ``recorded_at`` gets 00:00 UTC on the earliest ``start`` or
   ``date`` among the scenario's records. Both depend on the document only.
2. Records are kept sorted (intents by ``start`` then id, exceptions by
   ``date`` then id), so the same records in any order give an equal scenario
   and a byte-identical :func:`dump_scenario`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

import attrs
from cattrs.errors import AttributeValidationNote

from ._changes import unknown_references
from ._errors import (
    DocumentError,
    DuplicateIdError,
    InvalidRecordError,
    InvalidWindowError,
    LoomError,
    UnknownVenueError,
)
from ._inputs import _zone
from ._model import Organisation, Participant, Program, Staff, Vehicle, Venue
from ._records import Intent, OneOff, Record
from ._serial import check_envelope, converter, dumps, read_document, structure
from ._service import Loom
from ._store import Store
from ._window import check_weeks

__all__ = [
    "SCENARIO_FORMAT",
    "SCENARIO_VERSION",
    "Scenario",
    "ScenarioSettings",
    "dump_scenario",
    "load_scenario",
    "scenario_loom",
]

SCENARIO_FORMAT = "loomcore.scenario"
#: The newest scenario version this loomcore reads and the one it writes.
SCENARIO_VERSION = 1

_R = TypeVar("_R", Intent, OneOff)


def _timezone(_inst: object, _a: attrs.Attribute[str], value: str) -> None:
    _zone(value)


def _weeks(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    try:
        check_weeks(value)
    except InvalidWindowError as e:
        # The same note cattrs attaches to a field that fails: a document names the field.
        e.add_note(AttributeValidationNote(attribute.name, attribute.name, int))
        raise


def _retention(_inst: object, _a: object, value: int | None) -> None:
    if value is not None and value < 0:
        raise InvalidRecordError(
            f"retention_days must not be negative, got {value}", field="retention_days"
        )


@attrs.frozen(kw_only=True)
class ScenarioSettings:
    """How the scenario's service runs.

    ``timezone`` is the organisation's (IANA name); ``window_weeks`` the
    rolling window (2..16); ``retention_days`` how long days that left the
    window are kept (``None`` keeps them forever).
    """

    timezone: str = attrs.field(default="Australia/Sydney", validator=_timezone)
    window_weeks: int = attrs.field(default=4, validator=_weeks)
    retention_days: int | None = attrs.field(default=90, validator=_retention)


def _numbered(prefix: str, records: Iterable[_R]) -> tuple[_R, ...]:
    return tuple(
        r if r.id else attrs.evolve(r, id=f"{prefix}-{i:04d}") for i, r in enumerate(records)
    )


def _numbered_intents(records: Iterable[Intent]) -> tuple[Intent, ...]:
    return _numbered("intent", records)


def _numbered_exceptions(records: Iterable[OneOff]) -> tuple[OneOff, ...]:
    return _numbered("exception", records)


def _day_of(record: Record) -> date:
    return record.start if isinstance(record, Intent) else record.date


@attrs.frozen(kw_only=True)
class Scenario:
    """A whole organisation and its records: what a scenario document holds.

    Build it directly or with :func:`load_scenario`. Records may be given
    without ``id`` or ``recorded_at``; see the module's invariants for the
    values they get. Raises :class:`DuplicateIdError` for a record id used
    twice and an :class:`UnknownIdError` subclass for a record naming an
    unknown program, participant, staff member, vehicle or venue.
    """

    format: str = SCENARIO_FORMAT
    version: int = SCENARIO_VERSION
    settings: ScenarioSettings = attrs.field(factory=ScenarioSettings)
    organisation: Organisation = attrs.field(factory=Organisation)
    intents: tuple[Intent, ...] = attrs.field(default=(), converter=_numbered_intents)
    exceptions: tuple[OneOff, ...] = attrs.field(default=(), converter=_numbered_exceptions)

    def __attrs_post_init__(self) -> None:
        if self.format != SCENARIO_FORMAT or self.version != SCENARIO_VERSION:
            raise InvalidRecordError(
                f"a Scenario is {SCENARIO_FORMAT!r} version {SCENARIO_VERSION}, "
                f"got {self.format!r} version {self.version!r}"
            )
        for _path, error in _record_faults(self.organisation, self.intents, self.exceptions):
            raise error
        days = [*(r.start for r in self.intents), *(r.date for r in self.exceptions)]
        if days:
            at = datetime.combine(min(days), time(0), tzinfo=UTC)
            complete = [
                r if r.recorded_at else attrs.evolve(r, recorded_at=at) for r in self.intents
            ]
            done = [
                r if r.recorded_at else attrs.evolve(r, recorded_at=at) for r in self.exceptions
            ]
            # A frozen class may set its own fields while it is being built.
            object.__setattr__(self, "intents", tuple(sorted(complete, key=_order)))
            object.__setattr__(self, "exceptions", tuple(sorted(done, key=_order)))

    def records(self) -> tuple[Record, ...]:
        """Every intent, then every exception (one-off)."""
        return (*self.intents, *self.exceptions)


def _order(record: Record) -> tuple[date, str]:
    return (_day_of(record), record.id)


# --------------------------------------------------------------------------- checks


def _record_faults(
    org: Organisation, intents: Sequence[Intent], exceptions: Sequence[OneOff]
) -> Iterator[tuple[str, LoomError]]:
    """``(path, error)`` for every duplicate record id or unknown reference, in order."""
    seen: set[str] = set()
    records: list[tuple[str, Record]] = [
        *((f"intents[{i}]", r) for i, r in enumerate(intents)),
        *((f"exceptions[{i}]", r) for i, r in enumerate(exceptions)),
    ]
    for path, record in records:
        if record.id and record.id in seen:
            yield f"{path}.id", DuplicateIdError("record", record.id)
        seen.add(record.id)
        for attribute, error in unknown_references(org, record):
            yield f"{path}.{attribute}", error


_COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("venues", "venue"),
    ("participants", "participant"),
    ("staff", "staff member"),
    ("vehicles", "vehicle"),
    ("programs", "program"),
)


def _organisation_faults(doc: _Document) -> Iterator[tuple[str, LoomError]]:
    for name, kind in _COLLECTIONS:
        seen: set[str] = set()
        for i, item in enumerate(getattr(doc, name)):
            if item.id in seen:
                yield f"{name}[{i}].id", DuplicateIdError(kind, item.id)
            seen.add(item.id)
    venues = {v.id for v in doc.venues}
    for i, program in enumerate(doc.programs):
        if program.venue_id not in venues:
            yield f"programs[{i}].venue_id", UnknownVenueError(program.venue_id)


# --------------------------------------------------------------------------- the document


@attrs.frozen(kw_only=True)
class _Document:
    """The scenario as it is written: the organisation flattened into the top level."""

    format: str
    version: int
    settings: ScenarioSettings = attrs.field(factory=ScenarioSettings)
    name: str = ""
    registration_number: str = ""
    abn: str = ""
    venues: tuple[Venue, ...] = ()
    participants: tuple[Participant, ...] = ()
    staff: tuple[Staff, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    programs: tuple[Program, ...] = ()
    intents: tuple[Intent, ...] = ()
    exceptions: tuple[OneOff, ...] = ()


def _first_fault(faults: Iterable[tuple[str, LoomError]]) -> None:
    for path, error in faults:
        raise DocumentError(str(error), path) from error


def load_scenario(source: str | bytes | os.PathLike[str] | Mapping[str, Any]) -> Scenario:
    """Read a scenario document from a file path, JSON text or an already-parsed mapping.

    Raises :class:`DocumentError` (a :class:`LoomError` and a
    :class:`ValueError`) naming where the fault lies, e.g.
    ``programs[3].start_time``, for anything malformed: an unknown format or
    a newer version, a missing field, a wrong type, a bad date, an unknown
    kind or weekday, a program whose venue does not exist, a duplicate id,
    or a record naming something unknown. A file that cannot be read raises
    :class:`OSError`.
    """
    data = read_document(source)
    check_envelope(data, SCENARIO_FORMAT, SCENARIO_VERSION)
    doc = structure(data, _Document)
    _first_fault(_organisation_faults(doc))
    organisation = Organisation(
        name=doc.name,
        registration_number=doc.registration_number,
        abn=doc.abn,
        venues=doc.venues,
        participants=doc.participants,
        staff=doc.staff,
        vehicles=doc.vehicles,
        programs=doc.programs,
    )
    intents = _numbered_intents(doc.intents)
    exceptions = _numbered_exceptions(doc.exceptions)
    _first_fault(_record_faults(organisation, intents, exceptions))
    return Scenario(
        settings=doc.settings, organisation=organisation, intents=intents, exceptions=exceptions
    )


def dump_scenario(scenario: Scenario) -> str:
    """The scenario document as JSON text, byte-identical for equal scenarios."""
    org = scenario.organisation
    doc = _Document(
        format=scenario.format,
        version=scenario.version,
        settings=scenario.settings,
        name=org.name,
        registration_number=org.registration_number,
        abn=org.abn,
        venues=org.venues,
        participants=org.participants,
        staff=org.staff,
        vehicles=org.vehicles,
        programs=org.programs,
        intents=scenario.intents,
        exceptions=scenario.exceptions,
    )
    return dumps(converter.unstructure(doc))


def scenario_loom(
    scenario: Scenario, *, clock: Callable[[], datetime], store: Store | None = None
) -> Loom:
    """A :class:`Loom` loaded with the scenario, its window planned at ``clock()``.

    The service takes its timezone and retention from the scenario's
    settings and plans ``settings.window_weeks`` weeks. ``store`` defaults to
    a new :class:`MemoryStore`. Raises what :meth:`Loom.load` raises, e.g.
    :class:`NoInstanceError` for an exception dated when its program has no
    instance.
    """
    settings = scenario.settings
    loom = Loom(
        store,
        timezone=settings.timezone,
        clock=clock,
        retention_days=settings.retention_days,
    )
    loom.load(scenario.organisation, scenario.records(), weeks=settings.window_weeks)
    return loom
