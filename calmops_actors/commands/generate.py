"""`calmops generate SCENARIO --out DIR`: a synthetic stream with known drift, cut into block files + manifest."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from calmops_actors.errors import UserError

# Kept here so that building the parser (every `calmops` call) does not import pandas and River;
# tests/unit/test_scenarios.py checks them against pipelines.synthetic.scenarios.
SCENARIO_NAMES: tuple[str, ...] = ("sea", "agrawal", "hyperplane", "sine", "stagger", "friedman")
SWITCH_NAMES: tuple[str, ...] = ("abrupt", "gradual", "recurring", "none")
FORMATS: tuple[str, ...] = ("csv", "parquet")
MANIFEST = "manifest.json"

EPILOG = """\
shift specs (repeat --shift; amounts are measured on the blocks before the drift):
  mean:FEATURES:SD                  add SD reference standard deviations, e.g. mean:feat_1:0.5
  scale:FEATURES:FACTOR             widen or narrow the spread, e.g. scale:feat_2:2
  category:FEATURES:VALUE[:FRAC]    a new category in a share of rows (default 0.2), e.g. category:color:purple
  missing:FEATURES:FRACTION         a surge of missing values, e.g. missing:feat_3:0.3
  label_noise:FRACTION              flip a share of the labels (regression: shuffle them)
  FEATURES is one column or several separated by commas.

examples:
  calmops generate sea --out data/sea --blocks 10 --rows 1000 --seed 7
  calmops generate sea --out data/sea-cov --switch none --shift mean:feat_1:0.5 --shift missing:feat_2:0.3
  calmops generate agrawal --out data/agr --switch gradual --drift-at 4 --drift-width 1500 --format parquet
  calmops generate stagger --out data/stg --shift category:color:purple:0.3 --no-labels-after 5
  calmops generate friedman --out data/fr --switch recurring --recur-after 2 --block-col block
  calmops generate hyperplane --out inbox --live --interval 2     # one block every 2 s; Ctrl-C stops

