"""The one cattrs converter preset behind both JSON documents.

Theory of operation
-------------------
:func:`make_converter` builds a :class:`cattrs.Converter` that turns
loomcore's value objects into plain JSON-ready data and back. Every encoding
decision lives here, and its docstring is their list. :func:`structure` is the
single choke point where anything that goes wrong while reading a document
(cattrs validation groups, loomcore's own errors raised by attrs validators,
bad values caught by the hooks below) becomes a :class:`~loomcore.DocumentError`
whose ``path`` says where in the document the fault lies.

Invariants
~~~~~~~~~~
1. ``structure(converter.unstructure(x), type(x)) == x`` for every value the
   documents hold.
2. :func:`dumps` is byte-identical for equal inputs: keys sorted, fixed
   separators and indentation, sets written sorted, a trailing newline.
"""

from __future__ import annotations

import json
import math
import os
import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from ._billing import BillingSettings, ItemChoice
from ._errors import DocumentError, InvalidRecordError, LoomError
from ._model import (
    Availability,
    Location,
    Participant,
    Program,
    Staff,
    StaffingRule,
    Vehicle,
    Venue,
)
from ._records import (
    Absence,
    Cancellation,
    Enrolment,
    ExtraAttendance,
    Intent,
    OneDayChange,
    OneOff,
    ProgramChange,
    Reschedule,
    StaffLeave,
    StaffPin,
    StaffReturn,
    StaffSwap,
    StaffUnpin,
    VehicleMaintenance,
    VehiclePin,
    VehicleReturn,
    VehicleUnpin,
    Withdrawal,
)
from ._recurrence import Fortnightly, RRule, Weekday, Weekly

__all__ = [
    "INTENT_KINDS",
    "ONE_OFF_KINDS",
    "RECURRENCE_KINDS",
    "check_envelope",
    "converter",
    "document_error",
    "dumps",
    "make_converter",
    "parse_json",
    "read_document",
    "structure",
]

_T = TypeVar("_T")

#: The ``"kind"`` tag of each recurrence, intent and one-off (exception) class.
#: The docs are drawn from these tables.
RECURRENCE_KINDS: dict[str, type[Any]] = {
    "weekly": Weekly,
    "fortnightly": Fortnightly,
    "rrule": RRule,
}
INTENT_KINDS: dict[str, type[Intent]] = {
    "enrolment": Enrolment,
    "withdrawal": Withdrawal,
    "program_change": ProgramChange,
    "staff_pin": StaffPin,
    "staff_unpin": StaffUnpin,
    "vehicle_pin": VehiclePin,
    "vehicle_unpin": VehicleUnpin,
    "staff_leave": StaffLeave,
    "staff_return": StaffReturn,
    "vehicle_maintenance": VehicleMaintenance,
    "vehicle_return": VehicleReturn,
}
ONE_OFF_KINDS: dict[str, type[OneOff]] = {
    "cancellation": Cancellation,
    "absence": Absence,
    "one_day_change": OneDayChange,
    "extra_attendance": ExtraAttendance,
    "reschedule": Reschedule,
    "staff_swap": StaffSwap,
}

#: Reference data and records are written without the fields that hold their
#: default; everything else (plans, document envelopes) is written whole.
_CONCISE: tuple[type[Any], ...] = (
    Location,
    Venue,
    Participant,
    Staff,
    Availability,
    Vehicle,
    StaffingRule,
    BillingSettings,
    ItemChoice,
    Program,
)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2})?")
_WEEKDAY_NAMES = {d.name: d for d in Weekday} | {
    n: Weekday(i)
    for i, n in enumerate(
        ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
    )
}


# --------------------------------------------------------------------------- scalars


