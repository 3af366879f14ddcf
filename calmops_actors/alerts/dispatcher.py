"""The alert dispatcher: one thread per sink follows the log from its own checkpoint and records what it got.

Like a projection, a sink reads `read_all(after_position=checkpoint)` and moves its checkpoint forward; unlike
one, its "apply" talks to the world, so the order is: send (with retries), append the outcome to the log's
`alerts` stream (`AlertDelivered` / `AlertFailed`), then save the checkpoint. A crash between any two of
these repeats the alert with the same `dedup_key` (its position), so delivery is at least once and a receiver
can drop repeats. The outcomes live in their own stream: no pipeline's fold, version or rejection key sees
them, and they are chained and trusted like every other record.

Each sink has its own thread, so a sink that hangs or fails delays only its own alerts, and the pipelines
never wait for any of them. Rate limiting and digests are `pipelines.alerts.limiter`; the retry schedule is
`pipelines.alerts.retry`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from calmops_actors.alerts import checkpoint
from calmops_actors.alerts.checkpoint import Checkpoint
from calmops_actors.alerts.sinks import send
from calmops_actors.clock import now_iso
from calmops_actors.home import pipeline_name
from eventstore import ConcurrencyError, CorruptLogError, EventStore, Recorded
from pipelines.alerts.limiter import Digest, admit, due
from pipelines.alerts.message import alert_body, digest_body, severity_of, wanted
from pipelines.alerts.retry import delays
from pipelines.alerts.routes import Route
from pipelines.config.alerts import SEVERITY
from pipelines.core.events import AlertDelivered, AlertFailed

__all__ = ["ALERTS_STREAM", "AlertDispatcher", "OutcomeLog", "SinkWorker"]

ALERTS_STREAM = "alerts"
log = logging.getLogger("calmops.alerts")


class OutcomeLog:
    """Appends outcomes to the `alerts` stream; the sinks' threads share it (one append at a time)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def record(self, event: AlertDelivered | AlertFailed) -> None:
        with self._lock:
            for _ in range(20):  # only this process writes the stream; a conflict means a stale version
                try:
                    self.store.append(ALERTS_STREAM, [event], self.store.stream_version(ALERTS_STREAM))
                    return
                except ConcurrencyError:
                    continue
            raise ConcurrencyError("could not append to the alerts stream after 20 tries")

    def last_position(self, route_id: str) -> int | None:
        """The last alerted position the log records an outcome of `route_id` for (None: none)."""
        last = None
        for recorded in self.store.read(ALERTS_STREAM):
            if recorded.payload.get("sink") == route_id:
                last = max(last or 0, int(recorded.payload.get("position") or 0))
        return last


