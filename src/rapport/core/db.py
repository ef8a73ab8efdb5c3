"""Engines and the unit of work.

Reads run on an autocommit connection: no BEGIN/ROLLBACK around them, so a read costs exactly the
round trips of its own queries. Writes run in one transaction per request; on SQLite that
transaction starts with BEGIN IMMEDIATE (with WAL and a busy timeout), because the default deferred
transactions lose concurrent read-modify-write updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import greenlet_spawn

from rapport.core.config import Settings
from rapport.core.dberrors import driver_error, is_unavailable
from rapport.core.sql import LEAN

READ_OPTION = "rapport_read"
# session.info flags: this transaction recorded events (the relays' work) / queued jobs (the
# schedulers'). Acted on after its commit (`Database.committed`).
EVENTS_RECORDED = "rapport_events_recorded"
JOBS_QUEUED = "rapport_jobs_queued"


def dialect_name(session: AsyncSession) -> str:
    """The session's database: "postgresql" or "sqlite" (unbound sessions are SQLite's)."""
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns are encoded and decoded by orjson (several times faster than the standard
# library's json on a listing's rows); both engines use the same pair.
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """SQLite's lower() folds ASCII only; searches, case-insensitive uniqueness and the
    expression indexes built on lower() need Unicode. Every connection that reads or writes
    those indexes (the app's and the migrations') must use the same function."""
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _sqlite_engine(url: str, settings: Settings) -> AsyncEngine:
    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    if not memory and parsed.database:
        from pathlib import Path

        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if memory:
        kwargs["poolclass"] = StaticPool
    else:
        kwargs["pool_size"] = max(settings.db_pool_size, 1)
        kwargs["max_overflow"] = settings.db_max_overflow
        kwargs["pool_timeout"] = settings.db_pool_timeout
    engine = create_async_engine(
        url,
        connect_args={"check_same_thread": False, "isolation_level": None},
        **JSON_CODEC,
        **kwargs,
    )
    busy = int(settings.sqlite_busy_timeout_ms)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not open transactions by itself; "begin" below decides how.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_OPTION):
            return  # autocommit reads: every statement is its own implicit transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: str, settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        "server_settings": {
            "application_name": "rapport",
            "statement_timeout": str(settings.db_statement_timeout_ms),
        }
    }
    if settings.db_pgbouncer:
        import uuid

        connect_args.update(
            statement_cache_size=0,
            prepared_statement_cache_size=0,
            prepared_statement_name_func=lambda: f"__rapport_{uuid.uuid4().hex}__",
        )
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
        connect_args=connect_args,
        **JSON_CODEC,
    )


CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def plan_each_statement(session: Any) -> None:
    """For the rest of the transaction (PostgreSQL), plan every statement with its values.

    A batch's lookups (`email IN (...)` with a thousand values: bulk writes, import chunks) are
    the same statement batch after batch; asyncpg prepares it once and after five runs
    PostgreSQL plans it generically, and with the table's statistics still those of before the
    import, that plan filters every contact of the workspace against the list one value at a
    time: 1.3 s per chunk at 24,000 contacts, growing with the table, against 20 ms planned with
    the values (a hashed list, or the email index once the statistics catch up)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(CUSTOM_PLANS)


class Database:
    """The engines of one database and the session factories built on them."""

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        self.url = url or settings.resolved_database_url
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(self.url, settings)
            read_engine = self.engine.execution_options(**{READ_OPTION: True})
        elif self.url.startswith("postgresql+asyncpg"):
            self.engine = _postgres_engine(self.url, settings)
            read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        else:
            raise ValueError(
                "RAPPORT_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        self.dialect = self.engine.dialect.name
        self.write_sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False
        )
        self.read_sessions = async_sessionmaker(
            read_engine, expire_on_commit=False, autoflush=False
        )
        # Called after a commit that recorded events (wake the relays) or queued jobs (wake the
        # schedulers): apart, so a request's event does not also send a scheduler looking for jobs.
        self.on_events_committed: list[Callable[[], None]] = []
        self.on_jobs_committed: list[Callable[[], None]] = []

    def events_committed(self) -> None:
        for callback in self.on_events_committed:
            callback()

    def jobs_committed(self) -> None:
        for callback in self.on_jobs_committed:
            callback()

    def committed(self, session: AsyncSession) -> None:
        """After `session` committed: wake whoever has work from it now."""
        if session.info.pop(EVENTS_RECORDED, False):
            self.events_committed()
        if session.info.pop(JOBS_QUEUED, False):
            self.jobs_committed()

    @asynccontextmanager
    async def borrow_driver(self) -> AsyncIterator[Any]:
        """A pooled connection's driver connection (asyncpg), for statements that do not go
        through SQLAlchemy's execution (`core.sql.Query`); returned to the pool after."""
        dialect = self.engine.dialect
        try:
            pooled = await greenlet_spawn(self.engine.sync_engine.raw_connection)
        except dialect.loaded_dbapi.Error as exc:  # connecting failed (SQLAlchemy leaves it raw)
            raise driver_error(None, None, exc) from exc
        try:
            yield pooled.driver_connection
        except BaseException:
            # An operation may still be in flight on it (a cancelled request, a lost server):
            # never hand it to the next borrower.
            await greenlet_spawn(pooled.invalidate)
            raise
        else:
            await greenlet_spawn(pooled.close)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


