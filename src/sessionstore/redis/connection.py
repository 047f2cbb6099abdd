"""URL to redis-py asyncio client (standalone or cluster), and Redis errors to typed ones.

redis-py is an optional dependency (``sessionstore[redis]``), imported only
here and only when a Redis service is built. The client is made with no
retries of its own: a script whose reply was lost may have run, and resending
it blindly could apply a state update twice. ``Connection`` decides instead:
an error while connecting (nothing was sent) is retried for every operation;
a lost reply is retried for reads and appends (an append is stored at most
once by its event id) and is ``OutcomeUnknownError`` for other writes.
Pooled connections broken by a server restart are replaced by redis-py when
they are next checked out, and scripts the restarted server forgot are loaded
again on the NoScriptError (redis-py's ``Script`` does that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError, DatabaseError, OutcomeUnknownError, PoolTimeoutError, SessionStoreError
from ..redaction import redact, scrub, url_password
from ..retry import backoff_s

T = TypeVar("T")

SCHEMES = {"redis": False, "rediss": False, "redis+cluster": True, "rediss+cluster": True}
"""URL schemes this backend takes, and whether each means a Redis Cluster."""

CLIENT_OPTIONS = frozenset({
    "username", "password", "client_name", "socket_timeout", "socket_connect_timeout", "socket_keepalive",
    "health_check_interval", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname",
})
"""redis-py client options passed through (others are refused when the service is built, not at first use)."""

CONNECT_ATTEMPTS = 5
"""Tries of an operation whose connection could not be made (a server restarting), backing off."""


def import_redis() -> Any:
    """The ``redis.asyncio`` module, or a ConfigurationError naming the extra to install."""
    try:
        import redis.asyncio as redis_asyncio
        import redis.asyncio.cluster  # noqa: F401 - loads RedisCluster onto redis_asyncio
    except ImportError as exc:
        raise ConfigurationError(f"the Redis backend needs redis-py: pip install 'sessionstore[redis]' ({exc})") from None
    return redis_asyncio


POOL_SIZE = 50
"""Default for ``pool_size``: connections per server (per node of a cluster), and calls in flight."""
POOL_TIMEOUT_S = 30.0


DEFAULT_PREFIX = "ss:"
"""Every key starts with the key prefix; this one unless the option or the URL says otherwise."""


def prefix_from_url(url: str, key_prefix: str) -> tuple[str, str]:
    """`url` without a ``key_prefix`` query parameter, and the prefix to use: the URL's, if it
    has one (a different ``key_prefix`` option as well is a ConfigurationError), else `key_prefix`."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [value for name, value in query if name == "key_prefix"]
    if not given:
        return url, key_prefix
    if len(given) > 1 or (key_prefix != DEFAULT_PREFIX and key_prefix != given[0]):
        raise ConfigurationError(f"key_prefix is given twice, differently, for {redact(url)}")
    rest = urlencode([(name, value) for name, value in query if name != "key_prefix"])
    return urlunsplit((*parts[:3], rest, parts.fragment)), given[0]


def make_client(url: str, *, cluster: bool | None, pool_size: int = POOL_SIZE, **client_options: Any) -> tuple[Any, bool]:
    """A redis-py asyncio client for `url` and whether it is a cluster client. Connects lazily."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(f"not a Redis URL: {redact(url)} (expected redis://, rediss:// or redis+cluster://)")
    is_cluster = SCHEMES[scheme] if cluster is None else bool(cluster)
    plain = urlunsplit((scheme.split("+")[0], *parts[1:]))
    aio = import_redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    unknown = sorted(set(client_options) - CLIENT_OPTIONS)
    if unknown:
        raise ConfigurationError(f"unknown options: {', '.join(unknown)}")
    if type(pool_size) is not int or pool_size < 1:
        raise ConfigurationError(f"pool_size must be a positive int, got {pool_size!r}")
    options: dict[str, Any] = {"decode_responses": True, "retry": Retry(NoBackoff(), 0), "max_connections": pool_size}
    options.update(client_options)
    try:
        if is_cluster:
            return aio.cluster.RedisCluster.from_url(plain, **options), True
        return aio.Redis.from_url(plain, **options), False
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"bad Redis URL or option for {redact(url)}: {scrub(str(exc), url_password(url))}") from None


class Connection:
    """The client plus the error policy: every call to Redis goes through ``run``."""

    def __init__(self, client: Any, url: str, is_cluster: bool, *, pool_size: int = POOL_SIZE,
                 pool_timeout: float = POOL_TIMEOUT_S) -> None:
        self.client = client
        # redis-py refuses a call when its pool is exhausted; callers queue here instead.
        self._slots = asyncio.Semaphore(pool_size)
        self.pool_timeout = pool_timeout
        self._ready = not is_cluster
        self._ready_lock = asyncio.Lock()
        self.url = url
        self.is_cluster = is_cluster
        self._password = url_password(url)
        from redis import exceptions

        self._errors = exceptions

    async def run(self, call: Callable[[], Awaitable[T]], *, rerun_if_lost: bool) -> T:
        """Await `call()`, retrying what is safe to retry, translating Redis errors."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.pool_timeout)
        except asyncio.TimeoutError:
            raise PoolTimeoutError(
                f"no Redis connection to {redact(self.url)} came free within {self.pool_timeout}s (raise pool_size)"
            ) from None
        try:
            if not self._ready:
                await self._run(self._initialize, True)
            return await self._run(call, rerun_if_lost)
        finally:
            self._slots.release()

    async def _initialize(self) -> None:
        """A cluster client learns the slot map once, before any command: redis-py's lazy
        initialisation races when many first commands start at once."""
        async with self._ready_lock:
            if not self._ready:
                await self.client.initialize()
                self._ready = True

    async def _run(self, call: Callable[[], Awaitable[T]], rerun_if_lost: bool) -> T:
        errors = self._errors
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                return await call()
            except SessionStoreError:
                raise
            except (errors.ConnectionError, errors.TimeoutError, OSError) as exc:
                unsent = "connecting to" in str(exc) or isinstance(exc, ConnectionRefusedError)
                if attempt + 1 < CONNECT_ATTEMPTS and (unsent or rerun_if_lost):
                    await asyncio.sleep(backoff_s(attempt) * 4)
                    continue
                if unsent or rerun_if_lost:
                    raise self._error(exc) from None
                raise OutcomeUnknownError(
                    f"the connection to Redis at {redact(self.url)} was lost during a write; it may or may not "
                    f"have been applied: {self._text(exc)}"
                ) from None
            except errors.RedisError as exc:
                raise self._error(exc) from None
        raise AssertionError("unreachable")

    def _text(self, exc: BaseException) -> str:
        return scrub(f"{type(exc).__name__}: {exc}", self._password)

    def _error(self, exc: BaseException) -> DatabaseError:
        return DatabaseError(f"Redis at {redact(self.url)}: {self._text(exc)}")

    async def close(self) -> None:
        await self.client.aclose()
