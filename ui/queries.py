"""What the UI shows, as pandas DataFrames and small dicts read from the projection tables (read-only).

Every query opens its own read-only connection (`file:...?mode=ro`), so Gradio's worker threads never share
one and the UI cannot write. Each query is bounded (a window of the last blocks, a page of events, the
latest rounds) and served by the tables' indexes, so a page stays fast with 50 pipelines and 10,000 blocks
(benchmarks/ui_bench.py). Time travel is the one query that reads the log: it folds a pipeline's events up to
a position with `pipelines.core.state.replay`, from cached states so moving the slider stays cheap.

Nothing happens at import or construction time; a missing projection database reads as "no pipelines yet".
"""

from __future__ import annotations

import bisect
import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.read_model.projection import ALERT_TYPES, STREAM_PREFIX

__all__ = ["Queries"]

LINEAGE_HOPS = 6  # versions shown in a model's lineage column before "..."


class Queries:
    """Read-only queries over `<home>/projections.sqlite` (and, for time travel, `<home>/log.sqlite`)."""

    def __init__(self, projections_path: Path, log_path: Path | None = None, *, stride: int = 500) -> None:
        self.path = Path(projections_path)
        self.log_path = Path(log_path) if log_path is not None else self.path.parent / "log.sqlite"
        self.stride = stride  # time travel keeps a folded state every `stride` events of a pipeline
        self._states: dict[str, tuple[list[int], list[Any]]] = {}
        self._states_lock = threading.Lock()
        self._codec: Any = None

    # -- plumbing ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self, path: Path | None = None) -> Iterator[sqlite3.Connection | None]:
        path = path or self.path
        if not path.is_file():
            yield None
            return
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
        try:
            yield conn
        finally:
            conn.close()

    def _frame(self, sql: str, args: Sequence[Any] = (), columns: Sequence[str] = ()) -> pd.DataFrame:
        with self._connect() as conn:
            if conn is None:
                return pd.DataFrame(columns=list(columns))
            try:
                cursor = conn.execute(sql, tuple(args))
            except sqlite3.OperationalError as err:
                if "no such table" in str(err):  # nothing projected yet
                    return pd.DataFrame(columns=list(columns))
                raise
            names = [d[0] for d in cursor.description]
            return pd.DataFrame.from_records(cursor.fetchall(), columns=names)

    def _one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        frame = self._frame(sql, args)
        return None if frame.empty else {k: _plain(v) for k, v in frame.iloc[0].items()}

    # -- overview ------------------------------------------------------------------------------------

    def position(self) -> int:
        """The last log position the read tables include (0 before the first update)."""
        row = self._one("SELECT position FROM projection_checkpoints WHERE name = 'read_model'")
        return int(row["position"]) if row else 0

    def summary(self) -> dict[str, Any]:
        """Totals for the header: pipelines, blocks, events, alerts, projected position."""
        row = self._one(
            "SELECT COUNT(*) AS pipelines, COALESCE(SUM(blocks), 0) AS blocks, COALESCE(SUM(events), 0) AS events,"
            " COALESCE(SUM(alerts), 0) AS alerts, COALESCE(SUM(health = 'ok'), 0) AS healthy FROM pipelines"
        ) or {"pipelines": 0, "blocks": 0, "events": 0, "alerts": 0, "healthy": 0}
        return {**row, "position": self.position()}

    def pipeline_names(self) -> list[str]:
        frame = self._frame("SELECT pipeline FROM pipelines ORDER BY pipeline", columns=("pipeline",))
        return frame["pipeline"].tolist()

    def overview(self) -> pd.DataFrame:
        """One row per pipeline: health, champion, last block, drift over the last blocks, circuit, last alert."""
        return self._frame(
            "SELECT pipeline, health, champion, champion_strategy, last_block, last_block_at, blocks,"
            " recent_drifted, recent_checked, recent_drift, circuit, circuit_until, consecutive_failures, metric,"
            " last_metric, promotions, rollbacks, rejected_files, alerts, last_alert, last_alert_type,"
            " last_alert_at, last_event_at, last_metric_version, blocks - last_metric_seq AS score_blocks_since,"
            " activity FROM pipelines ORDER BY pipeline",
            columns=OVERVIEW_COLUMNS,
        )

    def alerts(self, limit: int = 20, pipeline: str | None = None) -> pd.DataFrame:
        """The latest alert-worthy events (drift, rejections, failed rounds, circuit, rollbacks), newest first."""
        types = sorted(ALERT_TYPES)
        where = f"type IN ({', '.join('?' * len(types))})"
        args: list[Any] = list(types)
        if pipeline:
            where += " AND pipeline = ?"
            args.append(pipeline)
        frame = self._frame(
            f"SELECT position, occurred_at, pipeline, type, summary FROM events WHERE {where}"
            " ORDER BY position DESC LIMIT ?",
            [*args, 4 * limit],
            columns=("position", "occurred_at", "pipeline", "type", "summary"),
        )
        skipped = (frame["type"] == "RetrainFailed") & frame["summary"].str.contains(" skipped: ", regex=False)
        return frame[~skipped].head(limit).reset_index(drop=True)

    # -- one pipeline --------------------------------------------------------------------------------

    def pipeline(self, name: str) -> dict[str, Any] | None:
        """The pipeline's row (counters, champion, circuit, health), or None."""
        return self._one("SELECT * FROM pipelines WHERE pipeline = ?", (name,))

    def blocks(self, name: str, limit: int = 50, before_seq: int | None = None) -> pd.DataFrame:
        """A page of the block timeline, newest first (`before_seq` pages back)."""
        return self._frame(
            "SELECT seq, block_id, file, rows, labelled, arrived_at, champion, drifted, features_drifted,"
            " top_feature, top_effect, multivariate_drifted, concept_drift, performance_drifted, reasons,"
            " drift_warning, signals, held_back, change_point"
            " FROM blocks WHERE pipeline = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (name, before_seq if before_seq is not None else 2**62, limit),
            columns=("seq", "block_id"),
        )

    def drift_matrix(self, name: str, last_blocks: int = 50) -> pd.DataFrame:
        """Block x feature cells of the last `last_blocks` blocks: effect, p_adjusted, drifted."""
        return self._frame(
            "SELECT seq, block_id, feature, rank, kind, effect, effect_name, p_adjusted, drifted, test, change,"
            " min_effect, alpha FROM drift_features WHERE pipeline = ? AND seq > (SELECT blocks FROM pipelines WHERE pipeline = ?) - ?"
            " ORDER BY seq, rank",
            (name, name, last_blocks),
            columns=("seq", "block_id", "feature", "rank", "effect", "effect_name", "p_adjusted", "drifted"),
        )

    def drift_cell(self, name: str, block_id: str, feature: str) -> dict[str, Any] | None:
        """One heatmap cell: the feature's test result on the block, with the block's artifact and the ids of
        the blocks it was compared with (`reference_blocks`, a list), or None."""
        row = self._one(
            "SELECT d.block_id, d.feature, d.seq, d.kind, d.test, d.statistic, d.p_value, d.p_adjusted, d.effect,"
            " d.effect_name, d.drifted, d.change, d.note, d.min_effect, d.alpha, b.artifact_sha256,"
            " b.artifact_kind, b.artifact_size, b.reference_blocks FROM drift_features d JOIN blocks b"
            " ON b.pipeline = d.pipeline AND b.block_id = d.block_id"
            " WHERE d.pipeline = ? AND d.block_id = ? AND d.feature = ?",
            (name, block_id, feature),
        )
        if row is not None:
            row["reference_blocks"] = json.loads(row["reference_blocks"] or "[]")
        return row

    def block_artifacts(self, name: str, block_ids: Sequence[str]) -> pd.DataFrame:
        """The stored frames (sha256, kind, size) of some blocks, in the order asked."""
        ids = list(block_ids)
        frame = self._frame(
            f"SELECT block_id, artifact_sha256, artifact_kind, artifact_size FROM blocks WHERE pipeline = ?"
            f" AND block_id IN ({', '.join('?' * len(ids))})",
            (name, *ids),
            columns=("block_id", "artifact_sha256", "artifact_kind", "artifact_size"),
        )
        return frame.set_index("block_id").reindex(ids).reset_index() if not frame.empty else frame

    def score_age(self, name: str) -> dict[str, Any] | None:
        """How old the last score is: its block, model, the blocks since it and how many of those are unlabelled."""
        return self._one(
            "SELECT p.last_metric AS value, p.last_metric_block AS block_id, p.last_metric_version AS version,"
            " p.champion, p.blocks - p.last_metric_seq AS blocks_since,"
            " (SELECT COUNT(*) FROM blocks b WHERE b.pipeline = p.pipeline AND b.seq > p.last_metric_seq"
            "  AND b.labelled = 0) AS unlabelled_since,"
            " (SELECT block_id FROM blocks b WHERE b.pipeline = p.pipeline AND b.seq > p.last_metric_seq"
            "  AND b.labelled = 0 ORDER BY b.seq LIMIT 1) AS unlabelled_first,"
            " (SELECT block_id FROM blocks b WHERE b.pipeline = p.pipeline AND b.seq > p.last_metric_seq"
            "  AND b.labelled = 0 ORDER BY b.seq DESC LIMIT 1) AS unlabelled_last,"
            " (SELECT pf.value FROM performance pf WHERE pf.pipeline = p.pipeline"
            "  AND pf.model_version = p.champion ORDER BY pf.seq DESC LIMIT 1) AS champion_value,"
            " (SELECT pf.block_id FROM performance pf WHERE pf.pipeline = p.pipeline"
            "  AND pf.model_version = p.champion ORDER BY pf.seq DESC LIMIT 1) AS champion_block"
            " FROM pipelines p WHERE p.pipeline = ? AND p.last_metric_seq IS NOT NULL",
            (name,),
        )

    def rollback_targets(self, name: str) -> pd.DataFrame:
        """Versions a rollback may restore: former champions whose model file is still stored, newest first
        (as `pipelines.core.decide.former_champions`), with their last score while champion."""
        return self._frame(
            "SELECT m.version, m.strategy, m.promoted_at, m.retired_at, m.score,"
            " (SELECT pf.value FROM performance pf WHERE pf.pipeline = m.pipeline AND pf.model_version = m.version"
            "  ORDER BY pf.seq DESC LIMIT 1) AS last_value FROM models m JOIN pipelines p ON p.pipeline = m.pipeline"
            " WHERE m.pipeline = ? AND m.promoted_at IS NOT NULL AND m.version != p.champion"
            " AND COALESCE(m.pruned, 0) = 0 ORDER BY m.number DESC",
            (name,),
            columns=("version", "strategy", "promoted_at", "retired_at", "score", "last_value"),
        )

    def model_scores(self, name: str, version: str, limit: int = 5) -> pd.DataFrame:
        """A model's latest scores on blocks while it was champion, newest first."""
        return self._frame(
            "SELECT seq, block_id, metric, value, measured_at FROM performance WHERE pipeline = ?"
            " AND model_version = ? ORDER BY seq DESC LIMIT ?",
            (name, version, limit),
            columns=("seq", "block_id", "metric", "value", "measured_at"),
        )

    def performance(self, name: str, last_blocks: int = 200) -> pd.DataFrame:
        """The champion's metric on each of the last blocks, with the bar it is held to (value at promotion)."""
        return self._frame(
            "SELECT seq, block_id, model_version, metric, value, at_promotion, tolerance, higher_is_better,"
            " drifted FROM performance"
            " WHERE pipeline = ? AND seq > (SELECT blocks FROM pipelines WHERE pipeline = ?) - ? ORDER BY seq",
            (name, name, last_blocks),
            columns=("seq", "block_id", "model_version", "metric", "value", "at_promotion", "tolerance",
                     "higher_is_better", "drifted"),
        )

    def estimates(self, name: str, last_blocks: int = 200) -> pd.DataFrame:
        """The champion's estimated metric on each of the last blocks (no labels needed), with its interval."""
        return self._frame(
            "SELECT seq, block_id, model_version, metric, value, low, high, drifted FROM estimates"
            " WHERE pipeline = ? AND seq > (SELECT blocks FROM pipelines WHERE pipeline = ?) - ? ORDER BY seq",
            (name, name, last_blocks),
            columns=("seq", "block_id", "model_version", "metric", "value", "low", "high", "drifted"),
        )

    def champion_changes(self, name: str, limit: int = 500) -> pd.DataFrame:
        """Promotions and rollbacks, oldest first (the latest `limit`)."""
        frame = self._frame(
            "SELECT position, kind, from_version, to_version, block_seq, block_id, reason, occurred_at"
            " FROM champion_changes WHERE pipeline = ? ORDER BY position DESC LIMIT ?",
            (name, limit),
            columns=("position", "kind", "from_version", "to_version", "block_seq", "block_id", "reason"),
        )
        return frame.iloc[::-1].reset_index(drop=True)

    def models(self, name: str, limit: int = 100) -> pd.DataFrame:
        """Model versions, newest first, with lineage (champion first, then the latest `limit`)."""
        frame = self._frame(
            "SELECT version, status, strategy, parent, round_id, score, champion_score, n_training_blocks,"
            " training_blocks, rows, seconds, artifact_sha256, trained_at, promoted_at, retired_at,"
            " holdout_metrics, notes FROM models WHERE pipeline = ?"
            " ORDER BY status = 'champion' DESC, number DESC LIMIT ?",
            (name, limit),
            columns=("version", "status", "strategy", "parent", "round_id", "score", "champion_score"),
        )
        if frame.empty:
            frame["lineage"] = []
            return frame
        parents = self._parents(name)
        frame.insert(4, "lineage", [_lineage_text(v, parents) for v in frame["version"]])
        return frame

    def lineage(self, name: str, version: str) -> list[str]:
        """`version`, its parent, its parent's parent... back to the first model."""
        return _chain(version, self._parents(name))

    def _parents(self, name: str) -> dict[str, str | None]:
        frame = self._frame("SELECT version, parent FROM models WHERE pipeline = ?", (name,))
        return dict(zip(frame["version"], frame["parent"], strict=True)) if not frame.empty else {}

    def rounds(self, name: str, limit: int = 20) -> pd.DataFrame:
        """The latest retraining rounds, newest first: trigger, blocks, outcome and reason."""
        return self._frame(
            "SELECT round_id, number, trigger, trial, block_id, n_training_blocks, holdout, outcome,"
            " promoted_version, reason, candidates, failures, started_at, ended_at, seconds, reasons,"
            " change_point, reuse FROM rounds"
            " WHERE pipeline = ? ORDER BY number DESC LIMIT ?",
            (name, limit),
            columns=("round_id", "number", "trigger", "outcome", "promoted_version", "reason"),
        )

    def candidates(self, name: str, rounds: int = 20) -> pd.DataFrame:
        """Every candidate of the latest `rounds` rounds with its holdout score and the champion's."""
        return self._frame(
            "SELECT r.number, m.round_id, r.outcome, m.version, CASE WHEN m.strategy = 'reuse'"
            " THEN 'reuse of ' || m.parent ELSE m.strategy END AS strategy, m.score, m.champion_score,"
            " m.score - m.champion_score AS gain, m.status, m.rows, m.seconds,"
            " json_extract(m.params, '$.replacement_share') AS replaced FROM models m"
            " JOIN rounds r ON r.pipeline = m.pipeline AND r.round_id = m.round_id"
            " WHERE m.pipeline = ? AND r.number > (SELECT rounds FROM pipelines WHERE pipeline = ?) - ?"
            " ORDER BY r.number DESC, m.number",
            (name, name, rounds),
            columns=("number", "round_id", "outcome", "version", "strategy", "score", "champion_score", "gain",
                     "status", "replaced"),
        )

    def circuit(self, name: str) -> dict[str, Any]:
        """The retraining circuit breaker now: closed/open, until when, failures in a row, last reason."""
        row = self._one(
            "SELECT circuit, circuit_until, consecutive_failures, openings, circuit_reason, health,"
            " current_round FROM pipelines WHERE pipeline = ?",
            (name,),
        )
        return row or {"circuit": None}

    def health_history(self, name: str, limit: int = 50) -> pd.DataFrame:
        """Changes of health and circuit state, newest first."""
        return self._frame(
            "SELECT position, occurred_at, health, circuit, cause, detail FROM health_history"
            " WHERE pipeline = ? ORDER BY position DESC LIMIT ?",
            (name, limit),
            columns=("position", "occurred_at", "health", "circuit", "cause", "detail"),
        )

    def rejected_files(self, name: str | None = None, limit: int = 100) -> pd.DataFrame:
        """Files refused at intake, newest first, with the reason code and the message people read."""
        where, args = ("WHERE pipeline = ?", [name]) if name else ("", [])
        return self._frame(
            f"SELECT occurred_at, pipeline, file, reason_code, message, block_id, sha256, position"
            f" FROM rejected_files {where} ORDER BY position DESC LIMIT ?",
            [*args, limit],
            columns=("occurred_at", "pipeline", "file", "reason_code", "message"),
        )

    # -- events --------------------------------------------------------------------------------------

    def event_types(self) -> list[str]:
        frame = self._frame("SELECT DISTINCT type FROM events ORDER BY type")
        return frame["type"].tolist() if not frame.empty else []

    def events(
        self,
        pipeline: str | None = None,
        types: Sequence[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> pd.DataFrame:
        """A page of the events feed, newest first, filtered by pipeline, types and recorded time.

        `since`/`until` are ISO-8601 times (a date alone works; no zone means UTC); `before` pages back
        from a position. A time that does not parse raises ValueError with an example.
        """
        clauses, args = [], []
        if pipeline:
            clauses.append("pipeline = ?")
            args.append(pipeline)
        if types:
            clauses.append(f"type IN ({', '.join('?' * len(types))})")
            args.extend(types)
        if since:
            clauses.append("recorded_at >= ?")
            args.append(_utc_text(since))
        if until:
            clauses.append("recorded_at <= ?")
            args.append(_utc_text(until, end=True))
        if before:
            clauses.append("position < ?")
            args.append(int(before))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._frame(
            f"SELECT position, recorded_at, pipeline, type, summary FROM events {where}"
            " ORDER BY position DESC LIMIT ?",
            [*args, limit],
            columns=("position", "recorded_at", "pipeline", "type", "summary"),
        )

    def pipeline_event_at(self, name: str, position: int) -> dict[str, Any] | None:
        """The pipeline's own latest event at or before `position` (never another pipeline's), or None."""
        row = self._one(
            "SELECT position, pipeline, type, summary, occurred_at FROM events WHERE pipeline = ? AND stream_id = ?"
            " AND position <= ? ORDER BY position DESC LIMIT 1",
            (name, STREAM_PREFIX + name, int(position)),
        )
        return row

    def event(self, position: int) -> dict[str, Any] | None:
        """One event with its full payload (a dict), or None."""
        row = self._one("SELECT * FROM events WHERE position = ?", (int(position),))
        if row is not None:
            row["payload"] = json.loads(row["payload"])
        return row

    # -- time travel ---------------------------------------------------------------------------------

    def head(self) -> int:
        """The log's last position (read-only); the projected position when the log cannot be read."""
        with self._connect(self.log_path) as conn:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    return int(conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])
        return self.position()

    def state_at(self, name: str, position: int) -> dict[str, Any]:
        """The pipeline's state as of log `position`: a fold of its events up to there (nothing re-run)."""
        from pipelines.core.state import PipelineState, evolve

        position = int(position)
        stream = STREAM_PREFIX + name
        with self._states_lock:
            positions, states = self._states.setdefault(name, ([0], [PipelineState.initial()]))
            i = bisect.bisect_right(positions, position) - 1
            start, state = positions[i], states[i]
        count = 0
        for recorded in self._read_stream(stream, start, position):
            state = evolve(state, self.codec.decode(recorded))
            count += 1
            if count % self.stride == 0:
                self._remember(name, recorded.position, state)
        if count:
            self._remember(name, position, state)
        return _describe_state(name, position, state)

    @property
    def codec(self) -> Any:
        if self._codec is None:
            from eventstore import Codec
            from pipelines.core.events import ALL_EVENTS

            self._codec = Codec(ALL_EVENTS)
        return self._codec

    def _remember(self, name: str, position: int, state: Any) -> None:
        """Keep a folded state (immutable, so sharing it is safe); the log below `position` never changes."""
        with self._states_lock:
            positions, states = self._states[name]
            i = bisect.bisect_left(positions, position)
            if i == len(positions) or positions[i] != position:
                positions.insert(i, position)
                states.insert(i, state)

    def _read_stream(self, stream: str, after: int, upto: int) -> Iterator[Any]:
        from eventstore import Recorded

        with self._connect(self.log_path) as conn:
            if conn is None:
                return
            cursor = conn.execute(
                "SELECT position, stream_id, version, type, schema_version, payload, recorded_at, hash"
                " FROM events WHERE stream_id = ? AND position > ? AND position <= ? ORDER BY position",
                (stream, after, upto),
            )
            while rows := cursor.fetchmany(2000):
                for p, s, v, t, sv, payload, at, h in rows:
                    yield Recorded(p, s, v, t, sv, json.loads(payload), at, h)


OVERVIEW_COLUMNS = ("pipeline", "health", "champion", "last_block", "blocks", "recent_drifted", "recent_checked",
                    "circuit", "last_alert")


def _describe_state(name: str, position: int, state: Any) -> dict[str, Any]:
    champion = state.champion_record()
    return {
        "pipeline": name,
        "position": position,
        "events": state.version,
        "champion": state.champion,
        "champion_strategy": champion.strategy if champion else None,
        "health": state.health,
        "circuit": {"open": state.circuit.open, "until": state.circuit.until,
                    "consecutive_failures": state.circuit.consecutive_failures,
                    "last_reason": state.circuit.last_reason},
        "round": state.round.round_id if state.round else None,
        "last_block": state.last_block,
        "last_event_at": state.last_event_at,
        "counters": asdict(state.counters),
        "lineage": [{"version": m.version, "strategy": m.strategy, "status": m.status, "round": m.round_id,
                     "trained_at": m.trained_at} for m in (state.lineage(state.champion) if state.champion else [])],
        "models": [{"version": m.version, "status": m.status, "strategy": m.strategy, "parent": m.parent}
                   for m in sorted(state.models.values(), key=lambda m: _version_number(m.version))],
    }


def _chain(version: str, parents: dict[str, str | None], limit: int | None = None) -> list[str]:
    chain: list[str] = []
    seen: set[str] = set()
    current: str | None = version
    while current is not None and current in parents and current not in seen:
        if limit is not None and len(chain) == limit:
            break
        chain.append(current)
        seen.add(current)
        current = parents.get(current)
    return chain


def _lineage_text(version: str, parents: dict[str, str | None]) -> str:
    chain = _chain(version, parents, limit=LINEAGE_HOPS + 1)
    text = " ← ".join(chain[:LINEAGE_HOPS])
    return text + (" ← ..." if len(chain) > LINEAGE_HOPS else "")


def _version_number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else 0


def _utc_text(text: str, end: bool = False) -> str:
    """An ISO-8601 input as the store spells times (UTC, microseconds); a bare date spans the whole day."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time; e.g. 2026-03-01T12:00 or 2026-03-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if end and len(text) == 10:  # a date alone: until the end of that day
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
    return moment.isoformat(timespec="microseconds")


def _plain(value: Any) -> Any:
    """numpy scalars from pandas as plain Python values (None for NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value

