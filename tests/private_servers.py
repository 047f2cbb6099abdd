"""Private PostgreSQL and MariaDB servers for fault tests, which stop, kill and restart them.

A fault test must never take down a server other tests (or other people)
use. So each server here is started by the test itself: a new data
directory in a temporary directory, a free port on 127.0.0.1 (nothing else
listens), stopped and removed at the end.

Binaries are looked up the usual way:

- PostgreSQL: ``initdb`` and ``pg_ctl`` from SESSIONSTORE_TEST_PG_BIN, else
  the newest /usr/lib/postgresql/*/bin (Debian, Ubuntu), else PATH.
- MariaDB: ``mariadbd`` (or ``mysqld``) and ``mariadb-install-db`` (or
  ``mysql_install_db``) from PATH or /usr/sbin.

Missing binaries skip the test with a message saying what to install,
except under CI (CI=true), where a missing prerequisite fails the run.

PostgreSQL refuses to run as root: as root, its commands run as the
``postgres`` user (``runuser -u postgres --``), which owns the directory.
MariaDB runs as root with ``--user=root``.

Usage::

    pg = await PrivatePostgres.create(tmp_dir)     # initdb; not started (tmp_dir must be
                                                   # reachable by the postgres user: not under pytest's 0700 tmp)
    ready_at = await pg.start()                     # time.monotonic() when it first accepted a connection
    url = pg.url()                                  # postgresql://postgres@127.0.0.1:<port>/postgres
    await pg.stop("immediate")                      # or "fast", "smart"
    await pg.destroy()                              # stops it if need be, removes tmp_dir

    db = await PrivateMariaDB.create(tmp_dir)       # mariadb-install-db
    await db.start()
    await db.stop(signal.SIGKILL)                   # or SIGTERM
    await db.destroy()

    async with started(PrivateMariaDB.create, "sessionstore-mariadb-") as db:   # all of the above
        ...
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

STOP_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60.0
POLL_S = 0.005  # how often a starting server is tried: the resolution of its "ready" moment


def missing(what: str, how: str) -> None:
    """Skip (or, under CI, fail) a test whose prerequisite is not installed."""
    message = f"{what} not found; {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _need_driver(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        missing(f"the {module} driver", f"pip install 'sessionstore[{extra}]'")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(*argv: str, check: bool = True, timeout: float = START_TIMEOUT_S) -> str:
    """Run a command without blocking the event loop; its combined output."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    text = out.decode(errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}:\n{text}")
    return text


async def until_ready(
    answers: Callable[[], Awaitable[bool]], what: str, proc: asyncio.subprocess.Process | None = None
) -> float:
    """Poll until `answers()`; the moment it first did (time.monotonic())."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not await answers():
        if proc is not None and proc.returncode is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not accept connections within {START_TIMEOUT_S}s")
        await asyncio.sleep(POLL_S)
    return time.monotonic()


def _pg_bindir() -> Path | None:
    explicit = os.environ.get("SESSIONSTORE_TEST_PG_BIN")
    candidates = [Path(explicit)] if explicit else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(Path(which).parent)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own.

    Authentication: ``postgres`` is trusted; every other user must give a
    password (scram-sha-256), so wrong passwords can be tested.
    """

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = port
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @classmethod
    async def create(cls, root: Path) -> PrivatePostgres:
        _need_driver("asyncpg", "postgres")
        bindir = _pg_bindir()
        if bindir is None:
            missing(
                "PostgreSQL server binaries (initdb, pg_ctl)",
                "install PostgreSQL (e.g. apt-get install postgresql) or set SESSIONSTORE_TEST_PG_BIN to its bin directory",
            )
        assert bindir is not None
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                missing("runuser", "PostgreSQL refuses to run as root; install util-linux or run the tests as another user")
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                missing("a postgres user", "PostgreSQL refuses to run as root; create one or run the tests as another user")
            shutil.chown(root, user="postgres")
        server = cls(bindir, root, free_port())
        await run(
            *server._as_postgres, str(bindir / "initdb"), "-D", str(server.data), "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions",
        )
        hba = server.data / "pg_hba.conf"
        rules = hba.read_text()
        # the superuser connects without a password; every other user needs one
        hba.write_text("host all postgres 127.0.0.1/32 trust\n" + rules)
        with open(server.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                "fsync = off\nshared_buffers = 16MB\nmax_connections = 60\n"
                # a killed server must not lose an acknowledged commit: keep synchronous_commit on
                "synchronous_commit = on\n"
            )
        return server

    def url(self, user: str = "postgres", password: str | None = None, database: str = "postgres") -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    async def pg_ctl(self, *args: str, check: bool = True) -> str:
        return await run(*self._as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args, check=check)

    async def start(self) -> float:
        """Start and wait until it accepts connections; returns that moment (time.monotonic()),
        found by trying to connect every few milliseconds (pg_ctl -w polls ten times slower)."""
        await self.pg_ctl("-l", str(self.root / "server.log"), "-W", "start")
        return await until_ready(self.answers, f"PostgreSQL on port {self.port}")

    async def answers(self) -> bool:
        """Does it accept a connection (and a query) right now?"""
        import asyncpg

        try:
            conn = await asyncpg.connect(self.url(), timeout=2)
        except Exception:  # noqa: BLE001 - refused, starting up, shutting down: not ready
            return False
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
        return True

    async def stop(self, mode: str = "fast", *, wait: bool = True) -> None:
        """pg_ctl stop -m fast|immediate|smart (smart waits for clients; wait=False returns at once)."""
        await self.pg_ctl("-m", mode, "-W" if not wait else "-w", "-t", str(int(STOP_TIMEOUT_S)), "stop")

    async def start_held_in_startup(self) -> None:
        """Start it in standby mode with a restore_command that hangs, so it answers
        every connection with "the database system is starting up" until stopped."""
        (self.data / "standby.signal").touch()
        if self._as_postgres:
            shutil.chown(self.data / "standby.signal", user="postgres")
        await self.pg_ctl(
            "-l", str(self.root / "server.log"), "-W", "-o", "-c hot_standby=off -c restore_command='sleep 20'", "start"
        )

    async def release_from_startup(self) -> None:
        """Stop the held server (see start_held_in_startup) and make it a normal server again."""
        await self.stop("immediate")
        (self.data / "standby.signal").unlink()

    async def is_running(self) -> bool:
        return "server is running" in await self.pg_ctl("status", check=False)

    async def destroy(self) -> None:
        if self.data.exists() and await self.is_running():
            await self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _mariadb_binaries() -> tuple[str, str] | None:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/usr/local/sbin"
    server = shutil.which("mariadbd", path=path) or shutil.which("mysqld", path=path)
    install = shutil.which("mariadb-install-db", path=path) or shutil.which("mysql_install_db", path=path)
    return (server, install) if server and install else None


