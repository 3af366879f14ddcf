"""`calmops run CONFIG.toml [FILES...]`: process files to completion, deterministically, and summarise.

Blocks go in name order and each retraining round is awaited before the next block, so the same files and
seed give the same decisions. It uses the same actor and records the same events as `serve`; run again on
the same home, it resumes (files already in the log are skipped as duplicates).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from calmops_actors.cli_common import add_home_option, print_table, resolve_home, terminal_text, writable_home
from calmops_actors.errors import UserError
from calmops_actors.sources import source_files


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="process files through one pipeline to completion and print a summary",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  calmops run pipelines/churn.toml\n  calmops run churn.toml incoming/2024-05.csv --json")
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


def run(args: argparse.Namespace) -> int:
    import ray

    from calmops_actors.runtime import spawn_actor, start_ray
    from pipelines.config.pipeline import resolve_source

    raw, config = load_raw_config(args.config)
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
        print(f"pipeline {config.name}: {len(files)} file(s), home {terminal_text(home.resolve())}", file=out)
    start_ray(args.ray_address)
    actor = spawn_actor(home.resolve(), config.name, config_dir=args.config.parent.resolve())
    try:
        ray.get(actor.configure.remote(raw, str(args.config.parent.resolve())))
    except ray.exceptions.RayTaskError as err:
        raise UserError(str(err.cause) if err.cause else str(err)) from None
    t0 = time.perf_counter()
    for i, file in enumerate(files, 1):
        result = ray.get(actor.ingest.remote(str(file), True))
        if args.json:
            print(json.dumps(result), file=out)
        else:
            print(f"[{i}/{len(files)}] {terminal_text(describe(result))}", file=out, flush=True)
    summary = ray.get(actor.summary.remote())
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    if args.json:
        print(json.dumps({"summary": summary}), file=out)
    else:
        print_table([summary], ["pipeline", "blocks", "rejected_files", "drifts", "rounds", "promotions",
                                "challenger_rejections", "champion", "champion_strategy", "health", "seconds"],
                    out)
    return 0


def describe(result: dict) -> str:
    outcome = result["outcome"]
    if outcome == "accepted":
        return f"{result['file']}: accepted block(s) {', '.join(result['blocks']) or '(already known)'}"
    if outcome == "rejected":
        return f"{result['file']}: REJECTED [{result['reason_code']}] {result['message']}"
    if outcome == "duplicate":
        return f"{result['file']}: already in the log, skipped"
    return f"{result['file']}: {outcome} {result.get('message', '')}"
