"""`calmops run CONFIG.toml [FILES...]`: process files to completion, deterministically, and summarise.

Blocks go in name order and each retraining round is awaited before the next block, so the same files and
seed give the same decisions. It drives the same actor class as `serve` (here, in this process) and records the
same events; run again on the same home, it resumes (files already in the log are skipped as duplicates).

Ray is needed only for a block's heavy tests and the retraining rounds, and is joined or started at the first
one: a `serve` of the same user and installation running on this machine lends its Ray; otherwise a small local
Ray starts (no dashboard), and a run that meets only files already in the log, or rejected ones, starts none.
On a terminal a progress line on stderr shows the files done, the rate and the time left.

The config, its model class and its preprocess hook are checked before anything starts (no Ray, no home
folder). Each file's line says what the log recorded for it: accepted or rejected, each block's drift check,
the round it started and the version that round promoted. Ctrl-C stops at once: what was recorded stays, and
a round left in flight is re-issued (same seed) by the next `run` or `serve` of the pipeline.

exit codes: 0 done (at least one file accepted, or already in the log), 2 a bad config, model class or missing
file, 3 no file was accepted (every one rejected or unreadable), 130 interrupted
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from calmops_actors.cli_common import add_home_option, print_table, resolve_home, terminal_text, writable_home
from calmops_actors.errors import UserError
from calmops_actors.run_report import describe
from calmops_actors.sources import source_files


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="process files through one pipeline to completion and print a summary",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  calmops run pipelines/churn.toml\n  calmops run churn.toml incoming/2024-05.csv --json\n\n"
               "exit codes: 0 done, 2 bad config / model class / missing file, 3 no file accepted, 130 interrupted")
    p.add_argument("config", type=Path, help="the pipeline's TOML config")
    p.add_argument("files", nargs="*", type=Path, help="files to process (default: every file in `source`)")
    add_home_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per file, then the summary")
    p.add_argument("--ray-address", default=None,
                   help="join this Ray cluster; `local` always starts a Ray of its own (default: serve's Ray when "
                        "one runs on this machine, else a local one)")
    p.set_defaults(func=run)


def load_raw_config(path: Path) -> tuple[dict, object]:
    from pipelines.config.pipeline import ConfigError, config_from_dict, parse_toml

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except OSError as err:
        raise UserError(f"{path}: cannot be read: {err}") from None
    try:
        raw = parse_toml(data, str(path))
        return raw, config_from_dict(raw, str(path))
    except ConfigError as err:
        raise UserError(str(err)) from None


NOTHING_ACCEPTED = 3  # every file rejected or unreadable: a script must not take the run for a success


def check_before_start(config: Any, config_path: Path) -> None:
    """The model class (imported and constructed with its params) and the preprocess hook, as the actor's
    `configure` will check them, but here: a typo costs a second, not a Ray start and a new home folder."""
    from calmops_actors.hooks import load_preprocess
    from pipelines.config.pipeline import ConfigError
    from pipelines.retraining.models import ModelSpec, ModelSpecError, build_estimator

    try:
        build_estimator(ModelSpec(config.model.class_path, config.model.params))
    except ModelSpecError as err:
        raise UserError(f"{config_path}: {err}") from None
    if config.preprocess:
        try:
            load_preprocess(config.preprocess, config_path.parent, str(config_path))
        except ConfigError as err:
            raise UserError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    from pipelines.config.pipeline import resolve_source

    raw, config = load_raw_config(args.config)
    check_before_start(config, args.config)
    home = resolve_home(args)
    source = resolve_source(config, args.config.parent)
    # blocks, then the labels that came later for some of them (`<source>/<[labels] folder>/`, docs/estimation.md)
    files = ([f.resolve() for f in args.files] if args.files
             else source_files(source) + source_files(source / config.labels.folder))
    missing = [terminal_text(f) for f in files if not f.is_file()]
    if missing:
        raise UserError(f"file(s) not found: {', '.join(missing)}")
    if not files:
        raise UserError(f"no files to process in {terminal_text(source)} (source = {config.source!r}); add files "
                        "or name them")
    writable_home(home)
    from calmops_actors.home_lock import hold_for_run

    hold_for_run(home, config.name)  # not beside a `serve` of this home, nor another `run` of this pipeline
    from calmops_actors.run_report import Progress
    from calmops_actors.runtime import RunRay

    progress = Progress(len(files))
    ray_use = RunRay(args.ray_address, announce=lambda text: announce(progress, text))
    if not args.json:
        print(f"pipeline {config.name}: {len(files)} file(s), home {terminal_text(home.resolve())}; Ray: "
              f"{ray_use.describe()}", file=sys.stdout, flush=True)
    run_state: dict[str, Any] = {"file": None, "done": 0, "sigint": False, "actor": None}

    def on_sigint(signum: int, frame: Any) -> None:
        run_state["sigint"] = True  # a terminal's Ctrl-C reaches Ray's own processes too: their errors follow
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    log_handler = log_to_home(home.resolve())
    try:
        counts = process(args, raw, config, home.resolve(), files, run_state, started, ray_use, progress)
    except KeyboardInterrupt:
        progress.close()
        interrupted(args, config.name, home.resolve(), files, run_state, ray_use)
        return 130
    except Exception:
        progress.close()
        if not run_state["sigint"]:
            raise
        interrupted(args, config.name, home.resolve(), files, run_state, ray_use)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        logging.getLogger("calmops").removeHandler(log_handler)
        log_handler.close()
        if run_state["actor"] is not None:
            run_state["actor"].store.close()
    if counts["accepted"] == 0 and counts["duplicate"] == 0:
        print(f"error: no file was accepted ({counts['rejected']} rejected, {counts['other']} unreadable): nothing "
              "was added to the pipeline; see the lines above for each file's reason", file=sys.stderr)
        return NOTHING_ACCEPTED
    if counts["rejected"] or counts["other"]:
        print(f"warning: {counts['rejected'] + counts['other']} of {len(files)} file(s) not accepted; see the "
              "lines above", file=sys.stderr)
    return 0


def announce(progress: Any, text: str) -> None:
    """A word from Ray's start: a warning goes to stderr; `starting Ray ...` shows in the progress line (and ""
    clears it)."""
    if text.startswith("warning:"):
        progress.message(text, sys.stderr)
    else:
        progress.status(text)


def log_to_home(home: Path) -> logging.Handler:
    """The actor's log lines (`calmops.*`) go to <home>/logs/run.log, as they went to its Ray worker's log before
    it ran in this process: never onto the terminal between the file lines."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(home / "logs" / "run.log", encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("calmops")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def process(args: argparse.Namespace, raw: dict, config: Any, home: Path, files: list[Path],
            run_state: dict[str, Any], started: float, ray_use: Any, progress: Any) -> dict[str, int]:
    """Drive the pipeline's actor in this process: configure, ingest each file (awaiting its rounds), print its
    line and the summary. Ray is joined or started by the first call that needs it (`RunRay.on_first_use`)."""
    from calmops_actors.home import stream_id
    from calmops_actors.pipeline_actor import PipelineActor
    from calmops_actors.run_report import file_report
    from eventstore import CorruptLogError
    from pipelines.config.pipeline import ConfigError

    out = sys.stdout
    config_dir = args.config.parent.resolve()
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "other": 0}
    stream = stream_id(config.name)
    progress.start()
    with ray_use.on_first_use():
        try:
            actor = run_state["actor"] = PipelineActor(str(home), config.name, str(config_dir))
            actor.configure(raw, str(config_dir))
        except ConfigError as err:
            raise UserError(str(err)) from None
        except CorruptLogError as err:
            raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
        store = actor.store
        seen = store.stream_version(stream)
        for i, file in enumerate(files, 1):
            run_state["file"] = file.name
            progress.begin(terminal_text(file.name))
            labels = file.parent.name == config.labels.folder  # a labels file: labels for blocks already in
            result = actor.ingest_labels(str(file), True) if labels else actor.ingest(str(file), True)
            new = store.read(stream, after_version=seen)
            seen = new[-1].version if new else seen
            report = file_report(new)
            outcome = result["outcome"]
            counts[outcome if outcome in counts else "other"] += 1
            run_state["done"], run_state["file"] = i, None
            if args.json:
                progress.finished(json.dumps({**result, **report.as_json()}), out)
            else:
                progress.finished(f"[{i}/{len(files)}] {terminal_text(describe(result, report))}", out)
        summary = actor.summary()
    progress.close()
    ray_use.stop()  # before the clock stops: its shutdown is part of the wall time the user waits
    summary["accepted_files"] = counts["accepted"]
    summary["ray"] = ray_use.mode  # "started", "joined" (serve's or --ray-address), "not started", "existing"
    summary["seconds"] = round(time.monotonic() - started, 2)  # the command's wall time, Ray's start included
    if args.json:
        print(json.dumps({"summary": summary}), file=out)
    else:
        print_table([summary], ["pipeline", "blocks", "rejected_files", "drifts", "rounds", "promotions",
                                "challenger_rejections", "champion", "champion_strategy", "health", "seconds"],
                    out)
    return counts


