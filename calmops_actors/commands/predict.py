"""`calmops predict NAME FILE`: score a file with the champion (or `--version V`), hash-checked before loading.

The file is read and validated like an arriving block (same schema, same rejections); the output has the
input's rows in order with a `prediction` column and, for classifiers, one `proba_<class>` column per class.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from calmops_actors.cli_common import add_home_option, resolve_home
from calmops_actors.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score a file with the champion or a given model version",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  calmops predict churn new.csv --out scored.csv\n"
                              "  calmops predict churn new.parquet --version v3")
    p.add_argument("name", help="pipeline name")
    p.add_argument("file", type=Path, help="CSV or Parquet file with the pipeline's feature columns")
    p.add_argument("--version", default=None, help="model version (default: the current champion)")
    p.add_argument("--out", type=Path, default=None, help="output CSV (default: standard output)")
    add_home_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from calmops_actors.artifact_refs import ref_for
    from calmops_actors.artifacts import ArtifactStore
    from calmops_actors.home import Home
    from calmops_actors.readlog import load_state, open_log
    from pipelines.config.pipeline import config_from_dict
    from pipelines.core.intake import IntakeRules, parse_file

    home = Home(resolve_home(args))
    store = open_log(home.root)
    try:
        state = load_state(store, args.name).state if args.name in _names(store) else None
    finally:
        store.close()
    if state is None or state.config is None:
        raise UserError(f"no pipeline named {args.name!r} in {home.root}")
    version = args.version or state.champion
    if version is None:
        raise UserError(f"pipeline {args.name!r} has no model yet (it needs labelled blocks first)")
    if version not in state.models:
        known = ", ".join(sorted(state.models, key=lambda v: int(v[1:]))) or "none"
        raise UserError(f"pipeline {args.name!r} has no model version {version!r}; known versions: {known}")
    if not args.file.is_file():
        raise UserError(f"file {args.file} not found")
    config = config_from_dict(state.config, "<log>")
    rules = IntakeRules(target=config.target, formats=tuple(config.formats), block_col=config.block_col,
                        schema=state.schema, max_file_mb=config.intake.max_file_mb,
                        max_invalid_share=config.intake.max_invalid_share, max_columns=config.intake.max_columns,
                        max_rows=config.intake.max_rows)
    intake = parse_file(args.file.name, args.file.read_bytes(), rules)
    if not intake.accepted:
        raise UserError(f"cannot score it: {intake.message} [{intake.reason_code}]")
    frame = pd.concat([b.frame for b in intake.blocks], ignore_index=True)
    model = ArtifactStore(home.artifacts).get_model(ref_for(state.models[version].artifact))
    X = frame[list(state.schema.features)]
    out = pd.DataFrame({"prediction": model.predict(X)})
    if config.task == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        for i, cls in enumerate(model.classes_):
            out[f"proba_{cls}"] = proba[:, i]
    out.insert(0, "model_version", version)
    out = spreadsheet_safe(out)
    if args.out:
        out.to_csv(args.out, index=False)
        print(f"wrote {len(out)} predictions of {args.name} {version} to {args.out}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells and headers that a spreadsheet would run as a formula get a leading `'` (OWASP's advice on
    CSV injection). Labels are the user's data and may come from anywhere; numbers are left alone.

    >>> import pandas as pd
    >>> spreadsheet_safe(pd.DataFrame({"label": ["=cmd|' /C calc'!A0", "yes", "-x"], "@p": [-1.5, 0.2, 1.0]})).to_dict("list")
    {'label': ["'=cmd|' /C calc'!A0", 'yes', "'-x"], "'@p": [-1.5, 0.2, 1.0]}
    """
    def safe(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value

    out = frame.rename(columns=safe)
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(safe)
    return out


def _names(store) -> list[str]:
    from calmops_actors.readlog import list_pipelines

    return list_pipelines(store)
