"""Crash chaos for alerts: `serve` SIGKILLed (its whole process tree) while alerts are in flight to a slow webhook,
then restarted. At the end every alert-worthy event of the log has reached the receiver at least once, each repeat
with the same `dedup_key` and the same body, so a receiver that drops repeats by key misses nothing.

A seeded SEA scenario (20 blocks, 200 rows, a concept switch) gives drift and rounds; a malformed file gives a
rejection. The receiver answers after a pause, so a kill lands between a send and its recorded outcome.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from alert_receiver import Receiver
from chaos_tools import (
    Feeder,
    cli_env,
    kill_tree,
    look,
    ray_tmpdir,
    seeded,
    start_cli,
    wait_for,
    write_config,
    write_scenario_files,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]

SEED = 20260522
KILLS = 3
EVENTS = ("DriftDetected", "ModelPromoted", "ChallengerRejected", "ModelRolledBack", "CircuitOpened",
          "BlockRejected")


def alert_worthy(home: Path) -> list[tuple[int, str]]:
    """(position, type) of the alert-worthy events of the pipelines (DriftDetected only when it starts a round
    or warns: every one counts, the sink's minimum severity is "info")."""
    if not (home / "log.sqlite").exists():
        return []
    with sqlite3.connect(f"file:{home / 'log.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT position, type FROM events WHERE stream_id LIKE 'pipeline-%' "
                            "ORDER BY position").fetchall()
    return [(p, t) for p, t in rows if t in EVENTS]


def test_every_alert_reaches_the_receiver_at_least_once_across_sigkills(tmp_path: Path) -> None:
    rng = seeded(SEED)
    files = write_scenario_files(tmp_path / "scenario", blocks=20, rows=200, seed=11)
    (tmp_path / "scenario" / "block_broken.csv").write_text("")  # an empty file: BlockRejected
    files = sorted(files + [tmp_path / "scenario" / "block_broken.csv"])
    configs = tmp_path / "configs"
    write_config(configs, "sea", tmp_path / "incoming")
    home = tmp_path / "home"
    ray_tmp = ray_tmpdir()
    env = cli_env(ray_tmp)
    out = tmp_path / "serve.out"
    with Receiver() as receiver:
        slow = receiver.server.RequestHandlerClass.do_POST

        def do_post(handler) -> None:  # every answer after a pause: alerts are in flight when a kill lands
            time.sleep(0.3)
            slow(handler)

        receiver.server.RequestHandlerClass.do_POST = do_post
        (configs / "alerts.toml").write_text(
            f'[[alerts]]\nsink = "webhook"\nname = "hook"\nurl = "{receiver.url}"\nevents = {list(EVENTS)!r}\n'
            "max_per_window = 1000\nbackoff_seconds = 0.2\nmax_backoff_seconds = 1.0\n".replace("'", '"'))
        feeder = Feeder(files, tmp_path / "incoming", home, backlog=6).start()
        args = ["serve", "--config-dir", str(configs), "--no-ui", "--home", str(home), "--scan-interval", "2"]
        try:
            for k in range(KILLS):
                proc = start_cli(args, cwd=tmp_path, env=env, out=out)
                seen = len(receiver.bodies)
                # kill once this serve has delivered a few alerts and the log holds more it has not
                wait_for(lambda s=seen: len(receiver.bodies) >= s + rng.randint(1, 3)
                         and len(alert_worthy(home)) > len({b["dedup_key"] for b in receiver.bodies}),
                         240, "alerts in flight", tick=0.05, alive=proc)
                print(f"kill {k + 1}: {len(receiver.bodies)} bodies, {len(alert_worthy(home))} alert-worthy",
                      flush=True)
                kill_tree(proc)
            ready = out.read_text().count("Ctrl-C stops.") if out.exists() else 0
            proc = start_cli(args, cwd=tmp_path, env=env, out=out)
            try:
                # SIGTERM is handled once serve is up (before that it is Ray's: exit 15): wait for it to be up
                assert wait_for(lambda: out.read_text().count("Ctrl-C stops.") > ready, 180, "serve to start",
                                tick=0.2, alive=proc), out.read_text()[-3000:]

                def all_delivered() -> bool:
                    kinds = look(home).types  # every file dropped *and* recorded (the broken one comes last)
                    fed = feeder.fed >= len(files) and kinds.count("BlockArrived") + kinds.count("BlockRejected") \
                        >= len(files)
                    wanted = {str(p) for p, _ in alert_worthy(home)}
                    return fed and bool(wanted) and wanted <= {b["dedup_key"] for b in receiver.bodies}

                assert wait_for(all_delivered, 600, "every alert", tick=0.5, alive=proc), out.read_text()[-3000:]
                time.sleep(3)  # the last events of a round may still come: they must arrive too
                assert wait_for(all_delivered, 120, "every alert", tick=0.5, alive=proc)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=120) == 0
            finally:
                kill_tree(proc)
        finally:
            feeder.stop()
            shutil.rmtree(ray_tmp, ignore_errors=True)
    worthy = alert_worthy(home)
    by_key: dict[str, list[dict]] = {}
    for body in receiver.bodies:
        by_key.setdefault(body["dedup_key"], []).append(body)
    missing = [p for p, _ in worthy if str(p) not in by_key]
    assert not missing, f"never delivered: {missing}"
    assert set(by_key) == {str(p) for p, _ in worthy}, "a body for an event that is not alert-worthy"
    for key, bodies in by_key.items():  # a repeat is the same alert: same event, same words
        assert len({(b["position"], b["event_type"], b["summary"]) for b in bodies}) == 1, key
    assert {t for _, t in worthy} >= {"DriftDetected", "BlockRejected", "ModelPromoted"}
    print(f"{len(worthy)} alert-worthy events, {len(receiver.bodies)} bodies received "
          f"({len(receiver.bodies) - len(by_key)} repeats)", flush=True)
