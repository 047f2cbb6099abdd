"""Typed errors. Everything the library raises on purpose derives from SessionStoreError."""

from __future__ import annotations


class SessionStoreError(Exception):
    """Base class of every error sessionstore raises on purpose."""


class InvalidKeyError(SessionStoreError, ValueError):
    """An app name, user id, session id or state key is empty, too long or has control characters."""


class SessionNotFoundError(SessionStoreError):
    """The addressed session does not exist (or is expired or deleted)."""


class SessionExistsError(SessionStoreError):
    """create_session was given the id of a session that is still active."""


class ConflictError(SessionStoreError):
    """append_event(expected_version=v) found that another write landed since version v."""

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class StateValueError(SessionStoreError, ValueError):
    """A state value is not a JSON value (or a state key is malformed). Names the key."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class InvalidEventError(SessionStoreError, ValueError):
    """An event field is malformed: content or metadata not JSON, bad id, naive timestamp."""


class EventTooLargeError(InvalidEventError):
    """The serialised event is larger than the service's max_event_bytes."""


class DatabaseError(SessionStoreError):
    """The database could not be reached or refused an operation. The URL is shown redacted."""


class PoolTimeoutError(DatabaseError):
    """No pooled connection came free within pool_timeout: the pool is exhausted (raise pool_size)."""


class OutcomeUnknownError(DatabaseError):
    """The connection was lost while a write was committing: it may or may not have been stored.

    Re-read to find out. Re-sending an append with the same event id is safe (it is
    stored at most once); other writes may apply twice.
    """


class SchemaError(SessionStoreError):
    """The database schema is missing or at the wrong version; the message says how to fix it."""


class InvalidArgumentError(SessionStoreError, ValueError):
    """A method argument other than a key is out of range (a limit, event_num, a naive datetime)."""


class InvalidCursorError(InvalidArgumentError):
    """list_sessions was given a cursor it did not produce."""


class ConfigurationError(SessionStoreError, ValueError):
    """open_service was given a URL or option it cannot use."""


class PersistError(SessionStoreError):
    """Queued writes (write-behind, docs/write-behind.md) failed after append_event had returned.

    Raised by the next ``flush()`` or ``close()`` (and by an append to a
    session whose earlier queued write failed). ``failures`` holds (session
    key, event id, error) for the first failures since the last report;
    ``count`` how many failed in all since then.
    """

    def __init__(self, message: str, *, failures: list[tuple[object, str, BaseException]], count: int) -> None:
        super().__init__(message)
        self.failures = failures
        self.count = count


class ModelError(SessionStoreError):
    """A chat model call failed: the endpoint answered with an error, timed out or was unreachable.

    One line, with the model and the endpoint's status when there is one; never the API key.
    """


class MaxTurnsError(SessionStoreError):
    """Runner(max_turns=N) was asked for a turn past the N-th in one session.

    Start a new session (or raise max_turns) to go on.
    """

    def __init__(self, message: str, *, max_turns: int, turns: int) -> None:
        super().__init__(message)
        self.max_turns = max_turns
        self.turns = turns
