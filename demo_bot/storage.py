"""Where analysis results go: SQLite by default, PostgreSQL when given a ``postgresql://`` URL.

PostgreSQL is made to cooperate with gevent the psycogreen way: a psycopg2 wait callback that
polls the connection and waits on its socket with ``gevent.socket.wait_read/wait_write`` (each
wait bounded by the storage timeout), so a slow or dead database blocks one worker greenlet,
never the server. SQLite calls are local and short; they run inline.

Every store is idempotent on MessageSid, so a message retried after a failure is stored once.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import gevent.lock
import gevent.socket

from demo_bot.analysis import AnalysisResult

log = logging.getLogger("demo_bot.storage")

_COLUMNS = "message_sid, sender, kind, verdict, score, work_ms, received_at_s, analysed_at_s"


class StorageError(Exception):
    """The store could not be written or read (the database is down, slow or refused it)."""


class Storage(Protocol):
    """A place to keep analysis results."""

    kind: str
    """``sqlite`` or ``postgresql``."""

    def save(self, result: AnalysisResult) -> None:
        """Store ``result`` (once per MessageSid); raise StorageError on failure."""

    def ping(self) -> None:
        """Check the store answers; raise StorageError otherwise."""

    def count(self) -> int:
        """Results stored."""

    def close(self) -> None:
        """Release connections."""


def _row(result: AnalysisResult) -> tuple[Any, ...]:
    return (
        result.sid,
        result.sender,
        result.kind,
        result.verdict,
        result.score,
        result.work_ms,
        result.received_at_s,
        result.analysed_at_s,
    )


class SqliteStorage:
    """Results in one SQLite file (WAL journal, one connection)."""

    kind = "sqlite"

    def __init__(self, path: str, table: str) -> None:
        self.path = path
        self.table = table
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=2.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (message_sid TEXT PRIMARY KEY, sender TEXT, kind TEXT, "
            "verdict TEXT, score INTEGER, work_ms REAL, received_at_s REAL, analysed_at_s REAL)"
        )

    def save(self, result: AnalysisResult) -> None:
        try:
            self._conn.execute(
                f"INSERT OR IGNORE INTO {self.table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                _row(result),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {type(exc).__name__}") from exc

    def ping(self) -> None:
        try:
            self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {type(exc).__name__}") from exc

    def count(self) -> int:
        try:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {type(exc).__name__}") from exc

    def close(self) -> None:
        self._conn.close()


def gevent_wait_callback(timeout_s: float) -> Callable[[Any], None]:
    """A psycopg2 wait callback that yields to gevent; each socket wait gives up after ``timeout_s``."""
    import psycopg2
    from psycopg2 import extensions

    def wait(conn: Any) -> None:
        while True:
            state = conn.poll()
            if state == extensions.POLL_OK:
                return
            if state == extensions.POLL_READ:
                gevent.socket.wait_read(
                    conn.fileno(), timeout=timeout_s, timeout_exc=psycopg2.OperationalError("read timed out")
                )
            elif state == extensions.POLL_WRITE:
                gevent.socket.wait_write(
                    conn.fileno(), timeout=timeout_s, timeout_exc=psycopg2.OperationalError("write timed out")
                )
            else:
                raise psycopg2.OperationalError(f"bad state from poll: {state!r}")

    return wait


class PostgresStorage:
    """Results in a PostgreSQL table, through a small pool of gevent-friendly connections."""

    kind = "postgresql"

    def __init__(self, url: str, table: str, pool_size: int, timeout_s: float) -> None:
        import psycopg2
        from psycopg2 import extensions

        self._psycopg2 = psycopg2
        extensions.set_wait_callback(gevent_wait_callback(timeout_s))
        self._url = url
        self.table = table
        self._timeout_s = timeout_s
        self._idle: list[Any] = []
        self._slots = gevent.lock.BoundedSemaphore(pool_size)
        self._schema_lock = gevent.lock.RLock()
        self._table_ready = False

    def __repr__(self) -> str:
        return f"PostgresStorage(table={self.table!r})"

    def _connect(self) -> Any:
        conn = self._psycopg2.connect(self._url, connect_timeout=max(1, round(self._timeout_s)))
        conn.autocommit = True
        if not self._table_ready:
            with self._schema_lock:
                if not self._table_ready:
                    with conn.cursor() as cur:
                        cur.execute(
                            f"CREATE TABLE IF NOT EXISTS {self.table} (message_sid TEXT PRIMARY KEY, "
                            "sender TEXT, kind TEXT, verdict TEXT, score INTEGER, work_ms DOUBLE PRECISION, "
                            "received_at_s DOUBLE PRECISION, analysed_at_s DOUBLE PRECISION)"
                        )
                    self._table_ready = True
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=self._timeout_s):
            raise StorageError("postgresql: no pooled connection free")
        conn = None
        try:
            conn = self._idle.pop() if self._idle else self._connect()
            yield conn
        except (self._psycopg2.Error, OSError) as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            raise StorageError(f"postgresql: {type(exc).__name__}") from exc
        except BaseException:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.append(conn)
            self._slots.release()

    def save(self, result: AnalysisResult) -> None:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (message_sid) DO NOTHING",
                _row(result),
            )

    def ping(self) -> None:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def count(self) -> int:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {self.table}")
            row = cur.fetchone()
            return int(row[0])

    def close(self) -> None:
        while self._idle:
            with contextlib.suppress(Exception):
                self._idle.pop().close()


class StorageMonitor:
    """Up/down status of the store, updated by every store attempt and by the periodic probe."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.ok = True
        """False since the last failed attempt, until one succeeds."""
        self.failures = 0
        """Failed attempts since start."""
        self.last_error: str | None = None

    def record_success(self) -> None:
        """An attempt worked."""
        if not self.ok:
            log.warning("storage (%s) answers again", self.storage.kind)
        self.ok = True

    def record_failure(self, error: StorageError) -> None:
        """An attempt failed with ``error``."""
        self.failures += 1
        self.last_error = str(error)
        if self.ok:
            log.warning("storage (%s) is down: %s", self.storage.kind, error)
        self.ok = False

    def probe(self) -> bool:
        """Ping the store now and record the outcome; True when it answered."""
        try:
            self.storage.ping()
        except StorageError as exc:
            self.record_failure(exc)
            return False
        self.record_success()
        return True


__all__ = [
    "PostgresStorage",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "StorageMonitor",
    "gevent_wait_callback",
]
