"""`calmops run CONFIG.toml [FILES...]`: process files to completion, deterministically, and summarise.

Blocks go in name order and each retraining round is awaited before the next block, so the same files and
seed give the same decisions. It uses the same actor and records the same events as `serve`; run again on
the same home, it resumes (files already in the log are skipped as duplicates).

The config, its model class and its preprocess hook are checked before anything starts (no Ray, no home
folder). Each file's line says what the log recorded for it: accepted or rejected, each block's drift check,
the round it started and the version that round promoted. Ctrl-C stops at once: what was recorded stays, and
a round left in flight is re-issued (same seed) by the next `run` or `serve` of the pipeline.

exit codes: 0 done (at least one file accepted, or already in the log), 2 a bad config, model class or missing
file, 3 no file was accepted (every one rejected or unreadable), 130 interrupted
"""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local one")
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
    files = [f.resolve() for f in args.files] if args.files else source_files(source)
    missing = [terminal_text(f) for f in files if not f.is_file()]
    if missing:
        raise UserError(f"file(s) not found: {', '.join(missing)}")
    if not files:
        raise UserError(f"no files to process in {terminal_text(source)} (source = {config.source!r}); add files "
                        "or name them")
    out = sys.stdout
    writable_home(home)
    from calmops_actors.home_lock import hold_for_run

    hold_for_run(home, config.name)  # not beside a `serve` of this home, nor another `run` of this pipeline
    if not args.json:
        print(f"pipeline {config.name}: {len(files)} file(s), home {terminal_text(home.resolve())}; starting Ray "
              "...", file=out, flush=True)
    run_state: dict[str, Any] = {"file": None, "done": 0, "sigint": False, "owns_ray": False}

    def on_sigint(signum: int, frame: Any) -> None:
        run_state["sigint"] = True  # a terminal's Ctrl-C reaches Ray's own processes too: their errors follow
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        counts = process(args, raw, config, home.resolve(), files, run_state, started)
    except KeyboardInterrupt:
        interrupted(args, config.name, home.resolve(), files, run_state)
        return 130
    except Exception:
        if not run_state["sigint"]:
            raise
        interrupted(args, config.name, home.resolve(), files, run_state)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    if counts["accepted"] == 0 and counts["duplicate"] == 0:
        print(f"error: no file was accepted ({counts['rejected']} rejected, {counts['other']} unreadable): nothing "
              "was added to the pipeline; see the lines above for each file's reason", file=sys.stderr)
        return NOTHING_ACCEPTED
    if counts["rejected"] or counts["other"]:
        print(f"warning: {counts['rejected'] + counts['other']} of {len(files)} file(s) not accepted; see the "
              "lines above", file=sys.stderr)
    return 0


def process(args: argparse.Namespace, raw: dict, config: Any, home: Path, files: list[Path],
            run_state: dict[str, Any], started: float) -> dict[str, int]:
    """Start Ray and the actor, ingest each file (awaiting its rounds), print its line and the summary."""
    import ray

    from calmops_actors.home import stream_id
    from calmops_actors.readlog import open_log
    from calmops_actors.run_report import Ticker, file_report
    from calmops_actors.runtime import spawn_actor, start_ray

    out = sys.stdout
    run_state["owns_ray"] = not ray.is_initialized()  # in-process callers (tests) may share theirs
    start_ray(args.ray_address)
    actor = spawn_actor(home, config.name, config_dir=args.config.parent.resolve())
    try:
        ray.get(actor.configure.remote(raw, str(args.config.parent.resolve())))
    except ray.exceptions.RayTaskError as err:
        raise UserError(str(err.cause) if err.cause else str(err)) from None
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "other": 0}
    stream = stream_id(config.name)
    with open_log(home) as store:
        seen = store.stream_version(stream)
        for i, file in enumerate(files, 1):
            run_state["file"] = file.name
            ticker = Ticker(f"[{i}/{len(files)}] {terminal_text(file.name)}")
            ref = actor.ingest.remote(str(file), True)
            try:
                while not ray.wait([ref], timeout=1.0)[0]:
                    ticker.tick()
            finally:
                ticker.close()
            result = ray.get(ref)
            new = store.read(stream, after_version=seen)
            seen = new[-1].version if new else seen
            report = file_report(new)
            outcome = result["outcome"]
            counts[outcome if outcome in counts else "other"] += 1
            run_state["done"] = i
            if args.json:
                print(json.dumps({**result, **report.as_json()}), file=out, flush=True)
            else:
                print(f"[{i}/{len(files)}] {terminal_text(describe(result, report))}", file=out, flush=True)
        run_state["file"] = None
    summary = ray.get(actor.summary.remote())
    if run_state["owns_ray"]:
        ray.shutdown()  # before the clock stops: its shutdown is part of the wall time the user waits
    summary["accepted_files"] = counts["accepted"]
    summary["seconds"] = round(time.monotonic() - started, 2)  # the command's wall time, Ray's start included
    if args.json:
        print(json.dumps({"summary": summary}), file=out)
    else:
        print_table([summary], ["pipeline", "blocks", "rejected_files", "drifts", "rounds", "promotions",
                                "challenger_rejections", "champion", "champion_strategy", "health", "seconds"],
                    out)
    return counts


def interrupted(args: argparse.Namespace, name: str, home: Path, files: list[Path],
                run_state: dict[str, Any]) -> None:
    """Ctrl-C: say what the log holds and what the next run does, then stop Ray without its shutdown noise.

    Nothing is written here: a round whose tasks died with Ray stays requested in the log without an outcome
    (recording a fake end would be a lie the audit trail keeps), and the actor of the next `run` or `serve`
    re-issues it with the same seed before it takes a new file (`PipelineActor.recover`)."""
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
    if run_state.get("owns_ray"):
        quiet_shutdown()


def quiet_shutdown() -> None:
    """Stop Ray with file descriptor 2 sent to /dev/null: its workers die mid-task on Ctrl-C, and its C++ core
    prints their failures (`task_manager.cc ...`) straight to the process's stderr, past Python."""
    import ray

    if not ray.is_initialized():
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        ray.shutdown()
    except KeyboardInterrupt:
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
