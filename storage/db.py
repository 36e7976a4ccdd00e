"""Database engines, the worker threads that drive them, and migrations.

Haven talks to its database through a *synchronous* SQLAlchemy engine (pysqlite, psycopg 3). Each public
storage call is one synchronous function that runs on a worker thread owned by the ``Database`` — one
thread hop per call, where an asyncio driver costs a hop per statement, ``BEGIN``, ``COMMIT`` and pool
checkout.

SQLite gets WAL, a busy timeout, foreign keys and ``synchronous=NORMAL``. Write transactions start with
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing with "database is locked" halfway
through a transaction; within one process they queue on a lock first, which wakes faster than SQLite's
busy sleeps. Reads run without a transaction (or, when they need one snapshot, a plain deferred
``BEGIN``) and never take the write lock. PostgreSQL runs through psycopg 3 with ``pool_pre_ping`` (a
restarted server is survived); its reads run in autocommit mode (one statement, one round trip). Every
PostgreSQL session bounds its waits (``postgres_session_args``): a statement waits at most
``PG_LOCK_TIMEOUT_MS`` for a lock, a session idle in a transaction is ended after
``PG_IDLE_IN_TRANSACTION_MS``, and TCP keepalives on both ends notice a dead peer within about 30 s, so a
dead holder's advisory locks and sessions go away within a minute (a frozen one's, whose kernel still
answers keepalives, within the lock session's idle limit: ``conversation_locks.LOCK_IDLE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Result, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import StaticPool

from bot.ports import StorageUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Execution option for reads on SQLite: AUTOCOMMIT (no transaction) or SNAPSHOT (a deferred BEGIN).
READ_MODE = "haven_read_mode"
AUTOCOMMIT = "autocommit"
SNAPSHOT = "snapshot"
SQLITE_WORKERS = 4
POSTGRES_WORKERS = 8

# PostgreSQL session settings (constants: they bound failure cases, there is nothing to tune per site).
# A statement that waits longer than this for a row or table lock fails (the turn is retried, see
# bot.failures) instead of queueing without end behind a stuck holder; Haven's transactions are short.
PG_LOCK_TIMEOUT_MS = 15_000
# A session left idle inside a transaction (its process frozen or gone) is ended by the server, and its
# locks with it. Haven never keeps a transaction open across a model call.
PG_IDLE_IN_TRANSACTION_MS = 30_000
# TCP keepalives: probe after 15 s of silence, every 5 s, give up after 3 missed probes (~30 s). libpq's
# own notice a dead server; the server's (tcp_keepalives_*) notice a dead Haven host, which is what
# frees the session-level advisory locks of a process whose host vanished without a TCP reset.
PG_KEEPALIVES_IDLE = 15
PG_KEEPALIVES_INTERVAL = 5
PG_KEEPALIVES_COUNT = 3

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A")


def dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_…``). PostgreSQL's dialect package is imported only
    on PostgreSQL: on SQLite it was 2 MB and 55 ms of every start for statements never built there."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def normalize_url(url: str) -> str:
    """Map the plain URLs people write onto the (synchronous) drivers Haven ships with."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"):
        parsed = parsed.set(drivername="sqlite+pysqlite")
    elif driver in (
        "postgres",
        "postgresql",
        "postgresql+psycopg",
        "postgresql+psycopg2",
        "postgresql+asyncpg",
    ):
        parsed = parsed.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(f"unsupported database driver {driver!r} (use sqlite:/// or postgresql://)")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_in_memory(url: str) -> bool:
    db = make_url(url).database
    return not db or db == ":memory:" or "mode=memory" in db


def create_sync_engine(url: str, **kwargs: Any) -> sa.Engine:
    """The synchronous SQLAlchemy engine, with Haven's SQLite set-up (used by migrations too)."""
    url = normalize_url(url)
    # Driver errors quote their statement parameters, which can be people's words: keep them out of logs.
    kwargs.setdefault("hide_parameters", True)
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        connect_args = {**postgres_session_args(url), **kwargs.pop("connect_args", {})}
        return sa.create_engine(url, connect_args=connect_args, **kwargs)
    if _sqlite_in_memory(url):
        # One shared connection, or every thread would see a database of its own.
        kwargs.setdefault("poolclass", StaticPool)
    else:
        db = make_url(url).database
        assert db
        Path(db).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    # Pooled connections move between worker threads (never used by two at once).
    connect_args = {"timeout": 30, "check_same_thread": False, **kwargs.pop("connect_args", {})}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    _sqlite_pragmas(engine)
    return engine


