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
from .metadata import UNSET
from .options import ServiceOptions
from .records import (
    CLEANUP_STEPS,
    CleanupProgress,
    CleanupResult,
    Event,
    EventPage,
    Session,
    SessionPage,
)
from .service import SessionService
from .sql.migrate import migrate
from .state import DELETE

__version__ = "0.1.0"

__all__ = [
    "CLEANUP_STEPS",
    "CleanupProgress",
    "DELETE",
    "CleanupResult",
    "ConfigurationError",
    "ConflictError",
    "DatabaseError",
    "Event",
    "EventPage",
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
    "UNSET",
    "UserKey",
    "migrate",
    "open_service",
]
