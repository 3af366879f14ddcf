"""`SQLiteEventStore`: the event log in one SQLite file (WAL), shared safely by several processes.

The on-disk format is public (see docs/eventstore.md): a plain ``events`` table whose
``UNIQUE(stream_id, version)`` is the optimistic-concurrency guarantee, plus ``idempotency_keys``,
``snapshots`` and ``meta``. Every write is one ``BEGIN IMMEDIATE`` transaction: the version check, the
previous hash and the insert happen under the database's write lock, so concurrent writers in other
processes can neither interleave versions nor fork the hash chain. sqlite3 errors never leave this module:
they become :class:`StoreError`, :class:`ConcurrencyError` or :class:`CorruptLogError` with a message that
names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from eventstore.codec import Codec
from eventstore.errors import ConcurrencyError, CorruptLogError, StoreError
from eventstore.hash_chain import GENESIS_HASH, RawRow
from eventstore.records import VerifyResult
from eventstore.sqlite_errors import set_wal, translate
from eventstore.store import Clock, EventStore, Prepared
from eventstore.trusted_head import Head, HeadFile, head_problem

log = logging.getLogger("calmops.eventstore")

__all__ = ["SQLiteEventStore", "FORMAT", "FORMAT_VERSION"]

FORMAT = "calmops-eventlog"
FORMAT_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT NOT NULL,  -- JSON object, canonical spelling
    recorded_at    TEXT NOT NULL,  -- ISO-8601 UTC, microseconds
    hash           TEXT NOT NULL,  -- hex sha256(previous hash + canonical record)
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    stream_id      TEXT NOT NULL,
    key            TEXT NOT NULL,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    PRIMARY KEY (stream_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    schema    TEXT NOT NULL,
    state     TEXT NOT NULL  -- JSON object
);
"""