def postgres_session_args(url: str) -> dict[str, Any]:
    """psycopg connect arguments that bound a PostgreSQL session's waits (see the constants above).

    What the URL already sets wins: a key in its query string is left alone, and its ``options`` are
    kept, after Haven's, so that a ``-c`` of the operator's overrides Haven's.
    """
    query = make_url(url).query
    server = {
        "lock_timeout": PG_LOCK_TIMEOUT_MS,
        "idle_in_transaction_session_timeout": PG_IDLE_IN_TRANSACTION_MS,
        "tcp_keepalives_idle": PG_KEEPALIVES_IDLE,
        "tcp_keepalives_interval": PG_KEEPALIVES_INTERVAL,
        "tcp_keepalives_count": PG_KEEPALIVES_COUNT,
    }
    options = " ".join(f"-c {name}={value}" for name, value in server.items())
    extra = query.get("options")
    if extra:
        options = f"{options} {extra if isinstance(extra, str) else ' '.join(extra)}"
    client = {
        "keepalives": 1,
        "keepalives_idle": PG_KEEPALIVES_IDLE,
        "keepalives_interval": PG_KEEPALIVES_INTERVAL,
        "keepalives_count": PG_KEEPALIVES_COUNT,
    }
    return {"options": options, **{k: v for k, v in client.items() if k not in query}}


def _sqlite_pragmas(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that "begin" below really is the first statement.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(READ_MODE)
        if mode == AUTOCOMMIT:
            return  # each statement is its own transaction
        # Straight to the driver: a statement through SQLAlchemy costs ten times more, per transaction.
        conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN" if mode == SNAPSHOT else "BEGIN IMMEDIATE"
        )


def open_database(url: str, *, workers: int | None = None, **kwargs: Any) -> Database:
    """A ``Database`` for ``url``: a synchronous engine plus ``workers`` threads to run calls on.

    The pool holds a connection per worker, one for each repository's advisory-lock session and a few
    for direct use (migrations, tests), so a worker never waits for a connection: many concurrent turns
    in several processes cannot starve each other of connections.
    """
    url = normalize_url(url)
    sqlite = is_sqlite(url)
    if sqlite and _sqlite_in_memory(url):
        workers = 1  # a single shared connection: one thread at a time
    else:
        workers = workers or (SQLITE_WORKERS if sqlite else POSTGRES_WORKERS)
        kwargs.setdefault("pool_size", workers + 2)
        kwargs.setdefault("max_overflow", workers)
        kwargs.setdefault("pool_timeout", 30)
    return Database(create_sync_engine(url, **kwargs), workers=workers)