Columns are strings (feat_1 ... or the generator's own names); the label is `target`.
See docs/generator.md for every scenario and the manifest.json schema.
"""


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected zero or more seconds, got {text!r}")
    return value


def add_shared_options(parser: argparse.ArgumentParser) -> None:
    """Options `generate` and `inject` share: schedule, shifts, labels, output."""
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for the block files and manifest.json"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="random seed; same seed, same bytes (default 0)"
    )
    parser.add_argument(
        "--drift-at",
        type=int,
        default=None,
        metavar="K",
        help="first drifting block, 1-based (default: the middle block, blocks // 2 + 1)",
    )
    parser.add_argument(
        "--drift-width",
        type=int,
        default=None,
        metavar="W",
        help="gradual switch: rows over which the change ramps in (default: 2 blocks)",
    )
    parser.add_argument(
        "--recur-after",
        type=int,
        default=None,
        metavar="B",
        help="recurring switch: blocks the drift lasts before the old state returns "
        "(default: half of the remaining blocks)",
    )
    parser.add_argument(
        "--shift",
        action="append",
        default=[],
        metavar="SPEC",
        help="a covariate or label shift from --drift-at on (repeatable; see below)",
    )
    parser.add_argument(
        "--no-labels-after",
        type=int,
        default=None,
        metavar="K",
        dest="labels_until",
        help="blocks after block K have no target column (0: no block is labelled)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="file format (generate default: csv; inject default: the input's)",
    )
    parser.add_argument(
        "--overwrite",
        "--force",
        dest="overwrite",
        action="store_true",
        help="replace block files and manifest.json already in --out (--force: the same, as in init and export)",
    )
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON instead of a table")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a synthetic stream with known drift as block files",
        description="Generate blocks from a River stream whose labelling function switches at a known block, "
        "optionally with covariate and label shifts, and write them with a ground-truth "
        "manifest.json.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "scenario", choices=SCENARIO_NAMES, metavar="SCENARIO", help=f"one of: {', '.join(SCENARIO_NAMES)}"
    )
    parser.add_argument("--blocks", type=int, default=10, metavar="N", help="number of blocks (default 10)")
    parser.add_argument("--rows", type=int, default=1000, metavar="R", help="rows per block (default 1000)")
    parser.add_argument(
        "--switch",
        choices=SWITCH_NAMES,
        default=None,
        help="how the concept changes at --drift-at: abrupt, gradual, recurring, or none "
        "(shifts only). Default: gradual for hyperplane, abrupt otherwise",
    )
    add_shared_options(parser)
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        "--block-col",
        default=None,
        metavar="NAME",
        help="write one file with the block id in column NAME instead of one file per block",
    )
    layout.add_argument("--single-file", action="store_true", help="same as --block-col block")
    parser.add_argument(
        "--live",
        action="store_true",
        help="write the blocks one at a time, --interval seconds apart (Ctrl-C stops)",
    )
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=1.0,
        metavar="SECONDS",
        help="--live: seconds between blocks (default 1)",
    )
    parser.set_defaults(func=run)


def describe(entry: dict) -> str:
    """One human line for a written block."""
    what = "+".join(entry["kinds"]) + " on " + ", ".join(entry["features"]) if entry["drift"] else "no drift"
    labels = "" if entry["labelled"] else ", unlabelled"
    return f"{entry['block_id']}  {entry['rows']:>7} rows  {entry['file']}  {what}{labels}"


def block_col_of(args: argparse.Namespace) -> str | None:
    return args.block_col or ("block" if args.single_file else None)


def finish(manifest: dict, out: Path, as_json: bool) -> None:
    if as_json:
        print(json.dumps(manifest, indent=2))
    else:
        drifting = sum(1 for b in manifest["blocks"] if b["drift"])
        print(f"wrote {len(manifest['blocks'])} blocks ({drifting} drifting) and {MANIFEST} to {out}")


def write_live(scenario, out: Path, fmt: str, interval: float) -> int:
    """Write one block every `interval` seconds, refreshing the manifest after each; Ctrl-C stops cleanly."""
    from calmops_actors import blockfiles

    manifest = blockfiles.with_output(scenario.manifest, fmt, None, complete=False)
    written = 0
    try:
        for index, (_, frame) in enumerate(scenario.frames, start=1):
            if index > 1:
                time.sleep(interval)
            entry = blockfiles.write_block(out, manifest, index, frame)
            blockfiles.write_manifest(out, manifest)
            written = index
            print(describe(entry), flush=True)
    except KeyboardInterrupt:
        blockfiles.write_manifest(out, manifest)
        print(f"stopped: {written} of {len(scenario.frames)} blocks written to {out}", file=sys.stderr)
        return 130
    manifest["output"]["complete"] = True
    blockfiles.write_manifest(out, manifest)
    print(f"done: {written} blocks and {MANIFEST} in {out}", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    from calmops_actors import blockfiles
    from pipelines.synthetic.scenarios import generate_scenario
    from pipelines.synthetic.shifts import ShiftError

    block_col = block_col_of(args)
    if args.live and block_col:
        raise UserError("--live writes one file per block; drop --block-col/--single-file")
    try:
        scenario = generate_scenario(
            args.scenario,
            blocks=args.blocks,
            rows=args.rows,
            seed=args.seed,
            drift_at=args.drift_at,
            drift_width=args.drift_width,
            switch=args.switch,
            shifts=args.shift,
            labels_until=args.labels_until,
            recur_after=args.recur_after,
        )
    except ShiftError as err:  # ScenarioError is a ShiftError too
        raise UserError(str(err)) from None
    fmt = args.format or "csv"
    blockfiles.check_block_col(scenario, block_col)
    blockfiles.prepare_out_dir(args.out, args.overwrite)
    if args.live:
        return write_live(scenario, args.out, fmt, args.interval)
    on_block = None if args.json else (lambda entry: print(describe(entry), flush=True))
    manifest = blockfiles.write_scenario(scenario, args.out, fmt, block_col, on_block=on_block)
    finish(manifest, args.out, args.json)
    return 0
