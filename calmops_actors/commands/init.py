"""`calmops init NAME`: write a commented pipeline config template (every section, every default shown)."""

from __future__ import annotations

import argparse
from pathlib import Path

from calmops_actors.errors import UserError

TEMPLATE = """\
# Pipeline "{name}": edit, then `calmops run {name}.toml` or put it in the folder `calmops serve` watches.
# Every key is documented in docs/config.md; the commented values are the defaults (a key that is unset by
# default shows an example).

name = "{name}"
target = "target"                 # the label column; blocks without it are monitored but not trained on
source = "{source}"{pad} # folder of arriving files, relative to this file
# formats = ["csv", "parquet"]
# task = "classification"         # or "regression"
# block_col = "week"              # one file may hold several blocks, named by this column
# features = ["a", "b", "c"]      # pin the schema; default: every column of the first block but the target
# categorical = ["c"]
# preprocess = "hooks:clean"      # hooks.py next to this file, clean(DataFrame) -> DataFrame (your own code)

[model]
class = "sklearn.linear_model.LogisticRegression"   # any scikit-learn compatible estimator
params = {{ max_iter = 1000 }}

[training]
# initial_blocks = 1              # labelled blocks to wait for before the first model
# holdout_fraction = 0.2
# seed = 0

[drift]
# alpha = 0.05                    # per-feature tests, after Benjamini-Hochberg correction
# correction = "bh"               # or "bonferroni", "none"
# min_effect = 0.1                # numeric features: Wasserstein distance in reference sd
# min_effect_categorical = 0.04   # categorical features: Jensen-Shannon distance
# concept_detector = "adwin"      # "ddm", "eddm", "page_hinkley", "none"
# performance_tolerance = 0.05    # a drop of the primary metric beyond this is drift
# [drift.multivariate]
# enabled = true

[retrain]
# strategies = ["full", "windowed", "since_change", "replay_mix", "recalibration"]
# trigger = ["performance", "concept"]  # drift signals that start a round; "data" drift only warns
# min_improvement = 0.01          # a challenger must beat the champion by this on the shared holdout
# window_blocks = 3
# task_timeout_seconds = 600

[circuit_breaker]
# max_consecutive_failures = 3
# backoff_seconds = 60
# max_backoff_seconds = 3600

# [intake]
# max_file_mb = 512
# max_rows = 2000000              # rows of one file; memory: see docs/config.md, [intake]

# [trigger]
# mode = "events"                 # or "polling" for network mounts
# settle_seconds = 1
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write a commented config template for a new pipeline",
                       description=__doc__,
                       epilog="example:\n  calmops init churn --dir pipelines/",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="pipeline name: 1-64 characters a-z, 0-9, '_' and '-'")
    p.add_argument("--dir", type=Path, default=Path("."), help="where to write NAME.toml (default: here)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.config.pipeline import (  # the config code imports the drift tests
        NAME_PATTERN,
        config_from_text,
    )

    if not NAME_PATTERN.fullmatch(args.name):
        raise UserError(f"{args.name!r} is not a valid pipeline name; use 1-64 characters a-z, 0-9, '_' and '-', "
                        "starting with a letter or digit")
    path = args.dir / f"{args.name}.toml"
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; pass --force to overwrite it")
    source = free_source(args.dir, args.name, path)
    text = template(args.name, source)
    config_from_text(text, str(path))  # the template must always be valid
    args.dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (args.dir / source).mkdir(exist_ok=True)
    print(f"wrote {path}; drop files into {args.dir / source} and run `calmops run {path}`")
    return 0


def template(name: str, source: str = "incoming") -> str:
    """The commented config of pipeline `name` reading files from `source` (a folder relative to the file)."""
    return TEMPLATE.format(name=name, source=source, pad=" " * max(0, 14 - len(source)))


def free_source(folder: Path, name: str, path: Path) -> str:
    """`incoming`, unless another config in `folder` already reads it: then `incoming-NAME`, so two pipelines
    set up side by side do not ingest each other's files (a pipeline reads every file in its source)."""
    import tomllib

    taken = set()
    for other in folder.glob("*.toml") if folder.is_dir() else ():
        if other.resolve() == path.resolve():
            continue
        try:
            source = tomllib.loads(other.read_text(encoding="utf-8")).get("source")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if isinstance(source, str):
            taken.add((folder / source).resolve())
    return "incoming" if (folder / "incoming").resolve() not in taken else f"incoming-{name}"
