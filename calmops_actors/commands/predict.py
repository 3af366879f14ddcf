"""`calmops predict NAME FILE`: score a file with the champion (or `--version V`), hash-checked before loading.

The file is read and validated like an arriving block (same schema, same rejections); the output has the
input's rows in order: first the input's columns that are not model features (an id, the label, a timestamp:
whatever lets the rows be joined back; `--keep COLS` picks them, `--no-keep` drops them), their text as the
file has it, then `model_version`, `prediction` and, for classifiers, one `proba_<class>` column per class.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from calmops_actors.cli_common import add_home_option, resolve_home, terminal_text
from calmops_actors.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score a file with the champion or a given model version",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  calmops predict churn new.csv --out scored.csv\n"
                              "  calmops predict churn new.parquet --version v3\n"
                              "  calmops predict churn new.csv --keep customer_id,signup_date --out scored.csv")
    p.add_argument("name", help="pipeline name")
    p.add_argument("file", type=Path, help="CSV or Parquet file with the pipeline's feature columns")
    p.add_argument("--version", default=None, help="model version (default: the current champion)")
    p.add_argument("--out", type=Path, default=None, help="output CSV (default: standard output)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep", action="append", default=None, metavar="COLS",
                      help="input columns to copy into the output, comma-separated or repeated (default: every "
                           "column that is not a model feature)")
    keep.add_argument("--no-keep", action="store_true", help="copy no input column: only the model's columns")
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
    # No block column: the file is scored as one block, so its rows stay in the file's order (blocks would group
    # them) and a file to score need not carry block ids. Its own name is not a block id either: the neutral
    # name keeps an odd file name from being refused, and messages name the real file.
    rules = IntakeRules(target=config.target, formats=tuple(config.formats), block_col=None,
                        schema=state.schema, max_file_mb=config.intake.max_file_mb,
                        max_invalid_share=config.intake.max_invalid_share, max_columns=config.intake.max_columns,
                        max_rows=config.intake.max_rows)
    data = args.file.read_bytes()
    neutral = "input" + args.file.suffix
    intake = parse_file(neutral, data, rules)
    if not intake.accepted:
        message = intake.message.replace(f"{neutral}: ", f"{terminal_text(args.file.name)}: ", 1)
        raise UserError(f"cannot score it: {message} [{intake.reason_code}]")
    frame = pd.concat([b.frame for b in intake.blocks], ignore_index=True)
    model = ArtifactStore(home.artifacts).get_model(ref_for(state.models[version].artifact))
    X = frame[list(state.schema.features)]
    out = pd.DataFrame({"prediction": model.predict(X)})
    if config.task == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        for i, cls in enumerate(model.classes_):
            out[f"proba_{cls}"] = proba[:, i]
    out.insert(0, "model_version", version)
    kept = passthrough(args, data, state.schema.features, list(out.columns))
    if kept is not None:
        if len(kept) != len(out):  # both are every row of the same file: a mismatch is a bug of ours
            raise UserError(f"cannot keep columns: read {len(kept)} row(s) of them but scored {len(out)}")
        out = pd.concat([kept, out], axis=1)
    out = spreadsheet_safe(out)
    if args.out:
        out.to_csv(args.out, index=False)
        print(f"wrote {len(out)} predictions of {args.name} {version} to {args.out}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def passthrough(args: argparse.Namespace, data: bytes, features: tuple[str, ...],
                output: list[str]) -> pd.DataFrame | None:
    """The input columns to copy into the output, in the file's order, read again as the file has them (CSV
    cells as their text, so an id keeps its leading zeros), or None with `--no-keep`.

    By default every column that is not a model feature; a column named like an output column (an input that
    was scored before) is left out with a note. `--keep` names them: an unknown one, or one named like an output
    column, is an error that lists the file's columns."""
    import pandas as pd

    if args.no_keep:
        return None
    columns = file_columns(args.file.suffix.lower(), data)
    if args.keep is None:
        chosen = [c for c in columns if c not in features and c not in output]
        clashing = [c for c in columns if c not in features and c in output]
        if clashing:
            print(f"note: input column(s) {', '.join(map(terminal_text, clashing))} not kept: the output has "
                  "its own", file=sys.stderr)
    else:
        chosen = list(dict.fromkeys(c.strip() for item in args.keep for c in item.split(",") if c.strip()))
        unknown = [c for c in chosen if c not in columns]
        if unknown:
            raise UserError(f"--keep: no column {', '.join(map(repr, unknown))} in {terminal_text(args.file.name)}"
                            f"; its columns: {', '.join(columns)}")
        clashing = [c for c in chosen if c in output]
        if clashing:
            raise UserError(f"--keep: {', '.join(map(repr, clashing))} is a column the output writes itself; "
                            "rename it in the input")
    if not chosen:
        return pd.DataFrame(index=pd.RangeIndex(0))
    return read_columns(args.file.suffix.lower(), data, chosen)


def file_columns(suffix: str, data: bytes) -> list[str]:
    """The file's column names as the reader sees them (Parquet: without a saved pandas index)."""
    import pyarrow as pa

    if suffix == ".csv":
        import pyarrow.csv as pacsv

        return list(pacsv.open_csv(pa.BufferReader(data)).schema.names)
    import pyarrow.parquet as pq

    schema = pq.read_schema(pa.BufferReader(data))
    index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    return [c for c in schema.names if c not in index]


def read_columns(suffix: str, data: bytes, columns: list[str]) -> pd.DataFrame:
    import pyarrow as pa

    if suffix == ".csv":
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(pa.BufferReader(data), convert_options=pacsv.ConvertOptions(
            include_columns=columns, column_types={c: pa.string() for c in columns}, strings_can_be_null=False))
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data), columns=columns)
    frame = table.to_pandas(ignore_metadata=True)
    frame.index = range(len(frame))
    return frame


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells and headers that a spreadsheet would run as a formula get a leading `'` (OWASP's advice on
    CSV injection). Labels are the user's data and may come from anywhere; numbers are left alone, and so is a
    text cell that is a plain negative number (`-5`, `-1.5e3`: a kept column is read as text), no formula.

    >>> import pandas as pd
    >>> spreadsheet_safe(pd.DataFrame({"label": ["=cmd|' /C calc'!A0", "yes", "-x", "-5"], "@p": [-1.5, 0.2, 1.0, 2.0]})).to_dict("list")
    {'label': ["'=cmd|' /C calc'!A0", 'yes', "'-x", '-5'], "'@p": [-1.5, 0.2, 1.0, 2.0]}
    """
    def safe(value):
        formula = isinstance(value, str) and value.startswith(FORMULA_START) and not negative_number(value)
        return "'" + value if formula else value

    out = frame.rename(columns=safe)
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(safe)
    return out


def negative_number(text: str) -> bool:
    """A plain negative decimal number, as a spreadsheet reads it (no `-1_000`, no `-inf`)."""
    return NEGATIVE_NUMBER.fullmatch(text) is not None


NEGATIVE_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _names(store) -> list[str]:
    from calmops_actors.readlog import list_pipelines

    return list_pipelines(store)
