"""What a cleanup round reports, shared by every backend."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class CleanupResult:
    """Rows one cleanup round removed (or, with dry_run, would remove).

    ``skipped`` is True when another process held the cleanup lock, so this
    round did nothing.
    """

    sessions_expired: int = 0
    events_removed: int = 0
    events_trimmed: int = 0
    app_state_expired: int = 0
    user_state_expired: int = 0
    tombstones_purged: int = 0
    dry_run: bool = False
    skipped: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return (
            self.sessions_expired
            + self.events_removed
            + self.events_trimmed
            + self.app_state_expired
            + self.user_state_expired
            + self.tombstones_purged
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"total": self.total}

    def log_line(self) -> str:
        """A one-line key=value summary for logs."""
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())