CommitHook = Callable[[AsyncSession], Awaitable[None]]


class UnitOfWork:
    """One per request. The session opens on first use; writes commit once, at the end."""

    def __init__(self, db: Database, *, write: bool) -> None:
        self.db = db
        self.write = write
        self._session: AsyncSession | None = None
        # A write's driver connection as lent to `Query`: (session transaction or savepoint,
        # driver, pooled connection, SQLAlchemy connection), valid while that one lasts.
        self._lent: tuple[Any, Any, Any, Any] | None = None
        # A COPY sent ahead (`send_ahead`): every other statement on the connection waits for it.
        self._ahead: asyncio.Future[Any] | None = None
        self.ahead_depth = 0  # open `core.sql.sent_ahead` blocks: insert_new sends ahead in them
        self.before_commit: list[CommitHook] = []
        self.committed = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            if self.write:
                self._session = self.db.write_sessions()
            else:
                self._session = self.db.read_sessions()
            if self.db.dialect == "postgresql":
                # Its hot statements may run on the driver (`core.sql.Query`).
                self._session.info[LEAN] = self
        return self._session

    @asynccontextmanager
    async def lean_driver(self) -> AsyncIterator[Any]:
        """The driver connection a `Query` runs on.

        - Writes: the session's, inside the request's transaction. SQLAlchemy's asyncpg adapter
          sends BEGIN with its first statement; when ours comes first, it is begun here the same
          way, so SQLAlchemy commits or rolls back whatever ran on it.
        - Reads: the session's, when it already holds one (a request never waits for a second),
          else one borrowed from the pool for this statement alone.
        """
        session = self._session
        if self.write and session is not None:
            lent = self._lent
            sync = session.sync_session
            current = sync.get_nested_transaction() or sync.get_transaction()
            if (
                lent is None or lent[0] is not current or lent[2]._transaction is None
            ):  # first use in this transaction (a service may commit mid-request: a new one) or
                # in this savepoint (asking the session for its connection sends the SAVEPOINT it
                # defers, so a failed statement here rolls back to it)
                conn = await session.connection()
                raw = await conn.get_raw_connection()
                current = sync.get_nested_transaction() or sync.get_transaction()  # as begun
                lent = (current, raw.driver_connection, raw, conn)
            _, driver, raw, conn = lent
            try:
                if raw.dbapi_connection._transaction is None:
                    await raw.dbapi_connection._start_transaction()
                self._lent = lent
                yield driver
            except Exception as exc:
                if is_unavailable(driver_error(None, None, exc)):  # lost: never reuse it
                    await self._discard(conn)
                raise
            except BaseException:  # cancelled mid-statement: the same
                await self._discard(conn)
                raise
            return
        if session is not None and session.in_transaction():
            conn = await session.connection()
            yield (await conn.get_raw_connection()).driver_connection
            return
        async with self.db.borrow_driver() as driver:
            yield driver

    async def _discard(self, conn: Any) -> None:
        self._lent = None
        await conn.invalidate()

    async def send_ahead(self, statement: Callable[[], Awaitable[Any]]) -> None:
        """Start `statement()` (one COPY, on `lean_driver`) and return once its rows are sent,
        not once the server has written them: the caller's next Python work overlaps the
        server's. Any statement after it waits for it first: ours through `settle`, SQLAlchemy's
        on its adapter's own lock, which the COPY holds while it runs."""
        await self.settle()
        if not self.write:  # a read lends no connection of its own to hold: run it here
            await statement()
            return
        async with self.lean_driver():  # the BEGIN or SAVEPOINT it needs, sent from here
            pass
        assert self._lent is not None
        mutex = self._lent[2].dbapi_connection._execute_mutex

        async def run() -> Any:
            async with mutex:
                return await statement()

        self._ahead = asyncio.ensure_future(run())
        # Its first step sends the COPY and its rows (the driver writes them without waiting
        # for the server: its table's column types are cached after the first COPY).
        await asyncio.sleep(0)

    async def settle(self, *, quiet: bool = False) -> None:
        """Wait for the COPY sent ahead, if any, and raise its error (`quiet`: wait, but leave
        the error to whoever is already failing)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        if not quiet:
            await ahead
            return
        with suppress(Exception):  # the error being handled is the one to report
            await ahead

    @property
    def started(self) -> bool:
        return self._session is not None

    async def commit(self) -> None:
        if self._session is None and not self.before_commit:
            return
        session = self.session
        await self.settle()
        for hook in self.before_commit:
            await hook(session)
        await session.commit()
        self.db.committed(session)

    async def rollback(self) -> None:
        await self.settle(quiet=True)
        if self._session is not None:
            await self._session.rollback()

    @classmethod
    @asynccontextmanager
    async def transaction(cls, db: Database) -> AsyncIterator[AsyncSession]:
        """A write transaction outside a request (the relay's batches, an import's chunks) on a
        unit of work's session, so what it writes goes the way a request's writes go (COPY on
        PostgreSQL); it commits when the block ends without an exception."""
        uow = cls(db, write=True)
        try:
            async with uow.session.begin():
                yield uow.session
            db.committed(uow.session)
        finally:
            await uow.close()

    async def close(self) -> None:
        await self.settle(quiet=True)
        self._lent = None
        if self._session is not None:
            await self._session.close()
            self._session = None
