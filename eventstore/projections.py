"""Projection checkpoints: apply pure folds to SQLite view tables exactly once, resumable after a crash.

A projection is any object with ``name``, ``tables`` (table name -> :class:`TableSpec`) and
``apply(recorded, lookup) -> Iterable[Upsert | Delete]``; ``lookup(table, key_tuple)`` returns the
current row as a dict (seeing the operations earlier in the same batch) or None. The folds themselves live
in ``pipelines/``; this module only runs them. :class:`ProjectionRunner` keeps the view tables and a
``projection_checkpoints(name, position)`` table in its own SQLite file and commits each batch's rows
together with the new checkpoint in one transaction, so a crash leaves either the whole batch or none of
it, and the next run resumes from the checkpoint.

>>> import tempfile, os
>>> from eventstore import InMemoryEventStore, EventData
>>> class BlockCount:
...     name = "block_count"
...     tables = {"blocks": TableSpec(columns={"stream_id": "TEXT", "n": "INTEGER"}, key=("stream_id",))}
...     def apply(self, recorded, lookup):
...         row = lookup("blocks", (recorded.stream_id,)) or {"stream_id": recorded.stream_id, "n": 0}
...         yield Upsert("blocks", {**row, "n": row["n"] + 1})
>>> store = InMemoryEventStore()
>>> _ = store.append("p1", [EventData("BlockArrived", {}), EventData("BlockArrived", {})], expected_version=0)
>>> with ProjectionRunner(store, os.path.join(tempfile.mkdtemp(), "views.db")) as runner:
...     runner.run(BlockCount()), runner.position("block_count"), runner.rows("blocks")
(2, 2, [{'stream_id': 'p1', 'n': 2}])
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eventstore.canonical import canonical_json
from eventstore.errors import StoreError
from eventstore.records import Recorded
from eventstore.sqlite_errors import set_wal, translate
from eventstore.store import EventStore

log = logging.getLogger("calmops.projections")

__all__ = ["TableSpec", "Upsert", "Delete", "Projection", "ProjectionRunner", "Lookup"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SQL_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*\Z")
_RESERVED = frozenset({"projection_checkpoints", "projection_tables"})
_CELL_TYPES = (str, int, float, bytes, type(None))  # bool is an int


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A view table: column name -> SQLite type, the primary key columns and extra indexes."""

    columns: dict[str, str]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.columns:
            raise StoreError("a TableSpec needs at least one column")
        for name, sql_type in self.columns.items():
            if not isinstance(name, str) or not _IDENTIFIER.match(name):
                raise StoreError(f"column name {name!r} must be a plain identifier (letters, digits, _)")
            if not isinstance(sql_type, str) or not _SQL_TYPE.match(sql_type):
                raise StoreError(
                    f"column {name!r} has SQLite type {sql_type!r}; use e.g. TEXT, INTEGER, REAL, BLOB"
                )
        if not self.key:
            raise StoreError("a TableSpec needs a key (one or more of its columns)")
        for cols, what in [(self.key, "key")] + [(ix, "index") for ix in self.indexes]:
            missing = [c for c in cols if c not in self.columns]
            if missing or not cols:
                raise StoreError(f"{what} {cols!r} names columns that are not in the table: {missing}")

    def as_json(self) -> str:
        return canonical_json(
            {"columns": self.columns, "key": list(self.key), "indexes": [list(ix) for ix in self.indexes]}
        )


