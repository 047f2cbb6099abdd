"""open_service: pick the backend from a URL (or an AsyncEngine) and build it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .options import ServiceOptions
from .service import SessionService

REDIS_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def open_service(url_or_engine: str | AsyncEngine, **options: Any) -> SessionService:
    """Build the service for `url_or_engine`; nothing connects until first use or start().

    ``memory://`` gives the in-memory backend. ``sqlite:///path``,
    ``postgresql://…``, ``mysql://…`` and ``mariadb://…`` give the SQL backend
    with aiosqlite, asyncpg or aiomysql (explicit ``+driver`` URLs are
    honoured). ``redis://…``, ``rediss://…`` and ``redis+cluster://…`` give
    the Redis backend (redis-py, ``sessionstore[redis]``; its options:
    ``key_prefix``, ``cluster=True``, redis-py client options). An
    AsyncEngine may be passed instead of a URL; the service then never
    disposes it. Options: those of ServiceOptions (event_limit,
    session_ttl, …) plus the backend's own (SQL: table_prefix, schema, pool_size, …).
    """
    common, rest = ServiceOptions.split(dict(options))
    if isinstance(url_or_engine, str) and url_or_engine.split(":", 1)[0] == "memory":
        if url_or_engine.rstrip("/") not in ("memory:", "memory:/"):
            raise ConfigurationError("the in-memory backend takes no path or options in its URL: use memory://")
        if rest:
            raise ConfigurationError(f"options the in-memory backend does not know: {', '.join(sorted(rest))}")
        from .memory import InMemorySessionService

        return InMemorySessionService(common)
    if isinstance(url_or_engine, str) and url_or_engine.split(":", 1)[0].lower() in REDIS_SCHEMES:
        from .redis import RedisSessionService

        return RedisSessionService(url_or_engine, common, **rest)
    from .sql.service import SQLSessionService

    return SQLSessionService.from_target(url_or_engine, common, **rest)
