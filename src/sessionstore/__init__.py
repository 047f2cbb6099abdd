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
    PersistError,
    PoolTimeoutError,
    SchemaError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStoreError,
    StateValueError,
)
from .factory import open_service
from .hooks import AppendEventContext, GetSessionContext
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
from .summaries import FunctionSummarizer, ModelHistory, StoredSummary, Summarizer, SummaryResult
from .summary_jobs import SummaryJob
from .sync import SyncSessionService, open_sync_service
from .tracks import TrackEvent

__version__ = "0.1.0"

__all__ = [
    "AppendEventContext",
    "FunctionSummarizer",
    "GetSessionContext",
    "ModelHistory",
    "StoredSummary",
    "Summarizer",
    "SummaryJob",
    "SummaryResult",
    "TrackEvent",
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
    "PersistError",
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
    "SyncSessionService",
    "UNSET",
    "UserKey",
    "migrate",
    "open_service",
    "open_sync_service",
]
