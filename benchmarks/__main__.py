"""Run every benchmark, write one JSON of results, and regenerate the tables in `benchmarks/README.md`.

    python -m benchmarks [--quick | --full] [--only KEY ...] [--skip KEY ...] [--json PATH] [--no-readme]

`--quick` (the default) is the set that finishes in about 10 minutes on 2 cores: every benchmark at a small
size, enough to see each ratio against its same-run baseline. `--full` runs the sizes the targets name (1M
events, 10 seeds, ...), which takes hours. Each benchmark runs in a subprocess of its own (its own Ray, its own
memory), with its output kept in `benchmarks/results/logs/`. The README keeps one generated table per
benchmark and mode between `<!-- results:KEY:MODE -->` markers; the prose around them is hand-written.
A benchmark that fails or times out keeps its previous table, is named in the summary, and makes the exit
status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import render, replace_section

ROOT = Path(__file__).resolve().parent
README = ROOT / "README.md"
RESULTS = ROOT / "results"


@dataclass(frozen=True)
class Bench:
    key: str
    module: str
    title: str
    quick: tuple[str, ...]
    full: tuple[str, ...]
    quick_timeout: float = 600
    full_timeout: float = 4 * 3600

    def args(self, mode: str) -> tuple[str, ...]:
        return self.quick if mode == "quick" else self.full

    def command(self, mode: str) -> str:
        return " ".join(["python -m", f"benchmarks.{self.module}", *self.args(mode)]).strip()


BENCHES = (
    Bench("eventstore", "eventstore_bench", "Event store: append and replay against plain sqlite3",
          ("--events", "1000", "--replay-events", "20000", "--repeats", "1"),
          ("--events", "3000", "--replay-events", "1000000", "--repeats", "3", "--replay-repeats", "1")),
    Bench("drift", "drift_quality", "Drift: false alarms, sensitivity, concept drift, cost",
          ("--quick",), ()),
    Bench("e2e", "e2e_bench", "End to end: blocks/s through the actor, serve start-up",
          ("--quick",), ("--blocks", "8")),
    Bench("scaling", "scaling", "Scaling: rows, features and concurrent pipelines", ("--quick",), ()),
    Bench("memory", "memory", "Memory: peak memory (PSS, and RSS sum) of serve", ("--quick",), ()),
    Bench("activation", "activation", "Activation: a passivated pipeline's first block against an active actor's",
          ("--quick",), (), quick_timeout=900),
    Bench("parallel", "parallel_retraining", "Parallel retraining round",
          ("--rows", "20000", "--repeats", "1"), ()),
    Bench("closed_loop", "closed_loop", "Detection quality and the closed loop", ("--quick",), ()),
    Bench("peer", "peer_evidently", "A peer: Evidently's data drift preset", ("--quick",), (), quick_timeout=900),
    Bench("estimation", "estimation", "Performance estimation: ours and NannyML's CBPE against realised accuracy",
          ("--quick",), (), quick_timeout=900),  # the first run creates NannyML's venv (a few minutes)
    Bench("ui", "ui_bench", "UI: queries, pages, projections",
          ("--pipelines", "10", "--blocks", "1000", "--long-blocks", "2000", "--repeats", "3"), ("--browser",)),
    Bench("replay", "replay_bench", "Replay: a pipeline's state from its log", ("--quick",),
          ("--log", "benchmarks/results/replay-log")),  # the 1M log is kept: generating it takes 20 min
    Bench("ipip", "ipip_bench", "IPIP on rare events",
          ("--seeds", "0", "--rates", "0.02", "--blocks", "10", "--drift-at", "6", "--rows", "2000"), ()),
)
BY_KEY = {b.key: b for b in BENCHES}


def run_one(bench: Bench, mode: str, logs: Path) -> dict:
    """Run one benchmark in a subprocess; its JSON, its rows, and how it went."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{bench.key}-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", f"benchmarks.{bench.module}", *bench.args(mode), "--json", str(out)]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
        load_before, started = os.getloadavg()[0], time.monotonic()
        timeout = bench.quick_timeout if mode == "quick" else bench.full_timeout
        log_path = logs / f"{bench.key}.log"
        record = {"command": bench.command(mode), "load_before": load_before}
        with log_path.open("w") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                record["returncode"] = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # the whole group: a benchmark may have started Ray or serve
                record["returncode"] = None
                stop_group(proc)
        record.update(seconds=time.monotonic() - started, load_after=os.getloadavg()[0], log=str(log_path))
        if record["returncode"] is None:
            record.update(status="timeout", error=f"did not finish within {timeout:.0f} s")
        elif not out.exists():
            record.update(status="failed", error=f"exit {record['returncode']}, no JSON written; "
                                                 f"see {log_path}: {tail(log_path)}")
        else:
            record["results"] = json.loads(out.read_text())
            try:
                module = importlib.import_module(f"benchmarks.{bench.module}")
                record["rows"] = [row.as_dict() for row in module.rows(record["results"])]
                record["status"] = "ok"
            except Exception as exc:  # a rows() bug must not lose the other benchmarks' results
                record.update(status="failed", error=f"rows() raised {type(exc).__name__}: {exc}")
    return record


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the benchmark's process group (its clean-up runs), SIGKILL if it is still there after 30 s."""
    import signal

    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = 3) -> str:
    text = path.read_text(errors="replace").strip().splitlines()
    return " / ".join(text[-lines:])