_STATE_SQL = (
    "SELECT COALESCE((SELECT MAX(version) FROM events WHERE stream_id = ?), 0), "
    "COALESCE((SELECT MAX(position) FROM events), 0), "
    f"COALESCE((SELECT hash FROM events ORDER BY position DESC LIMIT 1), '{GENESIS_HASH}')"
)
_INSERT_SQL = (
    "INSERT INTO events (position, stream_id, version, type, schema_version, payload, recorded_at, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "position, stream_id, version, type, schema_version, payload, recorded_at, hash"


class SQLiteEventStore(EventStore):
    """An :class:`EventStore` in a SQLite file; a missing file (and its folder) is created.

    ``synchronous="NORMAL"`` (default) survives a crash of the program but may lose the last commits on a
    power loss or OS crash; ``"FULL"`` also survives those, at roughly a third of the write rate.
    ``busy_timeout`` (seconds) is how long a write waits for another process's write lock before giving up
    with a StoreError.

    The log's last (position, hash) is also kept in ``<log>.head`` (`trusted_head`), written after every
    commit. Opening the store checks the log against it (``check_head=False`` skips that, for ``verify``,
    which reports it instead), and an append refuses to extend a log that ends before the trusted head or
    whose chain was rewritten: a truncated or rewritten log raises CorruptLogError instead of being used.

    >>> import tempfile, os
    >>> from eventstore import EventData
    >>> folder = tempfile.mkdtemp()
    >>> with SQLiteEventStore(os.path.join(folder, "log", "events.db")) as store:
    ...     _ = store.append("s", [EventData("BlockArrived", {"block": 1})], expected_version=0)
    ...     [(r.position, r.type, r.payload) for r in store.read_all()]
    [(1, 'BlockArrived', {'block': 1})]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        codec: Codec | None = None,
        clock: Clock | None = None,
        synchronous: str = "NORMAL",
        busy_timeout: float = 30.0,
        check_head: bool = True,
    ) -> None:
        super().__init__(codec=codec, clock=clock)
        self.path = Path(path)
        if not isinstance(synchronous, str) or synchronous.upper() not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, int | float)
            or not busy_timeout >= 0
        ):
            raise StoreError(f"busy_timeout must be a number of seconds >= 0, got {busy_timeout!r}")
        self.synchronous = synchronous.upper()
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._check_file()
        self.head_file = HeadFile(self.path.with_name(self.path.name + ".head"))
        self._conn = self._connect()
        if check_head:
            try:
                self.check_head()
            except BaseException:
                self.close()
                raise

    # -- opening --------------------------------------------------------------------------------------

    def _describe(self) -> str:
        return f"event log {self.path}"

    def _check_file(self) -> None:
        path = self.path
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise StoreError(f"{path!s} is not a file path: use InMemoryEventStore for a log in memory")
        if path.is_dir():
            raise StoreError(f"{path} is a folder, not a calmops event log: give the path of a file")
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder {path.parent} for the event log: {exc.strerror}; "
                    f"check the path and your permissions"
                ) from exc
            return
        try:
            with open(path, "rb") as handle:
                header = handle.read(100)
            size = path.stat().st_size
        except OSError as exc:
            raise StoreError(
                f"cannot read {path}: {exc.strerror}; check the path and your permissions"
            ) from exc
        if size == 0 or not header.strip(b"\0"):
            # empty: SQLite will initialise it; all zeros: another connection is writing its first page right
            # now (SQLite's own locks make the two take turns; a file that stays zeros fails there, named)
            return
        if not header.startswith(_SQLITE_MAGIC):
            raise StoreError(
                f"{path} is not a calmops event log (not a SQLite database): check the path; "
                f"nothing was changed"
            )
        if len(header) < 100:
            raise CorruptLogError(
                f"{path} is truncated ({size} bytes, shorter than a SQLite header): restore "
                f"the log from a backup"
            )
        if not Path(f"{path}-wal").exists():  # no writer has it open: the header's size must be whole
            page_size = int.from_bytes(header[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            pages = int.from_bytes(header[28:32], "big")
            valid = header[24:28] == header[92:96] and pages > 0
            if valid and page_size and size < pages * page_size:
                raise CorruptLogError(
                    f"{path} is truncated: its header says {pages} pages of {page_size} bytes "
                    f"({pages * page_size} bytes) but the file has {size} bytes; restore the log from a backup "
                    f"(`sqlite3 {path} .recover` may salvage the intact records)"
                )

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "open the log") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = set_wal(conn, self.busy_timeout)
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self.path}: SQLite refused WAL mode (journal mode stays {mode!r}); the log "
                    f"needs a local filesystem that supports shared memory, not a network share"
                )
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            self._init_schema(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "open the log") from exc
            raise
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            conn.execute("BEGIN IMMEDIATE")
            # another connection may have created the schema while this one waited for the write lock
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables:
                conn.execute("COMMIT")
        if not tables:
            try:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?), ('format_version', ?)",
                    (FORMAT, str(FORMAT_VERSION)),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return
        if not {"meta", "events"} <= tables:
            raise StoreError(
                f"{self.path} is a SQLite database but not a calmops event log (it has no "
                f"'meta'/'events' tables); check the path, nothing was changed"
            )
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise StoreError(
                f"{self.path} is a SQLite database but not a calmops event log (meta format is "
                f"{meta.get('format')!r}); check the path, nothing was changed"
            )
        try:
            version = int(meta.get("format_version", ""))
        except ValueError:
            raise CorruptLogError(
                f"{self.path}: meta format_version is {meta.get('format_version')!r}, not a "
                f"number; restore the log from a backup"
            ) from None
        if version > FORMAT_VERSION:
            raise StoreError(
                f"{self.path} uses event-log format {version}, newer than this code's "
                f"{FORMAT_VERSION}: upgrade calmops to read it"
            )

    # -- error translation ----------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, action: str) -> StoreError:
        """Our exception for a sqlite3 error met while doing ``action`` (which names stream/position)."""
        return translate(exc, self.path, action, self.busy_timeout)

    def _read(self, sql: str, args: tuple[object, ...], action: str) -> list:
        with self._lock:
            self._check_open()
            try:
                return self._conn.execute(sql, args).fetchall()  # type: ignore[union-attr]
            except sqlite3.Error as exc:
                raise self._error(exc, action) from exc

    # -- the write side -------------------------------------------------------------------------------

    def _append_rows(
        self, stream_id: str, prepared: list[Prepared], expected_version: int, idempotency_key: str | None
    ) -> tuple[list[RawRow], bool]:
        def action() -> str:
            return f"append {len(prepared)} event(s) to stream {stream_id!r} at version {expected_version}"

        with self._lock:
            self._check_open()
            conn = self._conn
            assert conn is not None
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc, action()) from exc
            try:
                if idempotency_key is not None:
                    done = conn.execute(
                        "SELECT first_position, last_position FROM idempotency_keys "
                        "WHERE stream_id = ? AND key = ?",
                        (stream_id, idempotency_key),
                    ).fetchone()
                    if done is not None:
                        rows = conn.execute(
                            f"SELECT {_COLUMNS} FROM events WHERE position BETWEEN ? AND ? ORDER BY position",
                            done,
                        ).fetchall()
                        conn.execute("COMMIT")
                        return rows, False
                # one statement: the stream's version and the chain's last link, under the write lock
                actual, last_position, last_hash = conn.execute(_STATE_SQL, (stream_id,)).fetchone()
                self._refuse_untrusted(conn, last_position, last_hash)
                if actual != expected_version:
                    raise ConcurrencyError(
                        f"stream {stream_id!r} in {self.path}: expected version {expected_version} but it is at "
                        f"version {actual}; another writer appended first: reload the stream and decide again",
                        stream_id=stream_id,
                        expected=expected_version,
                        actual=actual,
                    )
                rows = self._chain(
                    stream_id,
                    prepared,
                    first_version=actual + 1,
                    last_position=last_position,
                    last_hash=last_hash,
                    recorded_at=self._recorded_at(),
                )
                if len(rows) == 1:
                    conn.execute(_INSERT_SQL, rows[0])
                else:
                    conn.executemany(_INSERT_SQL, rows)
                if idempotency_key is not None:
                    conn.execute(
                        "INSERT INTO idempotency_keys (stream_id, key, first_position, last_position) "
                        "VALUES (?, ?, ?, ?)",
                        (stream_id, idempotency_key, rows[0][0], rows[-1][0]),
                    )
                conn.execute("COMMIT")
                self._advance_head(rows[-1][0], rows[-1][7])
                return rows, True
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.IntegrityError) and "events.stream_id" in str(exc):
                    raise ConcurrencyError(
                        f"stream {stream_id!r} in {self.path}: version {expected_version + 1} was taken by "
                        f"another writer; reload the stream and decide again",
                        stream_id=stream_id,
                        expected=expected_version,
                        actual=expected_version + 1,
                    ) from exc
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc, action()) from exc
                raise

    # -- the trusted head -----------------------------------------------------------------------------

    def trusted_head(self) -> Head | None:
        """The head on file outside the log (None when none was written yet)."""
        return self.head_file.read()

    def last_link(self) -> Head:
        """The log's own last (position, hash)."""
        rows = self._read("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1", (),
                          "read the last record")
        return Head(rows[0][0], rows[0][1]) if rows else Head(0, GENESIS_HASH)

    def head_problem(self, trusted: Head | None = None) -> str | None:
        """Why the log does not match its trusted head (`trusted`, else the one on file), or None (also None when
        no head is on file)."""
        trusted = self.head_file.read() if trusted is None else trusted
        if trusted is None or trusted.position == 0:
            return None
        return head_problem(trusted, self.head(), self._hash_at(trusted.position))

    def check_head(self) -> None:
        """Raise CorruptLogError when the log was truncated or rewritten since the trusted head was written. A
        log without a head file (made before heads existed) is trusted as it is, and its head written now."""
        trusted = self.head_file.read()
        problem = self.head_problem(trusted)
        if problem is not None:
            raise CorruptLogError(
                f"{self._describe()}: {problem}. Nothing reads or writes it until this is resolved: restore "
                f"the log from a backup, or, if you know why, run `calmops head --trust-log` to trust it as it is"
            )
        if trusted is None or trusted.position == 0:
            last = self.last_link()
            if last.position:
                self._advance_head(last.position, last.hash)

    def trust_log(self) -> Head:
        """Make the log's current last record the trusted head, whatever the file said (an operator's decision,
        after restoring a backup): the caller verifies the chain first."""
        last = self.last_link()
        self.head_file.reset(last.position, last.hash)
        return last

    def _refuse_untrusted(self, conn: sqlite3.Connection, last_position: int, last_hash: str) -> None:
        trusted = self.head_file.read()
        if trusted is None or trusted.position == 0:
            return
        if trusted.position == last_position:
            at = last_hash
        else:
            row = conn.execute("SELECT hash FROM events WHERE position = ?", (trusted.position,)).fetchone()
            at = row[0] if row else None
        problem = head_problem(trusted, last_position, at)
        if problem is not None:
            raise CorruptLogError(f"{self._describe()}: {problem}; nothing was appended (it would have written "
                                  "over the positions that were removed or rewritten)")

    def _advance_head(self, position: int, hash_: str) -> None:
        try:
            self.head_file.advance(position, hash_)
        except StoreError as err:  # the commit stands; the next commit (or open) writes the head again
            log.warning("%s", err)

    def verify(self, progress=None, *, against_head: bool = True) -> VerifyResult:  # noqa: ANN001
        """The whole chain (see `EventStore.verify`), then (unless `against_head` is False) the log's end
        against the trusted head."""
        result = super().verify(progress)
        if not result.ok or not against_head:
            return result
        trusted = self.head_file.read()
        problem = self.head_problem(trusted)
        if problem is None:
            extra = f"; trusted head {trusted.position}:{trusted.hash[:12]}... matches" if trusted else ""
            return VerifyResult(True, result.checked, None, result.message + extra)
        return VerifyResult(False, result.checked, min(trusted.position, result.checked + 1),
                            f"{self._describe()}: {problem}")

    def _rollback(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            # SQLite may have rolled back already (e.g. after SQLITE_FULL); nothing was committed either way
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    # -- the read side --------------------------------------------------------------------------------

    def _raw_stream(self, stream_id: str, after_version: int) -> list[RawRow]:
        return self._read(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version > ? ORDER BY version",
            (stream_id, after_version),
            f"read stream {stream_id!r} after version {after_version}",
        )

    def _raw_stream_batches(self, stream_id: str, after_version: int, batch_size: int) -> Iterator[list[RawRow]]:
        """A stream that is most of the rest of the log is walked in position order, the table's own (about
        1.5x faster than through the (stream_id, version) index, measured on a one-stream log of 1M
        events); a smaller one through its index. Either way one batch is read at a time."""
        start = 0
        if after_version:
            found = self._read("SELECT position FROM events WHERE stream_id = ? AND version = ?",
                               (stream_id, after_version), f"find version {after_version} of stream {stream_id!r}")
            start = found[0][0] if found else 0
        remaining = self.stream_version(stream_id) - after_version
        if remaining * 2 >= self.head() - start:
            position = start
            while rows := self._read(  # `+stream_id`: filter rows, do not search the index
                f"SELECT {_COLUMNS} FROM events WHERE position > ? AND +stream_id = ? AND version > ? "
                "ORDER BY position LIMIT ?", (position, stream_id, after_version, batch_size),
                f"read stream {stream_id!r} after position {position}",
            ):
                yield rows
                position = rows[-1][0]
            return
        version = after_version
        while rows := self._read(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version > ? ORDER BY version LIMIT ?",
            (stream_id, version, batch_size), f"read stream {stream_id!r} after version {version}",
        ):
            yield rows
            version = rows[-1][2]

    def _raw_range(self, after_position: int, limit: int | None) -> list[RawRow]:
        return self._read(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after_position, -1 if limit is None else limit),
            f"read events after position {after_position}",
        )

    def _hash_at(self, position: int) -> str | None:
        rows = self._read(
            "SELECT hash FROM events WHERE position = ?", (position,), f"read the hash at position {position}"
        )
        return rows[0][0] if rows else None

    def _hashes_at(self, positions: list[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for i in range(0, len(positions), 500):
            chunk = positions[i:i + 500]
            found.update(self._read(
                f"SELECT position, hash FROM events WHERE position IN ({','.join('?' * len(chunk))})",
                tuple(chunk), "read the hashes before the records read"))
        return found

    def streams(self) -> list[str]:
        # walks the (stream_id, version) index one stream at a time instead of scanning every event
        rows = self._read(
            "WITH RECURSIVE s(id) AS (SELECT MIN(stream_id) FROM events UNION ALL "
            "SELECT (SELECT MIN(stream_id) FROM events WHERE stream_id > s.id) FROM s "
            "WHERE s.id IS NOT NULL) SELECT id FROM s WHERE id IS NOT NULL",
            (),
            "list the streams",
        )
        return [row[0] for row in rows]

    def head(self) -> int:
        return self._read("SELECT MAX(position) FROM events", (), "read the last position")[0][0] or 0

    def stream_version(self, stream_id: str) -> int:
        return (
            self._read(
                "SELECT MAX(version) FROM events WHERE stream_id = ?",
                (stream_id,),
                f"read the version of stream {stream_id!r}",
            )[0][0]
            or 0
        )

    # -- snapshots ------------------------------------------------------------------------------------

    def _write(self, sql: str, args: tuple[object, ...], action: str) -> None:
        with self._lock:
            self._check_open()
            conn = self._conn
            assert conn is not None
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql, args)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._error(exc, action) from exc

    def _put_snapshot(self, stream_id: str, version: int, schema: str, state_text: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO snapshots (stream_id, version, schema, state) VALUES (?, ?, ?, ?)",
            (stream_id, version, schema, state_text),
            f"save the snapshot of stream {stream_id!r} at version {version}",
        )
        self.head_file.record_snapshot(stream_id, _snapshot_digest(version, schema, state_text))

    def _get_snapshot(self, stream_id: str) -> tuple[int, str, str] | None:
        """The stream's snapshot, only if its text hashes to the digest kept beside the trusted head: a
        snapshot edited in the log file (outside the hash chain) is a miss, and the stream is replayed."""
        rows = self._read(
            "SELECT version, schema, state FROM snapshots WHERE stream_id = ?",
            (stream_id,),
            f"load the snapshot of stream {stream_id!r}",
        )
        if not rows:
            return None
        version, schema, state_text = rows[0]
        if self.head_file.snapshot_digest(stream_id) != _snapshot_digest(version, schema, state_text):
            log.warning("%s: the snapshot of stream %r does not match its recorded digest; replaying the "
                        "stream from its events instead", self._describe(), stream_id)
            return None
        return version, schema, state_text

    def delete_snapshots(self, stream_id: str | None = None) -> None:
        if stream_id is None:
            self._write("DELETE FROM snapshots", (), "delete all snapshots")
        else:
            self._write(
                "DELETE FROM snapshots WHERE stream_id = ?",
                (stream_id,),
                f"delete the snapshot of stream {stream_id!r}",
            )

    # -- lifecycle ------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            super().close()
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise self._error(exc, "close the log") from exc


def _snapshot_digest(version: int, schema: str, state_text: str) -> str:
    return hashlib.sha256(f"{version}\n{schema}\n{state_text}".encode()).hexdigest()