class PrivateMariaDB:
    """A MariaDB server of the test's own; root has no password."""

    def __init__(self, server: str, install: str, root: Path, port: int) -> None:
        self.server = server
        self.install = install
        self.root = root
        self.data = root / "data"
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None
        self.extra_args: list[str] = []
        """More mariadbd options for the next start (e.g. TLS certificates)."""

    @classmethod
    async def create(cls, root: Path) -> PrivateMariaDB:
        _need_driver("aiomysql", "mysql")
        found = _mariadb_binaries()
        if found is None:
            missing("MariaDB server binaries (mariadbd, mariadb-install-db)", "install MariaDB (e.g. apt-get install mariadb-server)")
        assert found is not None
        server = cls(*found, root, free_port())
        user = ["--user=root"] if os.geteuid() == 0 else []
        await run(
            server.install, "--no-defaults", f"--datadir={server.data}", "--auth-root-authentication-method=normal",
            "--skip-test-db", "--skip-name-resolve", *user,
        )
        return server

    def url(self, user: str = "root", password: str | None = None, database: str = "mysql") -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"mysql://{auth}@127.0.0.1:{self.port}/{database}"

    async def start(self) -> float:
        """Start and wait until it accepts logins; returns that moment (time.monotonic())."""
        argv = [
            self.server, "--no-defaults", f"--datadir={self.data}", f"--socket={self.root / 'mysqld.sock'}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.root / 'mysqld.pid'}",
            f"--log-error={self.root / 'server.log'}", "--skip-log-bin", "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=1", "--max-connections=100",
            *self.extra_args,
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")
        log = open(self.root / "stdout.log", "ab")
        self.proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log)
        log.close()
        return await until_ready(self.answers, f"MariaDB on port {self.port}", self.proc)

    async def answers(self) -> bool:
        """Does it accept a login right now?"""
        import aiomysql

        try:
            conn = await aiomysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2)
        except Exception:  # noqa: BLE001 - not up yet
            return False
        conn.close()
        return True

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM (a clean shutdown) or SIGKILL (a crash); waits for the process to end."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)

    async def destroy(self) -> None:
        await self.stop(signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


class Server(Protocol):
    async def start(self) -> Any: ...
    async def destroy(self) -> None: ...


S = TypeVar("S", bound=Server)


@asynccontextmanager
async def started(
    make: Callable[[Path], Awaitable[S]], prefix: str, configure: Callable[[S], None] | None = None
) -> AsyncIterator[S]:
    """A server made by `make` in a new temporary directory (named with `prefix`), set up by
    `configure`, started; destroyed afterwards, or its directory removed if it never got made."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = None
    try:
        server = await make(root)
        if configure is not None:
            configure(server)
        await server.start()
        yield server
    finally:
        if server is not None:
            await server.destroy()
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["PrivateMariaDB", "PrivatePostgres", "free_port", "missing", "run", "started"]
