"""Addresses of sessions and users: validated, frozen value objects."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .errors import InvalidKeyError

MAX_ID_LENGTH = 128
"""Longest app name, user id, session id or state key, in code points.

128 code points x 4 bytes (utf8mb4) x 3 id columns stays under MySQL's
3072-byte index key limit."""


def identifier_problem(value: object, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why `value` cannot be an identifier (an id or a state key), or None if it can.

    The one rule for every name the store keeps: a non-empty str of at most
    `max_length` code points, with no control character (Unicode category Cc)
    and no lone surrogate (Cs, which no database can encode). The reason reads
    after the name of the thing: "app_name must not be empty".
    """
    if not isinstance(value, str):
        return f"must be a str, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"is {len(value)} characters long; the limit is {max_length}"
    if not value.isprintable():  # cheap pre-filter; isprintable() is False for Cc, Cs and more
        for ch in value:
            category = unicodedata.category(ch)
            if category == "Cc":
                return f"contains the control character U+{ord(ch):04X}"
            if category == "Cs":
                return f"contains the lone surrogate U+{ord(ch):04X}"
    return None


def check_identifier(
    value: object, what: str, *, error: type[Exception] = InvalidKeyError, max_length: int = MAX_ID_LENGTH
) -> str:
    """Return `value` if it is a usable identifier, else raise `error` saying why."""
    problem = identifier_problem(value, max_length)
    if problem is not None:
        raise error(f"{what} {problem}")
    return value  # type: ignore[return-value]  # identifier_problem checked it is a str


@dataclass(frozen=True, slots=True)
class UserKey:
    """Addresses one user of one app."""

    app_name: str
    user_id: str

    def __post_init__(self) -> None:
        check_identifier(self.app_name, "app_name")
        check_identifier(self.user_id, "user_id")


@dataclass(frozen=True, slots=True)
class Key:
    """Addresses one session. An empty session_id on create means "generate one"."""

    app_name: str
    user_id: str
    session_id: str = ""

    def __post_init__(self) -> None:
        check_identifier(self.app_name, "app_name")
        check_identifier(self.user_id, "user_id")
        if self.session_id != "":
            check_identifier(self.session_id, "session_id")
        elif not isinstance(self.session_id, str):
            raise InvalidKeyError("session_id must be a str")

    @property
    def user_key(self) -> UserKey:
        return UserKey(self.app_name, self.user_id)

    def require_session_id(self) -> Key:
        """Return self, or raise if the session id is empty (only create may omit it)."""
        if not self.session_id:
            raise InvalidKeyError("session_id must not be empty here")
        return self
