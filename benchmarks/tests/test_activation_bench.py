"""The activation benchmark's pure parts: the long log it builds, the timestamps it reads, the rows it reports."""

from __future__ import annotations

import doctest
import json

from benchmarks import activation
from benchmarks.ui_bench import pipeline_events


def cycle(variant: str, cold: float, warm: float, activated: float = 1.0) -> dict:
    return {"variant": variant, "snapshot_version": 0 if variant == "no snapshot" else 100, "load": [3.0, 3.0, 3.0],
            "cold": {"block": "b1", "total_s": cold, "arrived_s": cold - 0.5, "activated_s": activated,
                     "spawn_call_s": 0.1},
            "warm": {"block": "b2", "total_s": warm, "arrived_s": 0.05}, "added_s": cold - warm}


def results(cycles: list[dict]) -> dict:
    first = cycle("snapshot", 5.0, 0.5)
    fresh = {f"{k}{s}": 0.1 for k in ("import_ray", "import_actor", "load", "configure", "caches")
             for s in ("_s", "_cpu_s")}
    return {"events": 300, "load_before": 1.0, "load_after": 2.0,
            "build": {"load_with_snapshot_s": 0.01, "load_without_snapshot_s": 0.2, "log_mb": 1.0,
                      "snapshot_version": 300, "fresh_with_snapshot": fresh, "fresh_without_snapshot": fresh},
            "serve": {"first": first, "cycles": cycles}, "summary": activation.summarize(cycles)}


def test_the_long_log_is_copies_of_a_real_block_that_fold_like_any_other(tmp_path):
    from calmops_actors.home import Home, stream_id
    from pipelines.core.state import replay

    home = tmp_path / "home"
    store = Home(home).create().open_store()
    stream = stream_id(activation.NAME)
    life = list(pipeline_events(activation.NAME, 3, seed=1))
    store.append(stream, life, expected_version=0)
    last = life[-1].block_id
    template = [e for e in life if getattr(e, "block_id", None) == last]
    before = replay(life)
    store.close()
    version = activation.extend_log(home, template, 300)
    assert 300 <= version < 300 + len(template)
    store = Home(home).open_store()
    state = replay(store.codec.decode(r) for r in store.read(stream))
    store.close()
    copies = (version - len(life)) // len(template)
    assert state.version == version
    assert state.counters.blocks == before.counters.blocks + copies
    assert state.champion == before.champion and state.schema == before.schema
    assert list(state.pending_blocks()) == []  # every copy is checked: nothing waits after activation
    arrived = [b for b in state.blocks.values() if b.block_id.startswith("s")]
    assert len({b.artifact.sha256 for b in arrived}) == 1 and len(arrived) == copies


def test_the_config_is_the_init_template_with_a_short_idle_time(tmp_path):
    from pipelines.config.pipeline import config_from_text

    path = activation.write_config(tmp_path / "pipelines", idle_seconds=7)
    config = config_from_text(path.read_text(), str(path))
    assert config.name == activation.NAME and config.lifecycle.idle_seconds == 7
    assert (tmp_path / "pipelines" / "incoming" / activation.NAME).is_dir()
    raw, sha = activation.config_of(path)
    assert raw["name"] == activation.NAME and len(sha) == 64


def test_summary_pairs_each_passivated_block_with_the_active_one_after_it():
    cycles = [cycle("snapshot", 3.0, 0.5), cycle("no snapshot", 6.0, 0.5), cycle("snapshot", 2.0, 1.0),
              cycle("no snapshot", 8.0, 1.0)]
    summary = activation.summarize(cycles)
    assert set(summary) == {"snapshot", "no snapshot"}
    snap = summary["snapshot"]
    assert snap["n"] == 2 and snap["added_s"] == 1.75 and snap["cold_range"] == [2.0, 3.0]
    assert snap["to_activated_s"] == 1.0 and snap["activated_to_checked_s"] == 1.5


def test_rows_judge_the_snapshot_variant_and_report_the_other_and_the_split():
    fast = results([cycle("snapshot", 1.5, 0.5), cycle("no snapshot", 6.0, 0.5)])
    out = activation.rows(fast)
    judged = [r for r in out if r.met is not None]
    assert len(judged) == 1 and judged[0].met is True and judged[0].target == "adds <= 2 s"
    assert "with the snapshot passivation left" in judged[0].figure and "300-event log" in judged[0].figure
    other = next(r for r in out if "without a snapshot" in r.figure)
    assert other.met is None and other.target.endswith("(information)")
    assert sum("where the passivated block's time goes" in r.figure for r in out) == 2
    assert sum("the new process's steps apart" in r.figure for r in out) == 2
    assert out[-1].figure.startswith("first activation after `serve` started")
    slow = activation.rows(results([cycle("snapshot", 4.0, 0.5), cycle("no snapshot", 6.0, 0.5)]))
    assert [r.met for r in slow if r.met is not None] == [False]
    assert activation.rows(json.loads(json.dumps(fast))) == out


def test_the_doctests_pass():
    failed, attempted = doctest.testmod(activation)
    assert attempted > 0 and failed == 0
