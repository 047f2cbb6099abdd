"""The writes that claim a session row: appends (three paths) and session-state updates,
and the app:/user: state writes that go with them.

An append picks the fastest path the database allows (docs/backends.md):
PostgreSQL's one statement, MySQL/MariaDB's update at the version the caller
saw, else the general transaction (claim the row, check, insert, apply
state). A fast path either stores the event exactly as the general path
would, or changes nothing and reports so (None); the general path then tells
"not found", "conflict" and "already stored" apart.

Everything runs on the driver connection (sql/native.py) with the statements
of sql/writes.py, through the service's retry loop (`native`, `retrying`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from .. import jsonvalue
from ..errors import ConflictError, SessionNotFoundError
from ..events import PreparedEvent
from ..keys import Key
from ..options import ServiceOptions, expiry
from ..records import Event
from ..state import DELETE, ScopedDelta, apply_delta
from .dialects import DialectRules
from .native import DriverRow, DriverTx, Step, driver_fetchone
from .writes import WriteSQL

T = TypeVar("T")

_UNKNOWN = ""  # (a "not looked up yet" marker: no path is empty)
_MAX_PATHS = 4096
"""Most state keys whose JSON path is remembered (beyond, it is worked out per write)."""
_MAX_PKS = 65536
"""Most session pks remembered (see SessionWrites.remember_pk)."""

Appended = tuple[Event, int, bool]
"""(the stored event, the session's version after it, whether it was stored before: a retry)."""


class RunNative(Protocol):
    """Run a transaction body on a driver connection, retried (the service's `_native`)."""

    def __call__(self, work: Callable[[DriverTx], Awaitable[T]], /) -> Awaitable[T]: ...


class Retrying(Protocol):
    """Run an attempt (given: does it need a verified connection?), retried (the service's `_retrying`)."""

    def __call__(self, attempt: Callable[[bool], Awaitable[T]], /) -> Awaitable[T]: ...


StoredEvent = Callable[[Key, str, datetime], Awaitable[Appended]]
"""The event a retried append had already stored, with the session's current version."""


class SessionWrites:
    """Appends and state writes for one service (its engine, dialect, statements and options)."""

    def __init__(
        self,
        engine: AsyncEngine,
        rules: DialectRules,
        w: WriteSQL,
        options: ServiceOptions,
        tx_class: type[DriverTx],
        *,
        native: RunNative,
        retrying: Retrying,
        stored_event: StoredEvent,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.w = w
        self.options = options
        self._tx_class = tx_class
        self._native = native
        self._retrying = retrying
        self._stored_event = stored_event
        self._paths: dict[str, str | None] = {}
        """State key -> its path (DialectRules.state_key_path), for keys seen before."""
        self._pks: dict[Key, int] = {}
        """Session key -> its row's pk, as last read or written (MySQL/MariaDB's append by pk)."""

    def remember_pk(self, key: Key, pk: int) -> None:
        """Note the pk of a session's row (a read or a write just saw it)."""
        if self.w.insert_event_after_claim is None:
            return
        pks = self._pks
        if len(pks) >= _MAX_PKS and key not in pks:
            pks.clear()  # (a plain bound: the pks of the sessions in use come back with their next read)
        pks[key] = pk

    # ------------------------------------------------------------------ appends

    async def append(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime, known_version: int
    ) -> Appended:
        """Store the event: the dialect's fast path if it applies, else the general transaction."""
        at = self._tx_class.time
        stamp = at(now)  # each datetime formatted once per append (SQLite's text costs microseconds)
        call = _Append(
            key=key, prepared=prepared, now=now, stamp=stamp,
            owner={"app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id},
            expires_at=at(expiry(now, self.options.session_ttl)),
            row=event_row(prepared, at(prepared.event.timestamp), stamp),
        )
        if self.w.append_in_one is not None:
            fast = await self._append_in_one(call, expected_version)
            if fast is not None:
                return fast
        fold = self._fold(prepared.scoped.session)
        if self.w.claim_at_version is not None and fold is not None:
            fast = await self._append_at_version(call, fold, known_version)
            if fast is not None:
                return fast
        return await self._append_in_transaction(call, fold, expected_version)

    async def _append_in_transaction(self, call: _Append, fold: _Fold | None, expected_version: int | None) -> Appended:
        """The general append: claim the row (and apply the session-state delta), check, insert,
        write shared state. A conflict or a retried id rolls the claim back."""
        key, scoped, event, w = call.key, call.prepared.scoped, call.prepared.event, self.w

        shared = self.shared_steps(scoped, key.app_name, key.user_id, call.now)

        async def work(tx: DriverTx) -> int:
            pk, version, seq, pending = await self._claim(tx, call.owner, call.stamp, call.expires_at, 1, scoped.session, fold)
            if expected_version is not None and version != expected_version:
                if await tx.fetchone(w.event_exists, {"pk": pk, "event_id": event.id}):
                    raise _AlreadyStored  # the id check comes first: a retry never conflicts
                raise ConflictError(
                    f"session {key.session_id!r} is at version {version}, not {expected_version}",
                    expected=expected_version, actual=version,
                )
            await self._finish(tx, [*pending, (w.insert_event, call.row | {"session_pk": pk, "seq": seq}), *shared])
            event.seq = seq
            self.remember_pk(key, pk)
            return version + 1

        try:
            version = await self._native(work)
        except _AlreadyStored:
            return await self._stored_event(key, event.id, call.now)
        return event, version, False

    async def _append_at_version(self, call: _Append, fold: _Fold, known_version: int) -> Appended | None:
        """MySQL/MariaDB: append at the version the caller saw, without a SELECT; the
        session-state delta goes into the same UPDATE. One round trip (UPDATE, INSERT,
        COMMIT in one query); two with app:/user: keys, whose writes must wait for the
        UPDATE's answer."""
        key, scoped, event, w = call.key, call.prepared.scoped, call.prepared.event, self.w
        claim_params = call.owner | fold.params | {"now": call.stamp, "expires_at": call.expires_at, "known_version": known_version}
        pk = self._pks.get(key)
        insert: Step
        if pk is None:
            assert w.insert_event_by_key is not None
            claim = w.folded("claim_at_version", *fold.shape)
            insert = (w.insert_event_by_key, call.row | call.owner)
        else:  # the row's pk, as last seen: no index lookup by key (a stale one matches nothing)
            assert w.insert_event_after_claim is not None
            claim = w.folded("claim_at_version_by_pk", *fold.shape)
            claim_params["pk"] = pk
            insert = (w.insert_event_after_claim, call.row | {"pk": pk})
        shared = self.shared_steps(scoped, key.app_name, key.user_id, call.now)

        async def work(tx: DriverTx) -> int | None:
            if not shared:  # claim, event, COMMIT: one round trip
                try:
                    return await tx.update_for_id_and_commit(claim, claim_params, insert)
                except Exception as exc:
                    if self.rules.is_unique_violation(exc):  # (session, event_id): a retried append
                        raise _AlreadyStored from None
                    raise
            seq = await tx.update_for_id(claim, claim_params)
            if seq is None:
                return None  # nothing was written
            await self._finish(tx, [insert, *shared])  # the event, the shared keys and COMMIT: one round trip
            return seq

        try:
            seq = await self._native(work)
        except _AlreadyStored:
            return await self._stored_event(key, event.id, call.now)
        if seq is None:
            self._pks.pop(key, None)  # (the general path learns it again)
            return None
        event.seq = seq
        return event, known_version + 1, False

    async def _append_in_one(self, call: _Append, expected_version: int | None) -> Appended | None:
        """PostgreSQL: the whole append as one statement."""
        scoped, event = call.prepared.scoped, call.prepared.event
        assert self.w.append_in_one is not None
        at = self._tx_class.time
        params = call.row | call.owner | {"now": call.stamp, "expires_at": call.expires_at, "expected": expected_version}
        for scope, delta, ttl in (
            ("state", scoped.session, self.options.session_ttl),
            ("app", scoped.app, self.options.app_state_ttl),
            ("user", scoped.user, self.options.user_state_ttl),
        ):
            params[f"{scope}_sets"] = jsonvalue.dumps_str({k: v for k, v in delta.items() if v is not DELETE})
            params["state_removed_keys" if scope == "state" else f"{scope}_removed"] = [
                k for k, v in delta.items() if v is DELETE
            ]
            params[f"{scope}_expires_at"] = at(expiry(call.now, ttl))
        stmt = self.w.append_in_one[self.options.soft_delete]

        async def attempt(fresh: bool) -> DriverRow | None:
            try:
                return await driver_fetchone(self.engine, self._tx_class, stmt, params, verify=fresh)
            except Exception as exc:
                if self.rules.is_unique_violation(exc):  # most likely a retried id
                    return None
                raise

        row = await self._retrying(attempt)
        if row is None:
            return None
        event.seq = row[2]
        return event, row[1], False

    async def _finish(self, tx: DriverTx, steps: list[Step]) -> None:
        """Run an append's last statements (one inserts the event) and commit."""
        try:
            await tx.execute_and_commit(steps)
        except Exception as exc:
            if self.rules.is_unique_violation(exc):  # (session, event_id): a retried append
                raise _AlreadyStored from None  # (the other statements cannot clash: upserts, updates)
            raise

    # ------------------------------------------------------------------ state

    async def update_session_state(self, key: Key, scoped: ScopedDelta, now: datetime) -> None:
        fold = self._fold(scoped.session)
        owner = {"app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id}
        at = self._tx_class.time
        stamp, expires_at = at(now), at(expiry(now, self.options.session_ttl))

        shared = self.shared_steps(scoped, key.app_name, key.user_id, now)

        async def work(tx: DriverTx) -> None:
            *_, pending = await self._claim(tx, owner, stamp, expires_at, 0, scoped.session, fold)
            await tx.execute_and_commit([*pending, *shared])

        await self._native(work)

    async def _claim(
        self, tx: DriverTx, owner: dict[str, str], stamp: Any, expires_at: Any, seq_step: int,
        delta: dict[str, Any], fold: _Fold | None,
    ) -> tuple[int, int, int, list[Step]]:
        """Lock and bump the session row `owner` names, and apply the session-state `delta`
        to it: (pk, version before, new last_seq, the statements still to run). `stamp` and
        `expires_at` are the new updated_at and expires_at as the driver stores them.

        The delta goes into the claim's UPDATE (`fold`, see `_fold`); without a fold the
        state is read with the claim and written back whole. Where the claim is a locking
        SELECT (MySQL/MariaDB), the UPDATE is left to run with the transaction's last
        statements, in one round trip. Raises SessionNotFoundError if the session is not active.
        """
        w = self.w
        params = owner | {"now": stamp, "expires_at": expires_at, "seq_step": seq_step}
        if fold is not None:
            params.update(fold.params)
        if w.bump is None:  # UPDATE ... RETURNING: the claim bumps the row
            claim = w.claim_with_state if fold is None else w.folded("claim", *fold.shape)
        else:  # a locking SELECT, then the bump
            claim = w.claim_with_state if fold is None else w.claim
        row = await tx.fetchone(claim, params)
        if row is None:
            raise SessionNotFoundError(f"session {owner['session_id']!r} not found")
        pending: list[Step] = []
        if w.bump is not None:
            pending.append((w.bump if fold is None else w.folded("bump", *fold.shape), params | {"pk": row[0]}))
        if fold is None:
            state = apply_delta(_json(row[3]), delta)
            pending.append((w.set_state, {"pk": row[0], "state": jsonvalue.dumps_str(state)}))
        return row[0], row[1], row[2], pending

    def _fold(self, delta: dict[str, Any]) -> _Fold | None:
        """The parameters that fold a session-state delta into the claim (DialectRules.state_fold_sql),
        or None if the database cannot address one of its keys, or it has too many."""
        if len(delta) > self.rules.max_fold_keys:
            return None
        params: dict[str, Any] = {}
        sets = removes = 0
        paths = self._paths
        for name, value in delta.items():
            at = paths.get(name, _UNKNOWN)
            if at is _UNKNOWN:
                at = self.rules.state_key_path(name)
                if len(paths) < _MAX_PATHS:  # (an agent's state keys are few, and recur)
                    paths[name] = at
            if at is None:
                return None
            if value is DELETE:
                params[f"state_removed_{removes}"] = at
                removes += 1
            else:
                params[f"state_path_{sets}"] = at
                params[f"state_value_{sets}"] = jsonvalue.dumps_str(value)
                sets += 1
        return _Fold((sets, removes), params)

    def shared_steps(self, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime) -> list[Step]:
        """The statements that write the app: and user: parts of a delta, one per key, in
        sorted key order (the order their rows are locked in)."""
        if not scoped.app and not (scoped.user and user_id is not None):
            return []
        targets = [(self.w.app_state, {"app_name": app_name}, scoped.app, self.options.app_state_ttl)]
        if user_id is not None:
            targets.append((self.w.user_state, {"app_name": app_name, "user_id": user_id}, scoped.user, self.options.user_state_ttl))
        time = self._tx_class.time
        at = time(now)
        steps: list[Step] = []
        for sql, owner, delta, ttl in targets:
            expires_at = time(expiry(now, ttl))
            for name in sorted(delta, key=lock_order):
                value = delta[name]
                params = {**owner, "state_key": name, "now": at}
                if value is not DELETE:
                    params.update(value=jsonvalue.dumps_str(value), created_at=at, updated_at=at, expires_at=expires_at)
                    steps.append((sql.upsert, params))
                else:
                    steps.append((sql.soft_delete if self.options.soft_delete else sql.hard_delete, params))
        return steps


def lock_order(state_key: str) -> tuple[int, bytes]:
    """The order shared-state keys are written (and so locked) in: PostgreSQL's jsonb key
    order (shorter first, then bytewise), which the one-statement append follows too."""
    raw = state_key.encode()
    return len(raw), raw


@dataclass(slots=True)
class _Append:
    """One append's inputs, with what every path binds worked out once."""

    key: Key
    prepared: PreparedEvent
    now: datetime
    stamp: Any
    """`now` as the driver stores it (updated_at, created_at)."""
    owner: dict[str, str]
    """The session's ids, as the statements bind them."""
    expires_at: Any
    """The session's new expires_at as the driver stores it."""
    row: dict[str, Any]
    """The event's column values (all but session_pk and seq)."""


@dataclass(frozen=True, slots=True)
class _Fold:
    """A session-state delta as the claim's UPDATE applies it: its shape (keys set, keys
    removed), which picks the statement (WriteSQL.folded), and the statement's parameters."""

    shape: tuple[int, int]
    params: dict[str, Any]


class _AlreadyStored(Exception):  # noqa: N818 - a control-flow signal inside this module, not an error
    """Internal: the event id is already stored in the session; roll back and return that event."""


def event_row(prepared: PreparedEvent, timestamp: Any, stamp: Any) -> dict[str, Any]:
    """The event's column values as the hand-written SQL binds them (all but session_pk and seq);
    `timestamp` is the event's and `stamp` the time of the write, as the driver stores them."""
    event = prepared.event
    content_json, meta_json, delta_json = prepared.json
    removed = [k for k, v in event.state_delta.items() if v is DELETE]
    return {
        "event_id": event.id, "author": event.author, "invocation_id": event.invocation_id,
        "branch": event.branch, "timestamp": timestamp, "content": content_json,
        "state_delta": delta_json, "state_removed": jsonvalue.dumps_str(removed) if removed else None,
        "meta": meta_json, "created_at": stamp, "updated_at": stamp,
    }


def _json(value: Any) -> Any:
    """A JSON column as the driver returned it (text on every driver we use), decoded."""
    return jsonvalue.loads(value) if isinstance(value, (str, bytes)) else value


__all__ = ["SessionWrites", "event_row", "lock_order"]
