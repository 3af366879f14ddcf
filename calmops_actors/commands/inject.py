"""`calmops inject INPUT --out DIR`: known covariate and label shifts applied to your own table, as block files."""

from __future__ import annotations

import argparse
from pathlib import Path

from calmops_actors.commands.generate import add_shared_options, describe, finish
from calmops_actors.errors import UserError

EPILOG = """\
shift specs (repeat --shift; amounts are measured on the blocks before --drift-at):
  mean:FEATURES:SD                  add SD reference standard deviations, e.g. mean:income:0.5
  scale:FEATURES:FACTOR             widen or narrow the spread, e.g. scale:age:2
  category:FEATURES:VALUE[:FRAC]    a new category in a share of rows (default 0.2), e.g. category:city:Atlantis
  missing:FEATURES:FRACTION         a surge of missing values, e.g. missing:income:0.3
  label_noise:FRACTION              flip a share of the labels in --target (regression: shuffle them)

examples:
  calmops inject sales.csv --out data/sales --rows 500 --shift mean:price:0.5
  calmops inject sales.parquet --out data/sales --block-col week --drift-at 6 --shift missing:price:0.4
  calmops inject sales.csv --out data/sales --rows 500 --target churned --shift label_noise:0.2 \\
      --switch recurring --recur-after 2 --format parquet --single-file

Blocks come from consecutive runs of --rows rows, or from the values of --block-col in order of first
appearance. manifest.json records, per block, what was changed; see docs/generator.md.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inject",
        help="apply known shifts to your own CSV/Parquet and write it as block files",
        description="Split a CSV or Parquet file into blocks and apply covariate and label shifts from a "
        "chosen block on, writing the blocks with a ground-truth manifest.json.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="a .csv or .parquet file")
    split = parser.add_mutually_exclusive_group(required=True)
    split.add_argument(
        "--rows", type=int, default=None, metavar="R", help="rows per block (the last block may be shorter)"
    )
    split.add_argument(
        "--block-col",
        default=None,
        metavar="NAME",
        help="split by this existing column, in order of first appearance",
    )
    parser.add_argument(
        "--target", default="target", help="the label column (default: target; a table without it is fine)"
    )
    parser.add_argument(
        "--switch",
        choices=("abrupt", "gradual", "recurring"),
        default="abrupt",
        help="how the shifts start at --drift-at (default abrupt)",
    )
    add_shared_options(parser)
    parser.add_argument(
        "--single-file",
        action="store_true",
        help="write one file with a block column (the --block-col name, else `block`)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from calmops_actors import blockfiles
    from pipelines.synthetic.scenarios import inject_scenario
    from pipelines.synthetic.shifts import ShiftError

    frame = blockfiles.read_table(args.input)
    try:
        scenario = inject_scenario(
            frame,
            args.shift,
            seed=args.seed,
            rows=args.rows,
            block_col=args.block_col,
            drift_at=args.drift_at,
            switch=args.switch,
            drift_width=args.drift_width,
            recur_after=args.recur_after,
            labels_until=args.labels_until,
            target=args.target,
        )
    except ShiftError as err:  # ScenarioError is a ShiftError too
        raise UserError(str(err)) from None
    scenario.manifest["source"] = {
        "path": str(args.input),
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
    }
    fmt = args.format or ("parquet" if args.input.suffix.lower() in (".parquet", ".pq") else "csv")
    block_col = (args.block_col or "block") if args.single_file else None
    blockfiles.check_block_col(scenario, block_col)
    blockfiles.prepare_out_dir(args.out, args.overwrite)
    on_block = None if args.json else (lambda entry: print(describe(entry), flush=True))
    manifest = blockfiles.write_scenario(scenario, args.out, fmt, block_col, on_block=on_block)
    finish(manifest, args.out, args.json)
    return 0
