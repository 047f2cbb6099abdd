"""Session metadata: a title and a free JSON object per session, and the rules for changing them.

``set_session_metadata(key, title=..., metadata=delta)`` changes either or
both. The title is replaced whole: a str sets it, None clears it, and leaving
the argument out (``UNSET``) keeps it. The metadata object is changed by a
delta, exactly like state: each top-level key of the delta replaces that key
(values are JSON, replaced whole, never deep-merged), ``DELETE`` removes it,
keys the delta does not name stay. Metadata is not state: no prefix routing,
no event changes it, it is returned by get_session, list_sessions and
list_app_sessions on the Session (``title``, ``metadata``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from . import jsonvalue
from .errors import InvalidArgumentError
from .keys import identifier_problem
from .state import DELETE


class Unset(enum.Enum):
    """The type of UNSET: "argument not given", where None means something."""

    UNSET = "UNSET"


UNSET = Unset.UNSET
"""``title=UNSET`` (the default): leave the title as it is."""

MAX_TITLE_LENGTH = 500
"""Longest title, in code points."""


def check_title(title: object) -> str | None | Unset:
    """The title as given, or InvalidArgumentError: a non-empty str without control characters, None, UNSET."""
    if title is None or isinstance(title, Unset):
        return title
    problem = identifier_problem(title, MAX_TITLE_LENGTH)
    if problem is not None:
        raise InvalidArgumentError(f"title {problem} (None clears the title)")
    assert isinstance(title, str)
    return title


def check_metadata_delta(delta: object, max_bytes: int) -> dict[str, Any]:
    """A copy of a metadata delta, or InvalidArgumentError: str keys by the identifier rule,
    JSON values or DELETE, at most `max_bytes` serialised."""
    if delta is None:
        return {}
    if not isinstance(delta, Mapping):
        raise InvalidArgumentError(f"metadata must be a dict (a delta), got {type(delta).__name__}")
    checked: dict[str, Any] = {}
    for name, value in delta.items():
        problem = identifier_problem(name)
        if problem is not None:
            raise InvalidArgumentError(f"metadata key {name!r} {problem}")
        if value is DELETE:
            checked[name] = DELETE
            continue
        try:
            jsonvalue.check_json(value)
        except jsonvalue.NotJSONError as exc:
            raise InvalidArgumentError(f"metadata[{name!r}] is not JSON: {exc}") from None
        checked[name] = jsonvalue.copy_json(value)
    size = len(jsonvalue.dumps({k: v for k, v in checked.items() if v is not DELETE}))
    if size > max_bytes:
        raise InvalidArgumentError(f"metadata delta is {size} bytes serialised; the limit is max_event_bytes ({max_bytes})")
    return checked


def apply_metadata(metadata: dict[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata` with `delta` applied, in place (DELETE removes a key); returns it."""
    for name, value in delta.items():
        if value is DELETE:
            metadata.pop(name, None)
        else:
            metadata[name] = jsonvalue.copy_json(value)
    return metadata