def _show(value: object) -> str:
    """``repr(value)``, shortened so a message never quotes half a document."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _date(value: object, _t: object = None) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a date as YYYY-MM-DD, got {_show(value)}")


def _time(value: object, _t: object = None) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and _TIME.fullmatch(value):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a local time as HH:MM, got {_show(value)}")


def _unstructure_time(value: time) -> str:
    if value.microsecond:
        return value.isoformat()
    return value.isoformat("seconds" if value.second else "minutes")


def _datetime(value: object, _t: object = None) -> datetime:
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _DATE.match(value) and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise ValueError(f"expected an ISO 8601 date and time with offset, got {_show(value)}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"date and time {_show(value)} has no UTC offset")
    return parsed


def _decimal(value: object, _t: object = None) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            result = Decimal(repr(value) if isinstance(value, float) else value)
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {_show(value)}") from None
    else:
        raise ValueError(f"expected a decimal number, got {_show(value)}")
    if not result.is_finite():
        raise ValueError(f"expected a finite decimal number, got {_show(value)}")
    return result


def _unstructure_decimal(value: Decimal) -> str:
    # Equal decimals ("1.50", "1.5") are written the same: normalised, never as an exponent.
    return format(value.normalize(), "f")


def _weekday(value: object, _t: object = None) -> Weekday:
    if isinstance(value, Weekday):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return Weekday(value)
    if isinstance(value, str) and value.upper() in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES[value.upper()]
    raise ValueError(f"unknown weekday {_show(value)}; expected one of MO, TU, WE, TH, FR, SA, SU")


def _strict(kind: type[Any], label: str) -> Callable[[object, object], Any]:
    def hook(value: object, _t: object) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {label}, got {_show(value)}")
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind) or (kind is float and not math.isfinite(value)):
            raise TypeError(f"expected {label}, got {_show(value)}")
        return value

    return hook


# --------------------------------------------------------------------------- tagged unions


def _members(t: object) -> frozenset[object]:
    if get_origin(t) in (Union, types.UnionType):
        return frozenset(a for a in get_args(t) if a is not type(None))
    return frozenset({t})


def _register_tagged(
    conv: cattrs.Converter, family: str, kinds: Mapping[str, type[Any]], bases: tuple[Any, ...]
) -> None:
    """Structure and unstructure one family of classes with a ``"kind"`` tag."""
    tag_of = {cls: kind for kind, cls in kinds.items()}
    structure_fns = {cls: make_dict_structure_fn(cls, conv) for cls in tag_of}
    unstructure_fns = {
        cls: make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True) for cls in tag_of
    }
    accepted = {frozenset(tag_of), *(frozenset({b}) for b in bases), *(_members(c) for c in tag_of)}

    def structure_hook(value: object, t: object) -> Any:
        if value is None and type(None) in get_args(t):
            return None
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object for a {family}, got {_show(value)}")
        wanted = tuple(w for w in _members(t) if isinstance(w, type))
        kind = value.get("kind")
        cls: type[Any] | None = None
        if kind is None and len(wanted) == 1 and wanted[0] in tag_of:
            cls = wanted[0]
        elif kind is None:
            raise InvalidRecordError(f"a {family} needs a kind", field="kind")
        elif isinstance(kind, str):
            cls = kinds.get(kind)
        if cls is None or not issubclass(cls, wanted):
            raise InvalidRecordError(
                f"unknown {family} kind {_show(kind)}; expected one of {', '.join(kinds)}",
                field="kind",
            )
        return structure_fns[cls]({k: v for k, v in value.items() if k != "kind"}, cls)

    def unstructure_hook(value: Any) -> dict[str, Any]:
        cls = type(value)
        return {"kind": tag_of[cls], **unstructure_fns[cls](value)}

    conv.register_structure_hook_func(lambda t: _members(t) in accepted, structure_hook)
    classes = (*tag_of, *bases)
    conv.register_unstructure_hook_func(lambda t: _is_subclass(t, classes), unstructure_hook)


def _is_subclass(t: object, classes: tuple[type[Any], ...]) -> bool:
    try:
        return isinstance(t, type) and issubclass(t, classes)
    except TypeError:  # generic aliases such as list[int]
        return False


def _is_collection(t: object) -> bool:
    args = get_args(t)
    if get_origin(t) is tuple:
        return len(args) == 2 and args[1] is Ellipsis
    return get_origin(t) in (frozenset, set) and len(args) == 1


def _collection(t: Any, conv: cattrs.BaseConverter) -> Callable[[object, object], Any]:
    """Lists only: a mapping or a string where a list belongs is an error, not iterated."""
    build: Callable[[list[Any]], Any] = tuple if get_origin(t) is tuple else frozenset
    items = list_structure_factory(t, conv)

    def hook(value: object, _t: object) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {_show(value)}")
        return build(items(value, _t))

    return hook


def _sorted_set(conv: cattrs.Converter) -> Callable[[Any], list[Any]]:
    return lambda value: [conv.unstructure(v) for v in sorted(value)]


def _is_set(t: object) -> bool:
    return get_origin(t) in (frozenset, set) or t in (frozenset, set)


# --------------------------------------------------------------------------- the preset


def make_converter() -> cattrs.Converter:
    """A new converter with loomcore's encoding decisions.

    Every decision, for both documents:

    * **dates** are ISO 8601 strings ``YYYY-MM-DD``, nothing else (no week
      dates, no compact ``YYYYMMDD``);
    * **local times** are ``HH:MM`` (``HH:MM:SS`` when the seconds are not
      zero); ``HH:MM:SS`` is accepted on input;
    * **aware date-times** (``recorded_at``, instance ``start``/``end``) are
      ISO 8601 with their UTC offset, e.g. ``2026-10-01T09:30:00+10:00``;
      input without an offset is refused; ``Z`` is accepted for UTC;
    * **decimals** (``supervision_weight``) are strings, normalised so equal
      values are written alike (``"1.5"``); numbers are accepted on input;
    * **weekdays** are two-letter names ``"MO"`` … ``"SU"``; on input also
      the numbers 0–6 (Monday = 0) and full English names, any case;
    * **sets** (a recurrence's ``weekdays``) are lists sorted in their natural
      order (weekdays Monday first); **tuples** are lists in their own order,
      which loomcore already keeps sorted wherever order carries no meaning
      (reference data by id, provenance, allocations by participant);
    * **recurrences, intents and one-offs** (the seeds' exceptions) are tagged
      unions: an object with a ``"kind"`` field, see :data:`RECURRENCE_KINDS`,
      :data:`INTENT_KINDS` and :data:`ONE_OFF_KINDS`;
    * **omitted fields**: reference data (venues, participants, staff,
      vehicles, programs, staffing rules, locations), recurrences, intents and
      one-offs are written without the fields that hold their default value,
      and a missing field reads as its default. Plans (days, instances,
      allocations, demands, warnings) and document envelopes are written with
      every field, so readers of an export never need to know a default;
    * **strict types**: strings must be strings, whole numbers whole numbers
      (``true`` is not ``1``), booleans booleans, lists lists (an object or a
      string where a list belongs is refused, not iterated); unknown fields
      are refused, so a misspelt field is an error rather than silently
      ignored.

    Text output from :func:`dumps` sorts keys, indents by two spaces, uses
    ``", "``/``": "`` separators, keeps non-ASCII characters as they are and
    ends with a newline, so equal inputs give byte-identical documents.
    """
    conv = cattrs.Converter(
        forbid_extra_keys=True,
        unstruct_collection_overrides={Sequence: list},
    )
    for kind, label in ((str, "a string"), (int, "a whole number"), (bool, "true or false")):
        conv.register_structure_hook(kind, _strict(kind, label))
    conv.register_structure_hook(float, _strict(float, "a number"))
    conv.register_structure_hook(date, _date)
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(time, _time)
    conv.register_unstructure_hook(time, _unstructure_time)
    conv.register_structure_hook(datetime, _datetime)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(Decimal, _decimal)
    conv.register_unstructure_hook(Decimal, _unstructure_decimal)
    conv.register_structure_hook(Weekday, _weekday)
    conv.register_unstructure_hook(Weekday, lambda d: d.name)
    conv.register_unstructure_hook_func(_is_set, _sorted_set(conv))
    conv.register_structure_hook_factory(_is_collection, _collection)
    for cls in _CONCISE:
        conv.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True)
        )
    _register_tagged(conv, "recurrence", RECURRENCE_KINDS, ())
    _register_tagged(conv, "intent", INTENT_KINDS, (Intent,))
    _register_tagged(conv, "exception", ONE_OFF_KINDS, (OneOff,))
    return conv


#: The converter both documents use.
converter = make_converter()


# --------------------------------------------------------------------------- text


def dumps(data: object) -> str:
    """Deterministic JSON text for unstructured ``data`` (see :func:`make_converter`)."""
    return (
        json.dumps(data, sort_keys=True, indent=2, separators=(",", ": "), ensure_ascii=False)
        + "\n"
    )


def parse_json(text: str | bytes) -> Any:
    """Parse JSON text; malformed text is a :class:`DocumentError`."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DocumentError(f"not valid JSON: {e}") from e


def read_document(source: str | bytes | os.PathLike[str] | Mapping[str, Any]) -> Mapping[str, Any]:
    """The top-level object of a document given as a mapping, JSON text or a file path.

    A string whose first non-blank character is ``{`` is JSON text; any other
    string is a path. A file that cannot be read raises :class:`OSError`.
    """
    if isinstance(source, Mapping):
        data: Any = source
    elif isinstance(source, bytes) or (isinstance(source, str) and source.lstrip().startswith("{")):
        data = parse_json(source)
    elif isinstance(source, str | os.PathLike):
        data = parse_json(Path(source).read_text(encoding="utf-8"))
    else:
        raise TypeError(f"expected a path, JSON text or a mapping, got {type(source).__name__}")
    if not isinstance(data, Mapping):
        raise DocumentError(f"a document must be a JSON object, got {type(data).__name__}")
    return data


def check_envelope(data: Mapping[str, Any], format: str, newest: int) -> int:
    """The document's version, once ``format`` and ``version`` say this loomcore can read it."""
    found = data.get("format")
    if found != format:
        what = "has no format" if found is None else f"has format {found!r}"
        raise DocumentError(f"the document {what}; expected {format!r}", "format")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise DocumentError(f"version must be a whole number, got {_show(version)}", "version")
    if version > newest:
        raise DocumentError(
            f"{format} version {version} is newer than this loomcore reads "
            f"(up to {newest}); upgrade loomcore",
            "version",
        )
    if version < 1:
        raise DocumentError(f"unknown {format} version {version}", "version")
    return version


# --------------------------------------------------------------------------- errors


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _faults(exc: BaseException, path: str) -> Iterator[tuple[str, str]]:
    """Every leaf fault under ``exc`` as ``(path, message)``, in document order."""
    if isinstance(exc, IterableValidationError):
        items, others = exc.group_exceptions()
        for sub, item in items:
            yield from _faults(sub, _join(path, item.index))
        yield from (f for sub in others for f in _faults(sub, path))
    elif isinstance(exc, ClassValidationError):
        fields, others = exc.group_exceptions()
        for sub, attribute in fields:
            yield from _faults(sub, _join(path, attribute.name))
        yield from (f for sub in others for f in _faults(sub, path))
    elif isinstance(exc, BaseValidationError):
        for sub in exc.exceptions:
            yield from _faults(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield _join(path, key), f"unknown field {key!r}"
    elif isinstance(exc, KeyError) and not isinstance(exc, LoomError):
        yield path, "required field is missing"
    else:
        field = exc.field if isinstance(exc, InvalidRecordError) else ""
        yield (_join(path, field) if field else path), str(exc) or type(exc).__name__


def document_error(exc: BaseException, path: str = "") -> DocumentError:
    """The :class:`DocumentError` for ``exc`` raised while reading at ``path``.

    A validation group names its first fault (in document order) and counts
    the rest.
    """
    faults = list(_faults(exc, path))
    where, message = faults[0] if faults else (path, str(exc))
    if len(faults) > 1:
        message += f" (and {len(faults) - 1} more)"
    return DocumentError(message, where)


def structure(data: object, cls: type[_T], *, path: str = "") -> _T:
    """Read ``data`` as ``cls``: the one place reading errors become :class:`DocumentError`.

    ``path`` is where ``data`` sits in its document, so the error's path is
    complete (e.g. ``programs[3].start_time``).
    """
    try:
        return converter.structure(data, cls)
    except DocumentError:
        raise
    except (BaseValidationError, LoomError, ValueError, TypeError, LookupError) as e:
        raise document_error(e, path) from e
