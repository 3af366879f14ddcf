"""UI read side at scale: projecting a big log, and every query a page runs, against plain table reads.

    python -m benchmarks.ui_bench [--pipelines 50] [--blocks 10000] [--long-blocks 10000] [--repeats 5]
                                  [--browser] [--json PATH]

Two synthetic homes are written through the real codec and store, then projected with `update_projections`:
"fleet" (`--pipelines` pipelines sharing `--blocks` blocks) and "long" (one pipeline with `--long-blocks`
blocks). Each block is arrived, scored and drift-checked on 5 features; every 10th drifts and starts a round
of 2 candidates (half promoted); every 97th file is rejected. Reported, each against a baseline measured in
the same run:

- projection: `update_projections` from 0, against reading and JSON-decoding the same log (`iter_all`);
- each `Queries` method the pages call (median of `--repeats`), against `SELECT *` of the table it reads;
- a whole page as the app renders it (queries + Plotly figures + HTML), target < 2 s;
- time travel to the head of the long pipeline, cold and warm (cached states);
- with `--browser` (Debian's chromium): wall time from navigation to the rendered Overview and Pipeline pages.

A third home, "many" (`--many-pipelines`, default 1,000, each with `--many-blocks` blocks, default 3: a few
events each), checks issue 23's "many pipelines at once": the same figures (the Overview in the browser with
`--browser`, target < 2 s), and `calmops status` on it as a user runs it (a subprocess; median of
`--repeats`), against `calmops status` on an empty home in the same run (the command's start-up).
`--many-pipelines 0` leaves it out.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from calmops_actors.home import Home, stream_id
from calmops_actors.projector import update_projections
from pipelines.core.events import (
    Artifact,
    BlockArrived,
    BlockRejected,
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
    DriftChecked,
    DriftDetected,
    ModelPromoted,
    PerformanceMeasured,
    PipelineRegistered,
    RetrainRequested,
    SchemaFixed,
)
from pipelines.core.schema import ColumnSchema
from pipelines.drift.results import FeatureDrift, PerformanceDrift

FEATURES = ("f1", "f2", "f3", "f4", "f5")
PAGE_TARGET_S = 2.0
CHUNK = 500  # events per append


def sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def at(i: int) -> str:
    return f"2026-01-{1 + i // 86_400 % 28:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00"


def pipeline_events(name: str, blocks: int, seed: int) -> Iterator[Any]:
    """A plausible life: blocks scored and checked, a drift every 10th block, rounds, promotions, rejections."""
    rng = random.Random(seed)
    t = 0
    config = {"name": name, "task": "classification", "retrain": {"metric": None},
              "drift": {"performance_tolerance": 0.05}}
    yield PipelineRegistered(name=name, config_sha256=sha(name), config=config, occurred_at=at(t))
    yield SchemaFixed(schema=ColumnSchema(features=FEATURES, categorical=(), target="y", source="first_block"),
                      block_id="block_00001", occurred_at=at(t))
    champion, version, rounds, bar = None, 0, 0, 0.9

    def round_of(block_id: str, trigger: str, training: tuple[str, ...]) -> Iterator[Any]:
        nonlocal champion, version, rounds, bar
        rounds += 1
        rid = f"r{rounds}"
        yield RetrainRequested(round_id=rid, block_id=block_id, strategies=("full", "windowed"),
                               training_blocks=training, holdout_blocks=(block_id,), holdout="last 20%",
                               seed=rounds, trigger=trigger, occurred_at=at(t))
        scores = {}
        for strategy in ("full", "windowed"):
            version += 1
            v = f"v{version}"
            scores[v] = (strategy, round(rng.uniform(0.85, 0.99), 4))
            yield CandidateTrained(round_id=rid, model_version=v, strategy=strategy,
                                   artifact=Artifact(sha256=sha(v + name), kind="model", size=1000, format="skops"),
                                   sha256=sha(v + name), training_blocks=training, seconds=0.1,
                                   parent_version=champion, rows=600 * len(training), occurred_at=at(t))
            yield ChallengerEvaluated(round_id=rid, model_version=v, metrics={"accuracy": scores[v][1]},
                                      champion_metrics={"accuracy": bar} if champion else {}, occurred_at=at(t))
        best = max(scores, key=lambda v: scores[v][1])
        if champion is None or rng.random() < 0.5:
            yield ModelPromoted(model_version=best, previous_version=champion, strategy=scores[best][0],
                                reason=f"promote {best}", metrics={"accuracy": scores[best][1]}, round_id=rid,
                                occurred_at=at(t))
            champion, bar = best, scores[best][1]
        else:
            yield ChallengerRejected(round_id=rid, model_versions=tuple(scores), reason="not better by 0.01",
                                     occurred_at=at(t))

    for b in range(1, blocks + 1):
        t += 60
        bid = f"block_{b:05d}"
        if b % 97 == 0:
            yield BlockRejected(file=f"{bid}b.csv", sha256=sha(bid + "b" + name), reason_code="wrong_delimiter",
                                message=f"{bid}b.csv: the header looks separated by ';'", occurred_at=at(t))
        yield BlockArrived(block_id=bid, file=f"{bid}.csv", sha256=sha(bid + name), rows=600, labelled=True,
                           artifact=Artifact(sha256=sha("rows" + bid + name), kind="frame", size=20_000,
                                             format="parquet"), occurred_at=at(t))
        if champion is None:
            yield from round_of(bid, "initial", (bid,))
            continue
        accuracy = round(min(1.0, rng.gauss(bar - 0.01, 0.02)), 4)
        yield PerformanceMeasured(block_id=bid, model_version=champion, metrics={"accuracy": accuracy},
                                  occurred_at=at(t))
        drifted = b % 10 == 0
        features = tuple(
            FeatureDrift(name=f, kind="numeric", test="ks", statistic=0.05, p_value=0.01, p_adjusted=0.02,
                         effect=round(rng.uniform(0.3, 1.0) if drifted and i == 0 else rng.uniform(0, 0.1), 4),
                         effect_name="wasserstein_sd", drifted=drifted and i == 0, change="mean moved")
            for i, f in enumerate(FEATURES))
        performance = PerformanceDrift(metric="accuracy", at_promotion=bar, observed=accuracy, tolerance=0.05,
                                       drifted=bar - accuracy > 0.05)
        reasons = ("f1: mean moved by 0.8 sd",) if drifted else ()
        yield DriftChecked(block_id=bid, drifted=drifted, reasons=reasons, features=features,
                           performance=performance, occurred_at=at(t))
        if drifted:
            yield DriftDetected(block_id=bid, reasons=reasons, occurred_at=at(t))
            yield from round_of(bid, "drift", tuple(f"block_{i:05d}" for i in range(max(1, b - 4), b + 1)))


def build_home(root: Path, pipelines: int, blocks: int) -> tuple[Path, int, float]:
    """Write the synthetic log; returns the home, its event count and the seconds it took."""
    home = Home(root).create()
    start = time.perf_counter()
    per = [blocks // pipelines + (1 if i < blocks % pipelines else 0) for i in range(pipelines)]
    streams = [(stream_id(f"p{i:02d}"), pipeline_events(f"p{i:02d}", n, seed=i)) for i, n in enumerate(per)]
    store = home.open_store()
    versions = {s: 0 for s, _ in streams}
    total = 0
    try:
        live = list(streams)
        while live:  # round-robin chunks so the pipelines' events interleave in the log
            for entry in list(live):
                stream, events = entry
                chunk = [e for _, e in zip(range(CHUNK), events, strict=False)]
                if not chunk:
                    live.remove(entry)
                    continue
                store.append(stream, chunk, expected_version=versions[stream])
                versions[stream] += len(chunk)
                total += len(chunk)
    finally:
        store.close()
    return home.root, total, time.perf_counter() - start


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def select_all(path: Path, table: str) -> Callable[[], Any]:
    import pandas as pd

    def run() -> Any:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            return pd.DataFrame.from_records(cursor.fetchall(), columns=[d[0] for d in cursor.description])

    return run


def bench_home(label: str, home: Path, events: int, repeats: int) -> dict[str, Any]:
    from ui.app import _overview_page, _pipeline_page
    from ui.queries import Queries

    result: dict[str, Any] = {"home": label, "events": events}
    store = Home(home).open_store()
    start = time.perf_counter()
    read = sum(1 for _ in store.iter_all())
    baseline = time.perf_counter() - start
    store.close()
    start = time.perf_counter()
    applied = update_projections(home)
    projecting = time.perf_counter() - start
    assert applied == read == events, (applied, read, events)
    start = time.perf_counter()
    update_projections(home)
    idle = time.perf_counter() - start
    result["projection"] = {"seconds": projecting, "events_per_s": events / projecting,
                            "baseline_read_s": baseline, "ratio": projecting / baseline, "idle_update_s": idle}

    q = Queries(home / "projections.sqlite")
    db = q.path
    name = max(q.pipeline_names(), key=lambda n: q.pipeline(n)["blocks"])
    row = q.pipeline(name)
    checks: list[tuple[str, Callable[[], Any], str]] = [
        ("overview", q.overview, "pipelines"),
        ("summary", q.summary, "pipelines"),
        ("alerts", q.alerts, "events"),
        ("blocks(limit=50)", lambda: q.blocks(name, 50), "blocks"),
        ("drift_matrix(50)", lambda: q.drift_matrix(name, 50), "drift_features"),
        ("performance(50)", lambda: q.performance(name, 50), "performance"),
        ("champion_changes", lambda: q.champion_changes(name), "champion_changes"),
        ("models(100)", lambda: q.models(name), "models"),
        ("rounds(20)", lambda: q.rounds(name), "rounds"),
        ("candidates(20)", lambda: q.candidates(name), "models"),
        ("health_history", lambda: q.health_history(name), "health_history"),
        ("rejected_files", lambda: q.rejected_files(name), "rejected_files"),
        ("events(page)", lambda: q.events(limit=100), "events"),
        ("events(type filter)", lambda: q.events(types=["ModelPromoted"], limit=100), "events"),
        ("event(position)", lambda: q.event(events // 2), "events"),
    ]
    result["largest_pipeline"] = {"name": name, "blocks": row["blocks"], "models": row["candidates"]}
    result["queries"] = []
    for label_, fn, table in checks:
        t = median_time(fn, repeats)
        base = median_time(select_all(db, table), repeats)
        result["queries"].append({"query": label_, "ms": 1000 * t, "table": table, "select_all_ms": 1000 * base,
                                  "ratio": t / base})

    def overview_page() -> Any:  # what the app's first paint runs for the Overview
        return _overview_page(q, q.head()), q.position(), q.pipeline_names(), q.event_types()

    result["pages"] = {
        "overview_s": median_time(overview_page, repeats),
        "pipeline_s": median_time(lambda: _pipeline_page(q, name, 50, False), repeats),
        "pipeline_500_blocks_s": median_time(lambda: _pipeline_page(q, name, 500, False), repeats),
        "events_s": median_time(lambda: q.events(limit=100), repeats),
        "target_s": PAGE_TARGET_S,
    }
    head = q.head()
    cold = Queries(db)
    start = time.perf_counter()
    cold.state_at(name, head)
    first = time.perf_counter() - start
    start = time.perf_counter()
    cold.state_at(name, head // 2)
    warm = time.perf_counter() - start
    stream = stream_id(name)

    def read_stream() -> int:
        with sqlite3.connect(f"file:{home / 'log.sqlite'}?mode=ro", uri=True) as conn:
            return sum(1 for r in conn.execute("SELECT payload FROM events WHERE stream_id = ?", (stream,))
                       if json.loads(r[0]) is not None)

    result["time_travel"] = {"cold_s": first, "warm_s": warm, "stream_events": row["events"],
                             "baseline_read_stream_s": median_time(read_stream, 1)}
    return result


def browser_pages(home: Path, repeats: int = 3) -> dict[str, float]:
    """Navigation to rendered pages in Debian's chromium, against a one-component Gradio app (same run).

    Each figure is the median of `repeats` warm loads (the first load, which fills the browser cache, is
    not counted). Pipeline: tab click -> card, both Plotly charts and the models table rendered.
    """
    import socket

    import gradio as gr
    from playwright.sync_api import sync_playwright

    from ui.server import launch

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    with gr.Blocks(analytics_enabled=False) as trivial:
        box = gr.HTML()
        trivial.load(lambda: "<table id='overview-table'><tr><td>ready</td></tr></table>", None, box)
    trivial.queue()
    _, trivial_url, _ = trivial.launch(server_name="127.0.0.1", server_port=port(), prevent_thread_lock=True,
                                       quiet=True, ssr_mode=False)
    handle = launch(home, port=port(), block=False)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    out: dict[str, list[float]] = {"baseline_s": [], "overview_s": [], "pipeline_s": [], "time_travel_s": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            for url in (trivial_url, handle):  # warm-up: fill the browser cache
                page.goto(url)
                page.locator("#overview-table").wait_for()
            for _ in range(repeats):
                start = time.perf_counter()
                page.goto(trivial_url)
                page.locator("#overview-table").wait_for()
                out["baseline_s"].append(time.perf_counter() - start)
                start = time.perf_counter()
                page.goto(handle)
                page.locator("#overview-table").wait_for()
                out["overview_s"].append(time.perf_counter() - start)
                start = time.perf_counter()
                page.get_by_role("tab", name="Pipeline").click()
                for selector in ("#pipeline-card [data-field=champion]", "#drift-heatmap .js-plotly-plot",
                                 "#performance-chart .js-plotly-plot", "#models-table td"):
                    page.locator(selector).first.wait_for()
                out["pipeline_s"].append(time.perf_counter() - start)
                start = time.perf_counter()
                page.get_by_role("tab", name="Time travel").click()
                page.locator("#tt-card").wait_for()
                out["time_travel_s"].append(time.perf_counter() - start)
            browser.close()
    finally:
        handle.close()
        trivial.close()
    return {key: statistics.median(values) for key, values in out.items()}


def status_times(home: Path, pipelines: int, repeats: int) -> dict[str, float]:
    """`calmops status` on `home` and on an empty home, as a user runs them (medians of `repeats`); checks that
    the JSON lists every pipeline."""
    import subprocess

    def status(where: Path, *extra: str) -> tuple[float, str]:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "calmops_actors", "status", "--home", str(where), *extra],
                             capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"calmops status --home {where} exited {out.returncode}: {out.stderr[-1000:]}")
        return seconds, out.stdout

    listed = json.loads(status(home, "--json")[1])
    if len(listed) != pipelines:
        raise RuntimeError(f"calmops status listed {len(listed)} pipelines, not {pipelines}")
    with tempfile.TemporaryDirectory(prefix="ui-bench-empty-") as empty:
        Home(Path(empty)).create().open_store().close()  # an empty log: `status` says "no pipelines yet"
        empty_s = statistics.median(status(Path(empty))[0] for _ in range(repeats))
    return {"status_s": statistics.median(status(home)[0] for _ in range(repeats)), "empty_home_s": empty_s,
            "listed": len(listed), "idle": sum(1 for r in listed if r.get("activity") == "idle")}


def rows(results: list[dict[str, Any]]) -> list:
    """The README rows of a `--json` report (see benchmarks/report.py), per synthetic home."""
    from benchmarks.report import Row, fmt_seconds

    out = []
    for r in results:
        what = f"{r['home']} ({r['pipelines']} pipelines, {r['blocks']:,} blocks, {r['events']:,} events)"
        pages, tt, proj = r["pages"], r["time_travel"], r["projection"]
        worst = max(r["queries"], key=lambda q: q["ms"])
        out += [
            Row(f"{what}: overview / pipeline page server side",
                f"{fmt_seconds(pages['overview_s'])} / {fmt_seconds(pages['pipeline_s'])}", "",
                f"< {pages['target_s']:.0f} s", max(pages["overview_s"], pages["pipeline_s"]) < pages["target_s"]),
            Row(f"{what}: slowest query, `{worst['query']}`", f"{worst['ms']:.1f} ms",
                f"`SELECT *` of `{worst['table']}` {worst['select_all_ms']:.1f} ms ({worst['ratio']:.2f}x)"),
            Row(f"{what}: time travel to the head ({tt['stream_events']:,} events), first / next",
                f"{fmt_seconds(tt['cold_s'])} / {fmt_seconds(tt['warm_s'])}",
                f"reading the stream alone {fmt_seconds(tt['baseline_read_stream_s'])}", "< 2 s (first visit)",
                tt["cold_s"] < 2),
            Row(f"{what}: projection from position 0", f"{fmt_seconds(proj['seconds'])}, "
                f"{proj['events_per_s']:,.0f} events/s", f"reading + decoding the log "
                f"{fmt_seconds(proj['baseline_read_s'])} ({proj['ratio']:.1f}x)"),
        ]
        if "browser" in r:
            b = r["browser"]
            out.append(Row(f"{what}: in chromium, overview after navigation / pipeline after the tab click",
                           f"{fmt_seconds(b['overview_s'])} / {fmt_seconds(b['pipeline_s'])}",
                           f"one-component Gradio app {fmt_seconds(b['baseline_s'])}", "< 2 s",
                           max(b["overview_s"], b["pipeline_s"]) < 2))
        if "status" in r:
            st = r["status"]
            out.append(Row(f"{what}: `calmops status` (subprocess, wall)", fmt_seconds(st["status_s"]),
                           f"`calmops status` on an empty home {fmt_seconds(st['empty_home_s'])}; "
                           f"{1000 * (st['status_s'] - st['empty_home_s']) / r['pipelines']:.1f} ms per pipeline"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=10_000, help="blocks over all pipelines of the fleet")
    parser.add_argument("--long-blocks", type=int, default=10_000, help="blocks of the single long pipeline")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--many-pipelines", type=int, default=1000,
                        help="pipelines of the 'many' home (a few events each; 0: leave it out)")
    parser.add_argument("--many-blocks", type=int, default=3, help="blocks per pipeline of the 'many' home")
    parser.add_argument("--browser", action="store_true", help="also time real page loads in chromium")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        homes = [("fleet", args.pipelines, args.blocks), ("long", 1, args.long_blocks)]
        if args.many_pipelines > 0:
            homes.append(("many", args.many_pipelines, args.many_pipelines * args.many_blocks))
        for label, pipelines, blocks in homes:
            home, events, seconds = build_home(Path(tmp) / label, pipelines, blocks)
            print(f"[{label}] {pipelines} pipelines, {blocks} blocks: {events} events written in {seconds:.1f} s",
                  file=sys.stderr, flush=True)
            result = bench_home(label, home, events, args.repeats)
            result.update(pipelines=pipelines, blocks=blocks)
            if args.browser:
                result["browser"] = browser_pages(home)
            if label == "many":
                result["status"] = status_times(home, pipelines, args.repeats)
            results.append(result)
            report(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    worst = max(max(r["pages"]["overview_s"], r["pages"]["pipeline_s"]) for r in results)
    return 0 if worst < PAGE_TARGET_S else 1


def report(r: dict[str, Any]) -> None:
    p = r["projection"]
    print(f"\n== {r['home']}: {r['pipelines']} pipelines, {r['blocks']} blocks, {r['events']} events "
          f"(largest pipeline {r['largest_pipeline']['name']}: {r['largest_pipeline']['blocks']} blocks)")
    print(f"projection from 0: {p['seconds']:.1f} s ({p['events_per_s']:.0f} events/s), "
          f"{p['ratio']:.1f}x reading+decoding the log ({p['baseline_read_s']:.2f} s); "
          f"an update with nothing new: {1000 * p['idle_update_s']:.1f} ms")
    print(f"{'query':<22}{'ms':>9}  {'SELECT * of':<18}{'ms':>9}{'ratio':>8}")
    for row in r["queries"]:
        print(f"{row['query']:<22}{row['ms']:>9.2f}  {row['table']:<18}{row['select_all_ms']:>9.2f}"
              f"{row['ratio']:>8.3f}")
    pages = r["pages"]
    print(f"page render (queries + figures + HTML): overview {pages['overview_s']:.3f} s, pipeline "
          f"{pages['pipeline_s']:.3f} s (500 blocks shown: {pages['pipeline_500_blocks_s']:.3f} s), events "
          f"{pages['events_s']:.3f} s; target < {pages['target_s']:.0f} s")
    tt = r["time_travel"]
    print(f"time travel to the head ({tt['stream_events']} events): cold {tt['cold_s']:.2f} s, warm "
          f"{tt['warm_s']:.3f} s (reading the stream's payloads alone: {tt['baseline_read_stream_s']:.2f} s)")
    if "browser" in r:
        b = r["browser"]
        print(f"browser (median of warm loads): overview {b['overview_s']:.2f} s after navigation (one-component "
              f"Gradio app: {b['baseline_s']:.2f} s), pipeline page {b['pipeline_s']:.2f} s after the tab click, "
              f"time travel {b['time_travel_s']:.2f} s after its tab click")
    if "status" in r:
        st = r["status"]
        print(f"calmops status: {st['status_s']:.2f} s for {st['listed']} pipelines ({st['idle']} idle); on an empty "
              f"home {st['empty_home_s']:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
