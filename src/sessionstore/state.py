"""State rules, in one place: prefix routing, deltas, the merged view.

Keys prefixed ``app:`` live in app state, ``user:`` in user state, ``temp:``
are never persisted, every other key is session state. Deltas are shallow per
key: a value replaces the stored one, ``None`` stores JSON null and the
sentinel ``DELETE`` removes the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import StateValueError
from .jsonvalue import NotJSONError, check_json
from .keys import identifier_problem

APP_PREFIX: Final = "app:"
USER_PREFIX: Final = "user:"
TEMP_PREFIX: Final = "temp:"


class _Delete:
    """Type of the DELETE sentinel: a state delta value that removes its key."""

    _instance: _Delete | None = None

    def __new__(cls) -> _Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "sessionstore.DELETE"

    def __reduce__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()


@dataclass(slots=True)
class ScopedDelta:
    """A state delta split by scope, keys without their prefixes, values checked."""

    app: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)
    temp: dict[str, Any] = field(default_factory=dict)


def check_state_key(key: object, *, display: str | None = None) -> str:
    """Validate one bare (prefix-free) state key."""
    shown = display if display is not None else key
    problem = identifier_problem(key)
    if problem is not None:
        raise StateValueError(f"state key {shown!r} {problem}", key=str(shown))
    return key  # type: ignore[return-value]  # identifier_problem checked it is a str


def check_state_value(key: str, value: Any) -> Any:
    """Raise StateValueError naming `key` if `value` is neither JSON nor DELETE."""
    if value is DELETE:
        return value
    try:
        check_json(value)
    except NotJSONError as exc:
        raise StateValueError(f"state key {key!r}: {exc}", key=key) from None
    return value


def check_delta(delta: object) -> Mapping[str, Any]:
    """`delta` itself if it is a mapping, {} for None; else raise StateValueError."""
    if type(delta) is dict:  # the usual case, without the slower isinstance(..., Mapping)
        return delta
    if delta is None:
        return {}
    if not isinstance(delta, Mapping):
        raise StateValueError(f"a state delta must be a mapping, got {type(delta).__name__}", key="")
    return delta


def split_delta(delta: Mapping[str, Any] | None) -> ScopedDelta:
    """Validate every key and value of `delta`, then route them by prefix.

    Raises StateValueError before anything is routed, so a bad delta writes nothing.
    """
    scoped = ScopedDelta()
    for full_key, value in check_delta(delta).items():
        if not isinstance(full_key, str):
            raise StateValueError(f"state key {full_key!r} is not a str", key=str(full_key))
        check_state_value(full_key, value)
        if full_key.startswith(TEMP_PREFIX):
            scoped.temp[full_key] = value
        elif full_key.startswith(APP_PREFIX):
            scoped.app[check_state_key(full_key[len(APP_PREFIX):], display=full_key)] = value
        elif full_key.startswith(USER_PREFIX):
            scoped.user[check_state_key(full_key[len(USER_PREFIX):], display=full_key)] = value
        else:
            scoped.session[check_state_key(full_key)] = value
    return scoped


def check_bare_delta(delta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a delta for update_app_state / update_user_state: bare keys, stored as given."""
    checked: dict[str, Any] = {}
    for key, value in check_delta(delta).items():
        checked[check_state_key(key)] = check_state_value(key, value)
    return checked


def apply_delta(target: dict[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a shallow delta to `target` in place (DELETE removes) and return it."""
    for key, value in delta.items():
        if value is DELETE:
            target.pop(key, None)
        else:
            target[key] = value
    return target


def strip_temp(delta: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an event's delta that is persisted (temp: keys dropped, DELETE kept)."""
    return {k: v for k, v in delta.items() if not k.startswith(TEMP_PREFIX)}


def merged_view(
    session_state: Mapping[str, Any],
    app_state: Mapping[str, Any],
    user_state: Mapping[str, Any],
) -> dict[str, Any]:
    """The state a session read returns: session keys bare, app and user keys prefixed."""
    merged = dict(session_state)
    merged.update({APP_PREFIX + k: v for k, v in app_state.items()})
    merged.update({USER_PREFIX + k: v for k, v in user_state.items()})
    return merged


def split_initial_state(state: Mapping[str, Any] | None) -> ScopedDelta:
    """Validate the `state` given to create_session.

    App and user keys are applied as a delta (DELETE removes a shared key);
    a new session has no session keys to remove, so DELETE there is dropped.
    """
    scoped = split_delta(state)
    scoped.session = {k: v for k, v in scoped.session.items() if v is not DELETE}
    return scoped
