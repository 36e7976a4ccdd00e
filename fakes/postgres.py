"""A throwaway PostgreSQL server for the test session.

``start_postgres()`` runs ``initdb`` into a fresh temporary directory and starts the server with
``pg_ctl -w`` on 127.0.0.1 (a free port, unix sockets in the same directory, durability switched off for
speed). As root, PostgreSQL refuses to run, so the binaries run as the ``postgres`` user and the directory
is owned by it. ``stop()`` shuts the server down and removes the directory.

Nothing here is pytest-specific; ``tests/conftest.py`` wraps it in fixtures.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from fakes.ports import free_port

__all__ = [
    "PostgresError",
    "PostgresServer",
    "find_postgres_bindir",
    "in_ci",
    "postgres_available",
    "start_postgres",
    "to_libpq_url",
    "unique_database_name",
]

SUPERUSER = "postgres"
"""Name of the bootstrap superuser (``initdb -U``); trust auth, so no password."""

DEFAULT_DATABASE = "haven_test"
OS_USER_AS_ROOT = "postgres"
_DEBIAN_GLOB_ROOT = Path("/usr/lib/postgresql")
_REQUIRED = ("initdb", "pg_ctl", "postgres")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"

_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_connections": "200",
}


class PostgresError(RuntimeError):
    """The throwaway server could not be set up, started or stopped."""


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set (to anything but an explicit false)."""
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no")


def _is_root() -> bool:
    return os.geteuid() == 0


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _REQUIRED)


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_postgres_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    ``initdb`` on PATH wins (symlinks resolved, so ``pg_ctl`` finds its ``postgres``); then Debian's
    ``/usr/lib/postgresql/<version>/bin``, highest version first.
    """
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
        candidates.append(Path(os.path.realpath(on_path)).parent)
    if _DEBIAN_GLOB_ROOT.is_dir():
        versions = sorted(_DEBIAN_GLOB_ROOT.glob("*/bin"), key=_version_key, reverse=True)
        candidates.extend(versions)
    for directory in candidates:
        if _has_binaries(directory):
            return directory
    return None


def _as_owner(args: Sequence[str]) -> list[str]:
    """The command that runs ``args`` as the server's OS user: ourselves, or ``postgres`` as root."""
    if not _is_root():
        return list(args)
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", OS_USER_AS_ROOT, "--", *args]
    su = shutil.which("su") or "su"
    return [su, "-s", "/bin/sh", OS_USER_AS_ROOT, "-c", shlex.join(args)]


def postgres_available() -> str | None:
    """``None`` when a throwaway server can be started here, otherwise the reason why not."""
    if find_postgres_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
            "/usr/lib/postgresql/*/bin; install the `postgresql` package (scripts/test does this)"
        )
    if _is_root():
        try:
            pwd.getpwnam(OS_USER_AS_ROOT)
        except KeyError:
            return f"running as root, but there is no `{OS_USER_AS_ROOT}` user to run PostgreSQL as"
        if not shutil.which("runuser") and not shutil.which("su"):
            return "running as root, but neither `runuser` nor `su` is available to drop privileges"
    return None