def interrupted(args: argparse.Namespace, name: str, home: Path, files: list[Path],
                run_state: dict[str, Any], ray_use: Any) -> None:
    """Ctrl-C: say what the log holds and what the next run does, then stop Ray without its shutdown noise.

    Nothing is written here: a round whose tasks died with Ray stays requested in the log without an outcome
    (recording a fake end would be a lie the audit trail keeps), and the actor of the next `run` or `serve`
    re-issues it with the same seed before it takes a new file (`PipelineActor.recover`). On a Ray this run
    joined (serve's), the round's tasks are cancelled: that Ray keeps running."""
    err = sys.stderr
    where = f" during {terminal_text(run_state['file'])}" if run_state["file"] else ""
    print(f"interrupted{where}: everything recorded up to now stays in the log; {run_state['done']} of "
          f"{len(files)} file(s) finished (run the same command again to go on: files already in the log are "
          "skipped)", file=err)
    try:
        from calmops_actors.readlog import load_state, open_log

        with open_log(home) as store:
            state = load_state(store, name).state
    except Exception:  # noqa: BLE001 - a log not created yet, or busy: the message above is still true
        state = None
    if state is not None and state.round is not None:
        print(f"round {state.round.round_id} ({state.round.trigger}) was in flight: the log keeps it as requested, "
              f"without an outcome, and the next `calmops run {terminal_text(args.config)}` (or `serve`) of "
              f"{name} re-issues it with the same seed before any new file", file=err)
    err.flush()
    if ray_use.mode == "joined":
        cancel_round(run_state["actor"])
    ray_use.stop(quiet=True)


def cancel_round(actor: Any) -> None:
    """Cancel the tasks of the actor's round in flight (on a Ray that outlives this run)."""
    import ray

    flight = getattr(actor, "inflight", None)
    refs = [*flight.refs, flight.champion_ref, *(flight.reuse_refs or {}).values()] if flight is not None else []
    for ref in refs:
        if isinstance(ref, ray.ObjectRef):
            with contextlib.suppress(Exception):  # finished meanwhile, or Ray is going away
                ray.cancel(ref, force=True)