@dataclass(frozen=True, slots=True)
class Upsert:
    """Make ``row`` (all its key columns included) the row with that key; columns not given become NULL."""

    table: str
    row: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the row whose key columns equal ``key`` (no error when there is none)."""

    table: str
    key: dict[str, Any] = field(default_factory=dict)


Lookup = Callable[[str, tuple[Any, ...]], "dict[str, Any] | None"]


class Projection(Protocol):
    """What :class:`ProjectionRunner` needs from a projection (a pure fold over recorded events)."""

    name: str
    tables: Mapping[str, TableSpec]

    def apply(self, recorded: Recorded, lookup: Lookup) -> Iterable[Upsert | Delete]: ...


class _Table:
    """Prepared SQL for one view table."""

    def __init__(self, name: str, spec: TableSpec) -> None:
        self.name, self.spec = name, spec
        self.columns = tuple(spec.columns)
        q = _quote(name)
        where = " AND ".join(f"{_quote(c)} = ?" for c in spec.key)
        self.select = f"SELECT {', '.join(_quote(c) for c in self.columns)} FROM {q} WHERE {where}"
        self.delete = f"DELETE FROM {q} WHERE {where}"
        self.inserts: dict[tuple[str, ...], str] = {}

    def insert_sql(self, names: tuple[str, ...]) -> str:
        sql = self.inserts.get(names)
        if sql is None:
            sql = (
                f"INSERT OR REPLACE INTO {_quote(self.name)} ({', '.join(_quote(c) for c in names)}) "
                f"VALUES ({', '.join('?' * len(names))})"
            )
            self.inserts[names] = sql
        return sql

    def create_sql(self) -> list[str]:
        cols = ", ".join(f"{_quote(c)} {t}" for c, t in self.spec.columns.items())
        key = ", ".join(_quote(c) for c in self.spec.key)
        statements = [f"CREATE TABLE {_quote(self.name)} ({cols}, PRIMARY KEY ({key}))"]
        for ix in self.spec.indexes:
            index_name = _quote(f"{self.name}__{'_'.join(ix)}")
            statements.append(
                f"CREATE INDEX {index_name} ON {_quote(self.name)} ({', '.join(_quote(c) for c in ix)})"
            )
        return statements


class ProjectionRunner:
    """Runs projections over ``store`` into view tables in the SQLite file ``db_path`` (created if missing)."""

    def __init__(
        self, store: EventStore, db_path: str | os.PathLike[str], *, busy_timeout: float = 30.0
    ) -> None:
        self.store = store
        self.path = Path(db_path)
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder {self.path.parent} for the projection database: {exc.strerror}"
            ) from exc
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                str(self.path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise translate(exc, self.path, "open the projection database", self.busy_timeout) from exc
        try:
            try:
                set_wal(self._conn, self.busy_timeout)
                self._conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "open the projection database", self.busy_timeout) from exc
            self._transaction(
                lambda c: [
                    c.execute(
                        "CREATE TABLE IF NOT EXISTS projection_checkpoints ("
                        "name TEXT PRIMARY KEY, position INTEGER NOT NULL, hash TEXT)"
                    ),
                    c.execute(
                        "CREATE TABLE IF NOT EXISTS projection_tables ("
                        "table_name TEXT PRIMARY KEY, projection TEXT NOT NULL, spec TEXT NOT NULL)"
                    ),
                ],
                "create the checkpoint table",
            )
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(projection_checkpoints)")}
            if "hash" not in columns:  # made by an older version: the checkpoint learns its record's hash
                self._transaction(
                    lambda c: c.execute("ALTER TABLE projection_checkpoints ADD COLUMN hash TEXT"),
                    "add the hash to the checkpoint table",
                )
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    # -- public ---------------------------------------------------------------------------------------

    def position(self, name: str) -> int:
        """The last position applied by projection ``name`` (0 when it never ran)."""
        rows = self._query(
            "SELECT position FROM projection_checkpoints WHERE name = ?",
            (name,),
            f"read the checkpoint of projection {name!r}",
        )
        return rows[0][0] if rows else 0

    def run(self, projection: Projection, batch_size: int = 1000) -> int:
        """Apply the events after the projection's checkpoint; returns how many events were applied.

        Each batch's row changes and the new checkpoint commit in one transaction. If ``apply`` raises, the
        batch is rolled back (rows and checkpoint stay as they were) and the exception propagates with a
        note naming the position.
        """
        if type(batch_size) is not int or batch_size < 1:
            raise StoreError(f"batch_size must be an int >= 1, got {batch_size!r}")
        name = _projection_name(projection)
        tables = self._ensure_tables(projection)
        moved = self.log_moved(name)
        if moved is not None:  # the rows describe a log that is no longer there: say so, and start over
            log.error("projection %r in %s: %s; rebuilding it from the log", name, self.path, moved)
            return self.rebuild(projection, batch_size)
        applied = 0
        while True:
            start = self.position(name)
            events = self.store.read_all(after_position=start, limit=batch_size)
            if not events:
                return applied
            if self._apply_batch(projection, name, tables, start, events):
                applied += len(events)

    def log_moved(self, name: str) -> str | None:
        """Why the log no longer holds the record this projection's checkpoint stands on (it ends before it,
        or that record's hash changed), or None."""
        rows = self._query("SELECT position, hash FROM projection_checkpoints WHERE name = ?", (name,),
                           f"read the checkpoint of projection {name!r}")
        if not rows or not rows[0][0]:
            return None
        position, stored = rows[0]
        head = self.store.head()
        if head < position:
            return f"the log moved backwards: it ends at position {head}, before this projection's checkpoint " \
                   f"{position}"
        if stored is not None and self.store.hash_at(position) != stored:
            return f"the record at this projection's checkpoint (position {position}) changed since it was applied"
        return None

    def rebuild(self, projection: Projection, batch_size: int = 1000) -> int:
        """Drop the projection's tables, reset its checkpoint to 0 and run it from the start."""
        name = _projection_name(projection)
        self._check_tables(projection, name)

        def drop(conn: sqlite3.Connection) -> None:
            owned = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM projection_tables WHERE projection = ?", (name,)
                )
            ]
            for table in owned:
                conn.execute(f"DROP TABLE IF EXISTS {_quote(table)}")
            conn.execute("DELETE FROM projection_tables WHERE projection = ?", (name,))
            conn.execute("DELETE FROM projection_checkpoints WHERE name = ?", (name,))

        self._transaction(drop, f"drop the tables of projection {name!r}")
        return self.run(projection, batch_size)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """All rows of a view table, ordered by its primary key (handy in tests and for small views)."""
        if not _IDENTIFIER.match(table) or table in _RESERVED:
            raise StoreError(f"{table!r} is not a view table name")
        spec_rows = self._query(
            "SELECT spec FROM projection_tables WHERE table_name = ?", (table,), f"read table {table!r}"
        )
        if not spec_rows:
            raise StoreError(f"{self.path}: no view table {table!r}; run its projection first")
        with self._lock:
            conn = self._open_conn()
            try:
                cursor = conn.execute(
                    f"SELECT * FROM {_quote(table)} ORDER BY "
                    + ", ".join(_quote(k) for k in json.loads(spec_rows[0][0])["key"])
                )
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                raise translate(exc, self.path, f"read table {table!r}", self.busy_timeout) from exc

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __enter__(self) -> ProjectionRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------

    def _apply_batch(
        self, projection: Projection, name: str, tables: dict[str, _Table], start: int, events: list[Recorded]
    ) -> bool:
        """Apply one batch in one transaction; False when another runner moved the checkpoint first."""
        with self._lock:
            conn = self._open_conn()
            action = f"apply positions {events[0].position}-{events[-1].position} to projection {name!r}"
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.path, action, self.busy_timeout) from exc
            try:
                row = conn.execute(
                    "SELECT position FROM projection_checkpoints WHERE name = ?", (name,)
                ).fetchone()
                if (row[0] if row else 0) != start:
                    conn.execute("ROLLBACK")
                    return False
                lookup = self._lookup(conn, tables, name)
                for recorded in events:
                    try:
                        for op in projection.apply(recorded, lookup):
                            self._execute(conn, tables, name, op)
                    except BaseException as exc:
                        if isinstance(exc, Exception):
                            exc.add_note(
                                f"projection {name!r} failed at position {recorded.position} "
                                f"({recorded.type}); the batch was rolled back, the checkpoint stays "
                                f"at {start}"
                            )
                        raise
                conn.execute(
                    "INSERT OR REPLACE INTO projection_checkpoints (name, position, hash) VALUES (?, ?, ?)",
                    (name, events[-1].position, events[-1].hash),
                )
                conn.execute("COMMIT")
                return True
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, action, self.busy_timeout) from exc
                raise

    def _lookup(self, conn: sqlite3.Connection, tables: dict[str, _Table], name: str) -> Lookup:
        def lookup(table: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
            target = tables.get(table)
            if target is None:
                raise StoreError(
                    f"projection {name!r} looked up table {table!r}, which is not in its tables "
                    f"{sorted(tables)}"
                )
            if not isinstance(key, tuple) or len(key) != len(target.spec.key):
                raise StoreError(
                    f"projection {name!r}: lookup in {table!r} needs a tuple of "
                    f"{len(target.spec.key)} key value(s) {target.spec.key}, got {key!r}"
                )
            found = conn.execute(target.select, key).fetchone()
            return None if found is None else dict(zip(target.columns, found, strict=True))

        return lookup

    def _execute(self, conn: sqlite3.Connection, tables: dict[str, _Table], name: str, op: Any) -> None:
        if not isinstance(op, Upsert | Delete):
            raise StoreError(f"projection {name!r} yielded {op!r}; apply must yield Upsert or Delete")
        target = tables.get(op.table)
        if target is None:
            raise StoreError(
                f"projection {name!r} wrote to table {op.table!r}, which is not in its tables "
                f"{sorted(tables)}"
            )
        spec = target.spec
        if isinstance(op, Upsert):
            unknown = [c for c in op.row if c not in spec.columns]
            missing = [k for k in spec.key if op.row.get(k) is None]
            if unknown or missing:
                raise StoreError(
                    f"projection {name!r}: Upsert into {op.table!r} has unknown column(s) {unknown} "
                    f"or no value for key column(s) {missing}"
                )
            _check_cells(name, op.table, op.row)
            names = tuple(op.row)
            conn.execute(target.insert_sql(names), tuple(op.row[c] for c in names))
        else:
            if set(op.key) != set(spec.key):
                raise StoreError(
                    f"projection {name!r}: Delete from {op.table!r} needs exactly the key columns "
                    f"{spec.key}, got {sorted(op.key)}"
                )
            _check_cells(name, op.table, op.key)
            conn.execute(target.delete, tuple(op.key[k] for k in spec.key))

    def _check_tables(self, projection: Projection, name: str) -> dict[str, TableSpec]:
        tables = dict(getattr(projection, "tables", None) or {})
        if not tables:
            raise StoreError(f"projection {name!r} declares no tables")
        for table, spec in tables.items():
            if (
                not isinstance(table, str)
                or not _IDENTIFIER.match(table)
                or table in _RESERVED
                or table.lower().startswith("sqlite_")
            ):
                raise StoreError(
                    f"projection {name!r}: {table!r} cannot be a table name (use letters, digits and "
                    f"_, not {sorted(_RESERVED)} or sqlite_*)"
                )
            if not isinstance(spec, TableSpec):
                raise StoreError(f"projection {name!r}: table {table!r} must be described by a TableSpec")
        owners = dict(
            self._query("SELECT table_name, projection FROM projection_tables", (), "read the tables")
        )
        for table in tables:
            if owners.get(table, name) != name:
                raise StoreError(
                    f"{self.path}: projection {name!r} declares table {table!r}, which belongs to "
                    f"projection {owners[table]!r}; rename one of them"
                )
        return tables

    def _ensure_tables(self, projection: Projection) -> dict[str, _Table]:
        name = _projection_name(projection)
        specs = self._check_tables(projection, name)
        prepared = {table: _Table(table, spec) for table, spec in specs.items()}

        def create(conn: sqlite3.Connection) -> None:
            existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            known = dict(
                conn.execute(
                    "SELECT table_name, spec FROM projection_tables WHERE projection = ?", (name,)
                ).fetchall()
            )
            for table, target in prepared.items():
                spec_json = target.spec.as_json()
                if table in known:
                    if known[table] != spec_json:
                        raise StoreError(
                            f"{self.path}: the spec of table {table!r} of projection {name!r} "
                            f"changed since it was built; call rebuild() to rebuild it"
                        )
                    continue
                if table in existing:
                    raise StoreError(
                        f"{self.path}: a table {table!r} already exists and no projection owns it; "
                        f"rename the projection's table or drop the old one"
                    )
                for statement in target.create_sql():
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO projection_tables (table_name, projection, spec) VALUES (?, ?, ?)",
                    (table, name, spec_json),
                )

        self._transaction(create, f"create the tables of projection {name!r}")
        return prepared

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"projection runner on {self.path} is closed: open a new one")
        return self._conn

    def _query(self, sql: str, args: tuple[Any, ...], action: str) -> list[Any]:
        with self._lock:
            conn = self._open_conn()
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self.path, action, self.busy_timeout) from exc

    def _transaction(self, body: Callable[[sqlite3.Connection], Any], action: str) -> None:
        with self._lock:
            conn = self._open_conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                body(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, action, self.busy_timeout) from exc
                raise


def _projection_name(projection: Any) -> str:
    name = getattr(projection, "name", None)
    if not isinstance(name, str) or not name:
        raise StoreError(f"a projection needs a non-empty string `name`, got {name!r}")
    return name


def _check_cells(name: str, table: str, row: Mapping[str, Any]) -> None:
    for column, value in row.items():
        if not isinstance(value, _CELL_TYPES):
            raise StoreError(
                f"projection {name!r}: column {table}.{column} got a {type(value).__name__}; SQLite "
                f"cells hold str, int, float, bytes or None (store JSON text with canonical_json)"
            )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