def to_libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) → ``postgresql://…`` (libpq / ``psycopg.connect``)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def unique_database_name(hint: str = "") -> str:
    """A fresh, valid database name, e.g. ``t_test_ending_sqlite_3f2a9c1b``."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:40]
    suffix = uuid.uuid4().hex[:10]
    return f"t_{cleaned}_{suffix}" if cleaned else f"t_{suffix}"


def _clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


@dataclass
class PostgresServer:
    """A running throwaway server. Use ``start_postgres()`` to get one."""

    bindir: Path
    base_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    database: str = DEFAULT_DATABASE
    timings: dict[str, float] = field(default_factory=dict)
    _running: bool = False
    _removed: bool = False

    # -- paths and URLs ---------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the session's default database (``haven_test``)."""
        return self.url_for(self.database)

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def startup_seconds(self) -> float:
        """Wall time of initdb + first start + creating the default database."""
        return self.timings.get("total", 0.0)

    # -- processes --------------------------------------------------------------------------------------
    def _run(self, args: Sequence[str], *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        cmd = _as_owner(args)
        try:
            result = subprocess.run(
                cmd,
                cwd=self.base_dir,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{args[0]} timed out after {timeout}s{self._log_tail()}") from exc
        if result.returncode != 0:
            raise PostgresError(
                f"{' '.join(args)} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )
        return result

    def _pg_ctl(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *args], timeout=timeout)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- {self.log_path} (tail) ---\n{tail}" if tail else ""

    def read_log(self) -> str:
        """The server's log so far (for assertions and debugging)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _initdb(self) -> None:
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        settings = {
            **_SERVER_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base_dir}'",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        # Appending keeps the file's owner (the postgres user when we are root).
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write("\n# haven test server\n" + conf)

    def start(self, timeout: float = 60.0) -> None:
        """Start the (stopped) server and wait until it accepts connections."""
        if self._running:
            return
        self._pg_ctl("start", "-w", "-t", str(int(timeout)), "-l", str(self.log_path), timeout=timeout + 10)
        self._running = True

    def shutdown(self, mode: str = "fast") -> None:
        """Stop the server but keep its data (``start()`` brings it back). Modes: smart/fast/immediate."""
        if not self._running:
            return
        self._pg_ctl("stop", "-w", "-m", mode)
        self._running = False

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port; open connections are cut, data survives."""
        self.shutdown(mode)
        self.start()

    def stop(self) -> None:
        """Tear down: stop the server and remove its directory. Safe to call twice."""
        if self._removed:
            return
        try:
            if self._running:
                try:
                    self.shutdown("immediate")
                except PostgresError:
                    self._running = False
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self._removed = True

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------------------------
    def connect(self, dbname: str = "postgres", **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        """A plain (sync, autocommit) psycopg connection as the superuser."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
            **kwargs,  # type: ignore[arg-type]
        )

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database (a unique name when ``name`` is None) and return its SQLAlchemy URL.

        With ``template``, the new database is a copy of that one (which nobody may be connected to).
        """
        name = name or unique_database_name()
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r} (letters, digits, _; max 63)")
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting any sessions still using it."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @contextlib.contextmanager
    def temporary_database(self, hint: str = "", *, template: str | None = None) -> Iterator[str]:
        """A fresh database for one test (a copy of ``template`` if given): yields its URL, drops it
        afterwards.

        If the test left the server stopped (fault tests), it is started again first.
        """
        name = unique_database_name(hint)
        url = self.create_database(name, template=template)
        try:
            yield url
        finally:
            if not self._running:
                self.start()
            self.drop_database(name)


def _make_base_dir() -> Path:
    """A fresh temp dir that the server's OS user can use and whose socket path is short enough."""
    parents = list(dict.fromkeys([tempfile.gettempdir(), "/tmp"]))
    owner = pwd.getpwnam(OS_USER_AS_ROOT) if _is_root() else None
    problems: list[str] = []
    for parent in parents:
        base = Path(tempfile.mkdtemp(prefix="haven-pg-", dir=parent))
        if len(str(base)) > _SOCKET_PATH_MAX - len("/.s.PGSQL.65535"):
            problems.append(f"{base}: path too long for a unix socket")
            shutil.rmtree(base, ignore_errors=True)
            continue
        if owner is None:
            return base
        os.chown(base, owner.pw_uid, owner.pw_gid)
        check = subprocess.run(
            _as_owner(["test", "-w", str(base), "-a", "-x", str(base)]),
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            return base
        problems.append(f"{base}: not accessible to the {OS_USER_AS_ROOT} user")
        shutil.rmtree(base, ignore_errors=True)
    raise PostgresError("no usable temporary directory: " + "; ".join(problems))


def start_postgres(*, attempts: int = 3) -> PostgresServer:
    """initdb + start a throwaway server with database ``haven_test``; the caller must ``stop()`` it.

    A leftover server is also stopped at interpreter exit, as a safety net.
    """
    reason = postgres_available()
    if reason:
        raise PostgresError(reason)
    bindir = find_postgres_bindir()
    assert bindir is not None
    t0 = time.perf_counter()
    base = _make_base_dir()
    server = PostgresServer(bindir=bindir, base_dir=base, port=free_port())
    try:
        server._initdb()
        t1 = time.perf_counter()
        for attempt in range(1, attempts + 1):
            try:
                server.start()
                break
            except PostgresError:
                # Another process may have grabbed the port between probing and binding: try another.
                if attempt == attempts or "already in use" not in server.read_log():
                    raise
                old_port, server.port = server.port, free_port()
                conf = server.data_dir / "postgresql.conf"
                text = conf.read_text().replace(f"port = {old_port}\n", f"port = {server.port}\n")
                with conf.open("r+") as handle:  # rewrite in place: keeps the owner
                    handle.write(text)
                    handle.truncate()
        t2 = time.perf_counter()
        server.create_database(server.database)
        t3 = time.perf_counter()
    except BaseException:
        server.stop()
        raise
    server.timings = {"initdb": t1 - t0, "start": t2 - t1, "createdb": t3 - t2, "total": t3 - t0}
    atexit.register(server.stop)
    return server
