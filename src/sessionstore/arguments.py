"""Argument checks and small helpers shared by the service's public methods (service.py,
service_history.py): one place, so every method rejects bad input the same way."""

from __future__ import annotations

import bisect

from .errors import InvalidArgumentError, InvalidKeyError
from .keys import Key, UserKey
from .records import Event

MAX_PAGE_SIZE = 1000
"""Largest `limit` of a listing (list_sessions, list_app_sessions, list_events)."""


def add_in_seq_order(events: list[Event], event: Event) -> None:
    """Add a stored event to a caller's list, keeping seq order (replies may arrive out of order)."""
    if not events or (events[-1].seq or 0) < (event.seq or 0):
        events.append(event)
    else:
        bisect.insort(events, event, key=lambda e: e.seq or 0)


def checked_key(key: object) -> Key:
    if not isinstance(key, Key):
        raise InvalidKeyError(f"expected a Key, got {type(key).__name__}")
    return key


def checked_user_key(user_key: object) -> UserKey:
    if isinstance(user_key, Key):  # a session's Key addresses its user too
        return user_key.user_key
    if not isinstance(user_key, UserKey):
        raise InvalidKeyError(f"expected a UserKey, got {type(user_key).__name__}")
    return user_key


def checked_limit(limit: object) -> int:
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"limit must be an int from 1 to {MAX_PAGE_SIZE}, got {limit!r}")
    return limit


def checked_count(value: object, name: str) -> int:
    """An int >= 0 (not a bool), or InvalidArgumentError naming the argument."""
    if type(value) is not int or value < 0:
        raise InvalidArgumentError(f"{name} must be an int >= 0, got {value!r}")
    return value
