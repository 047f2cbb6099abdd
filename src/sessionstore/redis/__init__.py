"""The Redis backend (standalone or Redis Cluster), on redis-py's asyncio client: ``sessionstore[redis]``."""

from .service import RedisSessionService

__all__ = ["RedisSessionService"]
