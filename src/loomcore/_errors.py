"""Errors raised by loomcore.

Every error derives from :class:`LoomError` and also from the builtin it
resembles, so ``except LookupError`` and ``except ValueError`` keep working in
host code. Each error builds its message from the ids or dates it carries and
keeps them as attributes, so a host can show them in its own words.

Bad input raises. Expected outcomes of planning (over capacity, an orphaned
exception) are never errors: they are warnings inside the plan.
"""

from __future__ import annotations

from datetime import date

__all__ = [
    "AlreadyRetractedError",
    "DayOutsideWindowError",
    "DocumentError",
    "DuplicateIdError",
    "InvalidDateRangeError",
    "InvalidRecordError",
    "InvalidWindowError",
    "LoomError",
    "NoInstanceError",
    "StoreError",
    "StoreUnavailableError",
    "UnknownIdError",
    "UnknownParticipantError",
    "UnknownProgramError",
    "UnknownRecordError",
    "UnknownStaffError",
    "UnknownVehicleError",
    "UnknownVenueError",
]


class LoomError(Exception):
    """Base class of every error loomcore raises on purpose."""


class UnknownIdError(LoomError, LookupError):
    """An id names nothing known. ``kind`` says what was looked for."""

    kind = "record"

    def __init__(self, id: str, named_by: str = "") -> None:
        self.id = id
        self.named_by = named_by
        super().__init__(
            f"unknown {self.kind} id {id!r}" + (f" (named by {named_by})" if named_by else "")
        )

    def __str__(self) -> str:  # LookupError would otherwise repr() the args
        return str(self.args[0])


class UnknownProgramError(UnknownIdError):
    """No program has this id."""

    kind = "program"


class UnknownParticipantError(UnknownIdError):
    """No participant has this id."""

    kind = "participant"


class UnknownStaffError(UnknownIdError):
    """No staff member has this id."""

    kind = "staff"


class UnknownVehicleError(UnknownIdError):
    """No vehicle has this id."""

    kind = "vehicle"


class UnknownVenueError(UnknownIdError):
    """No venue has this id."""

    kind = "venue"


class UnknownRecordError(UnknownIdError):
    """No intent, exception or retraction has this id."""

    kind = "record"


class DuplicateIdError(LoomError, ValueError):
    """Something with this id is already stored."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"a {kind} with id {id!r} already exists")


class InvalidWindowError(LoomError, ValueError):
    """The window size is outside 2..16 weeks."""

    def __init__(self, weeks: object) -> None:
        self.weeks = weeks
        super().__init__(f"window size must be a whole number of weeks from 2 to 16, got {weeks!r}")


class InvalidDateRangeError(LoomError, ValueError):
    """A range ends before it starts."""

    def __init__(self, start: date, end: date, what: str = "range") -> None:
        self.start = start
        self.end = end
        self.what = what
        super().__init__(f"{what} ends before it starts: {start.isoformat()} > {end.isoformat()}")


class InvalidRecordError(LoomError, ValueError):
    """A value object, intent or exception is malformed.

    ``record_id`` names the record when it has an id; ``field`` the attribute
    at fault when there is one.
    """

    def __init__(self, message: str, *, record_id: str = "", field: str = "") -> None:
        self.record_id = record_id
        self.field = field
        named = not record_id or repr(record_id) in message or message.startswith(record_id)
        super().__init__(message if named else f"{record_id}: {message}")


class NoInstanceError(LoomError, ValueError):
    """An exception names a date on which its program has no instance."""

    def __init__(self, program_id: str, day: date, record_id: str = "") -> None:
        self.program_id = program_id
        self.day = day
        self.record_id = record_id
        super().__init__(
            f"program {program_id!r} has no instance on {day.isoformat()}"
            + (f" (record {record_id!r})" if record_id else "")
        )


class AlreadyRetractedError(LoomError, ValueError):
    """The record was retracted before; a retraction cannot be repeated."""

    def __init__(self, record_id: str) -> None:
        self.record_id = record_id
        super().__init__(f"record {record_id!r} is already retracted")


class DayOutsideWindowError(LoomError, ValueError):
    """A day that must be in the window (or in history) is not."""

    def __init__(self, day: date, reason: str) -> None:
        self.day = day
        self.reason = reason
        super().__init__(f"{day.isoformat()}: {reason}")


class DocumentError(LoomError, ValueError):
    """A scenario or export document is malformed.

    ``path`` is where in the document the fault lies, e.g.
    ``programs[3].start_time``.
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class StoreError(LoomError, RuntimeError):
    """A store failed in a way it cannot describe in loomcore's own terms.

    Adapters raise it (``raise StoreError(...) from e``) for backend errors
    that are neither bad input nor a lost connection.
    """


class StoreUnavailableError(LoomError, ConnectionError):
    """The store cannot be reached (connection refused, lost, timed out).

    Nothing was changed by the failed call; retrying later is safe.
    """
