"""Where each piece of data lives in Redis: the key names, built in one place.

Every key of one user shares the cluster hash tag ``{u:<app>:<user>}``, so a
script that writes a session, its events, the user's index and the user's
state touches one slot (one node of a Redis Cluster). App state has its own
tag ``{a:<app>}``: it is shared by all users of an app, so it cannot live in
every user's slot.

Inside a tag, ``{``, ``}``, ``:`` and ``%`` of an id are percent-escaped, so no
id can end the tag early or run into the next part of the name; session ids
come after a fixed type marker (``s:``, ``st:`` …) and are escaped the same way.

User tag ``P{u:app:user}:`` then:

- ``idx``   sorted set: session id -> updated_at (µs), the per-user list index
- ``exp``   sorted set: session id -> expires_at (µs), sessions with a TTL
- ``user``  hash: user state, field -> ``<expires µs or empty>|<JSON>``
- ``utomb`` sorted set: soft-deleted user state keys -> deleted_at (µs)
- ``tombs`` sorted set: session tombstone number -> deleted_at (µs)
- ``n``     counter numbering tombstones
- ``s:<id>`` hash: c (created µs), u (updated µs), e (expires µs, absent: never), v (version), q (last seq)
- ``st:<id>`` hash: session state, field -> JSON
- ``ev:<id>`` sorted set: events by seq, member ``<event id>\\n<sec>\\n<µs>\\n<JSON>``
- ``ei:<id>`` hash: event id -> seq (retry-safe appends)
- ``md:<id>`` hash: session metadata, field -> JSON (the title is field ``t`` of ``s:<id>``)
- ``ts:<n>``, ``tst:<n>``, ``tev:<n>``, ``tmd:<n>``: a soft-deleted session's hash, state, events, metadata

App tag ``P{a:app}:`` then ``state`` (hash, as ``user``), ``tomb``, ``n``, and ``idx``: sorted set,
``<session id>\0<user id>`` -> updated_at (µs), the app-wide index of list_app_sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"})

USER_KEYS = ("idx", "exp", "user", "utomb", "tombs", "n")
"""The per-user keys every session script declares, in this order, after the session's four."""

SESSION_KEYS = ("s", "st", "ev", "ei")
APP_KEYS = ("state", "tomb", "n", "idx")


def escape(part: str) -> str:
    """An id as it appears inside a key name: tag and separator characters escaped."""
    return part.translate(_ESCAPES)


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Key names under one ``key_prefix``."""

    prefix: str = "ss:"

    def user_base(self, app_name: str, user_id: str) -> str:
        """The start of every key of one user, hash tag included (scripts append the rest)."""
        return f"{self.prefix}{{u:{escape(app_name)}:{escape(user_id)}}}:"

    def app_base(self, app_name: str) -> str:
        return f"{self.prefix}{{a:{escape(app_name)}}}:"

    @staticmethod
    def app_member(session_id: str, user_id: str) -> str:
        """A session's member in its app's index: ids hold no control character, so NUL separates them."""
        return f"{session_id}\0{user_id}"

    def session_keys(self, app_name: str, user_id: str, session_id: str) -> list[str]:
        """The keys a session script declares: the session's four, then the user's six."""
        base = self.user_base(app_name, user_id)
        sid = escape(session_id)
        return [f"{base}{kind}:{sid}" for kind in SESSION_KEYS] + [base + name for name in USER_KEYS]

    def metadata_key(self, app_name: str, user_id: str, session_id: str) -> str:
        return f"{self.user_base(app_name, user_id)}md:{escape(session_id)}"

    def user_stem(self, app_name: str) -> str:
        """The start of the user tags of one app (LIST_APP adds the escaped user id and ``}:``)."""
        return f"{self.prefix}{{u:{escape(app_name)}:"

    def user_keys(self, app_name: str, user_id: str) -> list[str]:
        base = self.user_base(app_name, user_id)
        return [base + name for name in USER_KEYS]

    def app_keys(self, app_name: str) -> list[str]:
        base = self.app_base(app_name)
        return [base + name for name in APP_KEYS]

    @property
    def lock_key(self) -> str:
        """The cleanup lock: one cleaner per prefix."""
        return f"{self.prefix}cleanup-lock"

    @property
    def scan_pattern(self) -> str:
        """A SCAN pattern matching every tagged key under the prefix (glob characters escaped)."""
        escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in self.prefix)
        return escaped + "{*"

    def tag_of(self, key: str) -> str | None:
        """The base (prefix, tag, colon) of a key found by SCAN, or None if it is not one of ours."""
        if not key.startswith(self.prefix + "{"):
            return None
        end = key.find("}", len(self.prefix))
        if end < 0 or key[end + 1 : end + 2] != ":":
            return None
        return key[: end + 2]