class Database:
    """A synchronous SQLAlchemy engine and the threads that call it.

    ``run(fn, ...)`` runs one synchronous storage call on a worker thread; inside it, ``read()`` and
    ``write()`` open a transaction. ``connect()``/``begin()`` offer an ``AsyncConnection``-like view for
    tests and one-off scripts. ``dispose()`` stops the threads and closes every pooled connection; the
    object stays usable (threads and connections are recreated on demand), like an engine.
    """

    def __init__(self, engine: sa.Engine, *, workers: int) -> None:
        self._engine = engine
        self._workers = max(1, workers)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._sqlite = engine.dialect.name == "sqlite"
        self._read_engine: sa.Engine
        self._snapshot_engine: sa.Engine
        if self._sqlite:
            self._read_engine = engine.execution_options(**{READ_MODE: AUTOCOMMIT})
            self._snapshot_engine = engine.execution_options(**{READ_MODE: SNAPSHOT})
        else:
            self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._snapshot_engine = engine
        # SQLite has one writer at a time; queue this process's writers here rather than in busy sleeps.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self._sqlite else contextlib.nullcontext()
        )
        self._generation = itertools.count(1)
        self.generation = 0
        self._closers: list[Callable[[], None]] = []

    @property
    def sync_engine(self) -> sa.Engine:
        return self._engine

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    @property
    def url(self) -> sa.URL:
        return self._engine.url

    def bump_generation(self) -> None:
        """Stored messages were rewritten in bulk (redaction): in-process caches must read them again."""
        self.generation = next(self._generation)

    def on_dispose(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` (on a thread) when disposing, before the pool closes: e.g. a held session."""
        self._closers.append(closer)

    # -- worker threads --------------------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._executor_lock:
                executor = self._executor
                if executor is None:
                    executor = ThreadPoolExecutor(self._workers, thread_name_prefix="haven-db")
                    self._executor = executor
        return executor

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a worker thread: the one thread hop of a storage call."""
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool(), call)
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
                # Callers above storage need to know "try again later", not which driver said so.
                raise StorageUnavailable(type(exc.orig).__name__) from exc
            raise

    @contextlib.contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A connection for reading (worker thread only); it never takes SQLite's write lock.

        Each statement sees the latest committed data (autocommit). ``snapshot=True`` puts the statements
        in one transaction: a deferred ``BEGIN`` on SQLite (one consistent snapshot), read committed on
        PostgreSQL.
        """
        with (self._snapshot_engine if snapshot else self._read_engine).connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (worker thread only): ``BEGIN IMMEDIATE`` on SQLite; commits on success."""
        with self._write_lock, self._engine.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        """Wait for running calls, stop the threads and close every connection."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True)
        for closer in self._closers:
            await asyncio.to_thread(closer)
        await asyncio.to_thread(self._engine.dispose)

    # -- an AsyncConnection-like view, for tests and scripts ----------------------------------------------

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnectionView]:
        # Not on the worker threads: a view may hold a transaction across awaits, and workers must never
        # wait for it.
        conn = await asyncio.to_thread(self._engine.connect)
        try:
            yield AsyncConnectionView(conn)
        finally:
            await asyncio.to_thread(conn.close)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnectionView]:
        async with self.connect() as view:
            await asyncio.to_thread(view.sync_connection.begin)
            try:
                yield view
            except BaseException:
                await view.rollback()
                raise
            await view.commit()


@dataclass(slots=True)
class _Call(Generic[A, T]):
    arg: A
    future: asyncio.Future[T]
    since: float  # loop time it began waiting


class Grouped(Generic[A, T]):
    """Group commit: ``await grouped(arg)`` runs ``fn([arg, ...])`` on a worker thread together with the
    calls that arrived while the group before it was being written: one thread hop and one transaction
    (``fn`` opens it) for all of them, each caller still getting its own result, or its own exception.

    A lone call goes at once, as through ``Database.run``; only calls that would have queued for the
    database anyway wait, and for no longer than the group ahead of them takes. A group that stalls
    (a row lock another process holds) does not hold up the rest: a call that has waited
    ``stall_seconds`` (at most about twice that) starts another group beside it, up to ``lanes`` at once.

    ``fn`` takes the arguments in arrival order and returns their results in the same order. When it
    raises ``StorageUnavailable``, every call of the group gets it (the database is away for all of them);
    any other exception is a fault of one call's, so the group's calls run again one by one, and only
    that call's caller gets it.
    """

    def __init__(
        self,
        db: Database,
        fn: Callable[[list[A]], list[T]],
        *,
        max_group: int = 64,
        lanes: int = 4,
        stall_seconds: float = 0.05,
    ) -> None:
        self._db, self._fn = db, fn
        self._max_group, self._lanes, self._stall = max_group, lanes, stall_seconds
        self._waiting: list[_Call[A, T]] = []
        self._writing: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        # The loop the pending state belongs to: a repository outliving one loop (tests) starts afresh.
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, arg: A) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._waiting, self._writing, self._timer = loop, [], set(), None
        call: _Call[A, T] = _Call(arg, loop.create_future(), loop.time())
        self._waiting.append(call)
        if not self._writing:
            self._start()
        elif self._timer is None:
            self._timer = loop.call_at(call.since + self._stall, self._unstall)
        return await call.future

    def _start(self) -> None:
        # A caller cancelled while it waited (its client went away) was never acknowledged: not written.
        waiting = [c for c in self._waiting if not c.future.done()]
        group, self._waiting = waiting[: self._max_group], waiting[self._max_group :]
        if group:
            task = asyncio.get_running_loop().create_task(self._write(group), name="grouped-write")
            self._writing.add(task)

    def _unstall(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._waiting[0].since >= self._stall and len(self._writing) < self._lanes:
            self._start()
        if self._waiting:
            # Look again one stall from now (also with every lane busy: then a lane that finishes takes
            # the next group anyway, and this only keeps an eye on it, never spinning).
            self._timer = loop.call_later(self._stall, self._unstall)

    async def _write(self, group: list[_Call[A, T]]) -> None:
        going_on = False
        try:
            await self._write_group(group)
            going_on = True
        finally:
            for c in group:
                c.future.cancel()  # only if still unsettled: the loop is going away, nobody waits for ever
            task = asyncio.current_task()
            if task is not None:
                self._writing.discard(task)
            # This lane takes the next group: the calls that waited behind this one go now, together.
            if going_on and self._waiting:
                self._start()

    async def _write_group(self, group: list[_Call[A, T]]) -> None:
        try:
            results = await self._db.run(self._fn, [c.arg for c in group])
        except StorageUnavailable as exc:
            for c in group:
                # One exception object each: every caller raises and logs its own.
                _settle(c.future, exc=_unavailable(exc))
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0].future, exc=exc)
            else:
                await self._one_by_one(group)
        else:
            for c, result in zip(group, results, strict=True):
                _settle(c.future, result=result)

    async def _one_by_one(self, group: list[_Call[A, T]]) -> None:
        for c in group:
            try:
                (result,) = await self._db.run(self._fn, [c.arg])
            except Exception as exc:
                _settle(c.future, exc=exc)
            else:
                _settle(c.future, result=result)


def _unavailable(exc: StorageUnavailable) -> StorageUnavailable:
    copy = StorageUnavailable(*exc.args)
    copy.__cause__ = exc.__cause__
    return copy


def _settle(future: asyncio.Future[T], *, result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():
        return  # its caller was cancelled meanwhile; what was written is the inbox's to recover
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class AsyncConnectionView:
    """Just enough of ``AsyncConnection``: ``execute``, ``run_sync``, ``commit``, ``rollback``."""

    def __init__(self, conn: Connection) -> None:
        self.sync_connection = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        return await asyncio.to_thread(self._execute, statement, parameters)

    def _execute(self, statement: Any, parameters: Any) -> Result[Any]:
        result = self.sync_connection.execute(statement, parameters)
        # Buffer rows in the thread, so the caller never touches the cursor.
        return result.freeze()() if result.returns_rows else result

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, self.sync_connection, *args, **kwargs)

    async def commit(self) -> None:
        await asyncio.to_thread(self.sync_connection.commit)

    async def rollback(self) -> None:
        await asyncio.to_thread(self.sync_connection.rollback)


# -- migrations ---------------------------------------------------------------------------------------


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on "%" in passwords.
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    # Alembic (about 11 MB and 0.15 s to import) is loaded only when there is something to apply:
    # every start but the first finds the database at the newest revision.
    if revision == "head" and at_head(url):
        return
    from alembic import command

    command.upgrade(alembic_config(url), revision)


_REVISION = re.compile(r"^revision(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def script_heads() -> frozenset[str] | None:
    """The newest revisions of the migration scripts, read from their ``revision`` and
    ``down_revision`` lines without Alembic; None when a script does not read plainly (then Alembic
    decides). ``tests/test_storage.py`` holds this to Alembic's own answer."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return frozenset(revisions - parents) or None


def at_head(url: str) -> bool:
    """The database's ``alembic_version`` is exactly the scripts' heads (False when it cannot say:
    no such table yet, an in-memory database, a script Alembic must read)."""
    heads = script_heads()
    if heads is None or _sqlite_in_memory(normalize_url(url)):
        return False
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            stored = {row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
    except DBAPIError:
        return False
    finally:
        engine.dispose()
    return stored == heads


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronous Alembic) on a thread of their own."""
    await asyncio.to_thread(upgrade_sync, url, revision)