def table_block(bench: Bench, mode: str, record: dict, when: str) -> str:
    from benchmarks.report import Row

    rows = [Row(**r) for r in record["rows"]]
    return (f"{mode.capitalize()} run, {when}: `{record['command']}` ({record['seconds']:.0f} s, load average "
            f"{record['load_before']:.1f} -> {record['load_after']:.1f} on {os.cpu_count()} CPUs; generated "
            f"by `python -m benchmarks --{mode}`)\n\n{render(rows)}")


def update_readme(text: str, bench: Bench, mode: str, block: str) -> str:
    """Replace this benchmark's table for this mode; a new one goes after the other mode's, or at the end."""
    key = f"{bench.key}:{mode}"
    if f"<!-- results:{key} -->" in text:
        return replace_section(text, key, block)
    other = f"<!-- /results:{bench.key}:{'full' if mode == 'quick' else 'quick'} -->"
    new = f"<!-- results:{key} -->\n{block}\n<!-- /results:{key} -->"
    if other in text:
        return text.replace(other, f"{other}\n\n{new}", 1)
    return text.rstrip("\n") + f"\n\n## {bench.title}\n\n{new}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick", help="the ~10 minute set (default)")
    mode.add_argument("--full", action="store_const", dest="mode", const="full", help="the sizes the targets name")
    parser.add_argument("--only", nargs="+", choices=sorted(BY_KEY), metavar="KEY",
                        help=f"run only these ({', '.join(BY_KEY)})")
    parser.add_argument("--skip", nargs="+", choices=sorted(BY_KEY), metavar="KEY", default=[])
    parser.add_argument("--json", type=Path, help="where to write the results (default benchmarks/results/)")
    parser.add_argument("--no-readme", action="store_true", help="do not touch benchmarks/README.md")
    args = parser.parse_args(argv)
    mode_name = args.mode or "quick"
    chosen = [b for b in BENCHES if (not args.only or b.key in args.only) and b.key not in args.skip]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    logs = RESULTS / "logs" / f"{mode_name}-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    report: dict = {"mode": mode_name, "started": stamp, "cpus": os.cpu_count(), "benchmarks": {}}
    started = time.monotonic()
    for bench in chosen:
        print(f"== {bench.key}: {bench.command(mode_name)}", flush=True)
        record = run_one(bench, mode_name, logs)
        report["benchmarks"][bench.key] = record
        print(f"   {record['status']} in {record['seconds']:.0f} s (load {record['load_before']:.1f} -> "
              f"{record['load_after']:.1f})" + (f": {record['error']}" if record["status"] != "ok" else ""),
              flush=True)
        if record["status"] == "ok":
            from benchmarks.report import Row

            print("   " + render([Row(**r) for r in record["rows"]]).replace("\n", "\n   "), flush=True)
    report["seconds"] = time.monotonic() - started
    target = args.json or RESULTS / f"{mode_name}-{stamp}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=str))
    (RESULTS / f"latest-{mode_name}.json").write_text(json.dumps(report, indent=2, default=str))
    if not args.no_readme:
        text, when = README.read_text(), stamp[:10]
        for bench in chosen:
            record = report["benchmarks"][bench.key]
            if record["status"] == "ok":
                text = update_readme(text, bench, mode_name, table_block(bench, mode_name, record, when))
        README.write_text(text)
    failed = [k for k, r in report["benchmarks"].items() if r["status"] != "ok"]
    print(f"{len(chosen) - len(failed)}/{len(chosen)} benchmarks ran in {report['seconds'] / 60:.1f} min; results in "
          f"{target}" + ("" if args.no_readme else "; tables regenerated in benchmarks/README.md")
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