class SinkWorker:
    """One sink's thread: follow the log, decide, send with retries, record, move the checkpoint."""

    def __init__(self, route: Route, store: EventStore, outcomes: OutcomeLog, folder: Path, *, start_at: int,
                 ui_url: str | None = None, env: Mapping[str, str] | None = None, poll: float = 0.5,
                 batch: int = 200, clock: Callable[[], float] = time.time) -> None:
        self.route, self.store, self.outcomes, self.folder = route, store, outcomes, folder
        self.start_at, self.ui_url, self.env, self.poll, self.batch, self.clock = (
            start_at, ui_url, env, poll, batch, clock)
        self.delivered = self.failed = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"calmops-alerts-{route.id}", daemon=True)

    def start(self) -> SinkWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.route.sink.timeout_seconds + 5 if timeout is None else timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the loop -------------------------------------------------------------------------------------

    def _loop(self) -> None:
        cp = checkpoint.load(self.folder, self.route.id)
        if cp is None:
            recorded = self.outcomes.last_position(self.route.id)
            cp = Checkpoint(self.start_at if recorded is None else recorded)
            checkpoint.save(self.folder, self.route.id, cp)  # a restart resumes here, not at a later log end
        while not self._stop.is_set():
            try:
                cp = self.step(cp)
            except Exception as err:  # the log is busy or damaged: say so, try again; the pipelines go on
                self.last_error = f"{type(err).__name__}: {err}"
                log.exception("alerts %s: step failed; retrying", self.route.id)
                self._stop.wait(max(self.poll, 1.0))

    def step(self, cp: Checkpoint) -> Checkpoint:
        """Send the digests that are due, then the alerts after the checkpoint (one batch); the new checkpoint."""
        cp = self._flush(cp)
        records = self.store.read_all(after_position=cp.position, limit=self.batch)
        if not records:
            self._stop.wait(self.poll)
            return cp
        start = cp
        for recorded in records:
            if self._stop.is_set():
                break
            settled = self._handle(recorded, cp)
            if settled is None:  # stopping in the middle of retries: this alert is not settled, keep its place
                break
            cp = settled
        if cp != start:
            checkpoint.save(self.folder, self.route.id, cp)
        return cp

    def _handle(self, recorded: Recorded, cp: Checkpoint) -> Checkpoint | None:
        sink, pipeline = self.route.sink, pipeline_name(recorded.stream_id)
        skip = Checkpoint(recorded.position, cp.limiter)
        if pipeline not in self.route.pipelines or recorded.type not in sink.events:
            return skip
        try:
            event = self.store.codec.decode(recorded)
        except CorruptLogError as err:  # a type from newer code: nothing to say about it
            log.warning("alerts %s: %s", self.route.id, err)
            return skip
        if not wanted(sink, event):
            return skip
        body = alert_body(pipeline, event, position=recorded.position, version=recorded.version,
                          recorded_at=recorded.recorded_at, ui_url=self.ui_url)
        at = datetime.fromisoformat(recorded.recorded_at).timestamp()
        limiter, verdict, closed = admit(cp.limiter, pipeline, recorded.type, at=at, position=recorded.position,
                                         summary=body["summary"], max_per_window=sink.max_per_window,
                                         window_seconds=sink.window_seconds)
        if closed is not None and not self._deliver_digest(closed):
            return None
        if verdict == "send" and not self._deliver(body, severity_of(event)):
            return None
        settled = Checkpoint(recorded.position, limiter)
        checkpoint.save(self.folder, self.route.id, settled)  # after the outcome is in the log
        return settled

    def _flush(self, cp: Checkpoint) -> Checkpoint:
        limiter, digests = due(cp.limiter, now=self.clock(), window_seconds=self.route.sink.window_seconds)
        if not digests and limiter == cp.limiter:
            return cp
        for digest in digests:
            if not self._deliver_digest(digest):
                return cp
        cp = Checkpoint(cp.position, limiter)
        checkpoint.save(self.folder, self.route.id, cp)
        return cp

    def _deliver_digest(self, digest: Digest) -> bool:
        body = digest_body(digest, severity=SEVERITY.get(digest.event_type, "info"), recorded_at=now_iso(),
                           ui_url=self.ui_url)
        return self._deliver(body, body["severity"], digest_of=digest.count)

    def _deliver(self, body: dict[str, Any], severity: str, digest_of: int = 0) -> bool:
        """Send with retries and record the outcome; False when asked to stop before it was settled."""
        sink = self.route.sink
        waits = delays(max_attempts=sink.max_attempts, backoff_seconds=sink.backoff_seconds,
                       max_backoff_seconds=sink.max_backoff_seconds)
        common = {"sink": self.route.id, "sink_kind": sink.sink, "pipeline": body["pipeline"],
                  "event_type": body["event_type"], "position": body["position"], "dedup_key": body["dedup_key"],
                  "digest_of": digest_of}
        for attempt in range(1, sink.max_attempts + 1):
            answer = send(sink, body, base_dir=self.route.base_dir, env=self.env)
            if answer.ok:
                self.outcomes.record(AlertDelivered(**common, attempts=attempt, status=answer.status,
                                                    occurred_at=now_iso()))
                self.delivered += 1
                return True
            self.last_error = answer.text
            log.warning("alerts %s: %s (position %s, try %d of %d)", self.route.id, answer.text,
                        body["position"], attempt, sink.max_attempts)
            if attempt <= len(waits) and self._stop.wait(waits[attempt - 1]):
                return False
        self.outcomes.record(AlertFailed(**common, attempts=sink.max_attempts, status=answer.status,
                                         error=answer.text, occurred_at=now_iso()))
        self.failed += 1
        return True


class AlertDispatcher:
    """The sinks' threads for one `serve`: `configure(routes)` starts, restarts and stops them as configs change.

    `start_at` is where a sink never seen before begins: the log's end when the dispatcher was created (so the
    sinks a config folder declares at start hear everything this `serve` records, and none of the history).
    """

    def __init__(self, store: EventStore, folder: Path, *, ui_url: str | None = None,
                 env: Mapping[str, str] | None = None, poll: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.folder, self.ui_url, self.env, self.poll, self.clock = (
            store, folder, ui_url, env, poll, clock)
        self.outcomes = OutcomeLog(store)
        self.start_at = store.head()
        self.workers: dict[str, SinkWorker] = {}

    def configure(self, routes: Iterable[Route]) -> None:
        wanted_routes = {r.id: r for r in routes}
        for route_id in [i for i in self.workers if i not in wanted_routes]:
            self.workers.pop(route_id).stop()
        for route_id, route in wanted_routes.items():
            worker = self.workers.get(route_id)
            if worker is not None and worker.route.sink == route.sink and worker.route.base_dir == route.base_dir:
                worker.route = route  # only the pipelines it serves changed: it reads them on its next event
                continue
            if worker is not None:
                worker.stop()
            self.workers[route_id] = SinkWorker(route, self.store, self.outcomes, self.folder, start_at=self.start_at,
                                                ui_url=self.ui_url, env=self.env, poll=self.poll,
                                                clock=self.clock).start()

    def status(self) -> dict[str, dict[str, Any]]:
        return {i: {"delivered": w.delivered, "failed": w.failed, "last_error": w.last_error}
                for i, w in self.workers.items()}

    def stop(self) -> None:
        for worker in self.workers.values():
            worker._stop.set()
        for worker in self.workers.values():
            worker.stop()
        self.workers.clear()
