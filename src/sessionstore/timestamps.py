"""The one rule for every timestamp the service takes in: aware, and storable on every backend.

That is an event's timestamp, ``after=`` in get_session and the time inside
a list_sessions cursor. Each must be a timezone-aware datetime whose UTC
value lies from EARLIEST to LATEST: the range MySQL/MariaDB document for
DATETIME(6). PostgreSQL's timestamptz and SQLite's text could hold more, but
data must move between backends unchanged, so every backend refuses the same
values, before touching storage. (Python itself stops at years 1 and 9999:
an aware datetime near either end may have no UTC value at all, and
converting it raises OverflowError, which is why the range is checked here
rather than left to a driver.)
"""

from __future__ import annotations

from datetime import datetime, timezone

EARLIEST = datetime(1000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


def utc_if_storable(value: datetime) -> datetime | None:
    """`value` converted to UTC if it is aware and within EARLIEST..LATEST, else None.

    Events are stamped in UTC by default, so that case skips the conversion
    (comparing datetimes that share a tzinfo object is cheap too).
    """
    if value.tzinfo is not timezone.utc:
        if value.tzinfo is None or value.utcoffset() is None:
            return None
        try:
            value = value.astimezone(timezone.utc)
        except OverflowError:  # the UTC value is before year 1 or after 9999
            return None
    return value if EARLIEST <= value <= LATEST else None


def storable_utc(value: object, what: str, error: type[Exception]) -> datetime:
    """`value` in UTC, or raise `error` saying what is wrong with it (`what` names it)."""
    if not isinstance(value, datetime):
        raise error(f"{what} must be a datetime, got {type(value).__name__}")
    utc = utc_if_storable(value)
    if utc is not None:
        return utc
    if value.tzinfo is None or value.utcoffset() is None:
        raise error(f"{what} must be timezone-aware (naive datetimes are ambiguous)")
    raise error(
        f"{what} {value.isoformat()} is out of range: its UTC value must be from "
        f"{EARLIEST.isoformat()} to {LATEST.isoformat()}, what every backend can store"
    )
