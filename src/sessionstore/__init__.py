"""sessionstore: durable conversation sessions for AI agents, in the database you already run."""

from .errors import (
    ConfigurationError,
    ConflictError,
    DatabaseError,
    EventTooLargeError,
    InvalidArgumentError,
    InvalidCursorError,
    InvalidEventError,
    InvalidKeyError,
    OutcomeUnknownError,
    PoolTimeoutError,
    SchemaError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStoreError,
    StateValueError,
)
from .factory import open_service
from .keys import Key, UserKey
from .memory import InMemorySessionService
from .options import ServiceOptions
from .schema import migrate
from .service import SessionService
from .state import DELETE
from .records import CleanupResult, Event, Session, SessionPage

__version__ = "0.1.0"

__all__ = [
    "DELETE",
    "CleanupResult",
    "ConfigurationError",
    "ConflictError",
    "DatabaseError",
    "Event",
    "EventTooLargeError",
    "InMemorySessionService",
    "InvalidArgumentError",
    "InvalidCursorError",
    "InvalidEventError",
    "InvalidKeyError",
    "Key",
    "OutcomeUnknownError",
    "PoolTimeoutError",
    "SchemaError",
    "ServiceOptions",
    "Session",
    "SessionExistsError",
    "SessionNotFoundError",
    "SessionPage",
    "SessionService",
    "SessionStoreError",
    "StateValueError",
    "UserKey",
    "migrate",
    "open_service",
]
