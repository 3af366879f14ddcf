"""`calmops status`: every pipeline in the home at a glance: champion, last block, drift, circuit, health.

Read from the log (a snapshot speeds it up when one exists), so it answers the same whether or not `serve`
is running. `--json` prints one object per pipeline in a list.
"""

from __future__ import annotations

import argparse
import json
import sys

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option, print_table, resolve_home
from calmops_actors.home_lock import owner_alive
from pipelines.read_model import explain
from pipelines.read_model.projection import metric_of

EXAMPLES = """\
examples:
  calmops status
  calmops status --home /srv/calmops --json

exit codes: 0 done (also when the home has no pipeline yet), 2 no home at that path
"""

# `events`: the pipeline's own event count (its stream version), not a model version (those are v1, v2, ...)
COLUMNS = ["pipeline", "health", "activity", "champion", "strategy", "last_block", "drift", "estimate", "circuit", "round",
           "blocks", "pending", "rejected", "promotions", "events"]
TAIL = 40  # the events read back from a stream's end to find its latest estimate (a block records about five)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="every pipeline: champion, last block, drift, circuit, health",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per pipeline")
    add_home_option(p)
    p.set_defaults(func=run)


def row(summary: dict) -> dict:
    champion = summary["champion"]
    last = summary["last_block"]
    circuit = summary["circuit"]
    return {
        "pipeline": summary["pipeline"], "health": summary["health"],
        "champion": champion["version"] if champion else None,
        "strategy": champion["strategy"] if champion else None,
        "last_block": last["block_id"] if last else None,
        "drift": None if last is None or last["drifted"] is None else ("yes" if last["drifted"] else "no"),
        "circuit": f"open until {circuit['until']}" if circuit["open"] else "closed",
        "round": summary["round"]["round_id"] if summary["round"] else None,
        "blocks": summary["counters"]["blocks"], "pending": summary["pending"],
        "rejected": summary["counters"]["rejected_files"],
        "promotions": summary["counters"]["promotions"], "events": summary["version"],
        "estimate": estimate_text(summary.get("estimate")),
        "activity": summary.get("activity"),
    } | interrupted_round(summary)


def estimate_text(estimate: dict | None) -> str | None:
    """"accuracy 0.912 [0.897, 0.926] on b7": the latest block's estimated metric, without labels."""
    if not estimate:
        return None
    low, high = estimate["interval"]
    return f"{estimate['metric']} {estimate['value']:.3f} [{low:.3f}, {high:.3f}] on {estimate['block_id']}"


def latest_estimate(store, name: str, version: int, metric: str, tail: list | None = None) -> dict | None:
    """The pipeline's newest `PerformanceEstimated` in the last events of its stream (None when none)."""
    tail = tail if tail is not None else read_tail(store, name, version)
    for recorded in reversed(tail):
        if recorded.type == "PerformanceEstimated":
            event = store.codec.decode(recorded)
            if metric in event.metrics:
                return {"block_id": event.block_id, "version": event.version, "metric": metric,
                        "value": event.metrics[metric], "interval": list(event.interval[metric])}
    return None


def interrupted_round(summary: dict) -> dict:
    """A round the log has in flight while no `run` or `serve` of the pipeline is alive is not running: its
    tasks died with the process that started them (Ctrl-C, a crash). The log keeps it as requested, and the
    next `run` or `serve` re-issues it, so it is shown as interrupted rather than as retraining."""
    round_id = summary.get("interrupted_round")
    return {"health": "interrupted", "round": f"{round_id} (interrupted)"} if round_id else {}


def read_tail(store, name: str, version: int) -> list:
    from calmops_actors.home import stream_id

    return store.read(stream_id(name), after_version=max(0, version - TAIL))


def activity(tail: list) -> str | None:
    """"idle" when the pipeline's last fact is its actor's passivation (or its registration: nothing done yet),
    "active" otherwise (its actor ran last; under a running `serve` it is up)."""
    if not tail:
        return None
    return "idle" if tail[-1].type in ("PipelinePassivated", "PipelineRegistered") else "active"


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    summaries = []
    with readlog.store_for(args) as store:
        for name in readlog.list_pipelines(store):
            progress = readlog.Progress(f"reading {name}")
            try:
                state = readlog.load_state(store, name, progress=progress).state
                summary = explain.state_summary(state)
            finally:
                progress.close()
            tail = read_tail(store, name, state.version)
            summary["estimate"] = latest_estimate(store, name, state.version, metric_of(state.config), tail)
            summary["activity"] = activity(tail)
            in_flight = summary["round"]["round_id"] if summary["round"] else None
            summary["interrupted_round"] = (
                in_flight if in_flight and not owner_alive(resolve_home(args), name) else None)
            summaries.append(summary)
    if args.json:
        print(json.dumps(summaries), file=out)
    elif not summaries:
        print("no pipelines yet: `calmops run CONFIG` (or `serve`) records the first events", file=out)
    else:
        print_table([row(s) for s in summaries], COLUMNS, out)
    return 0
