"""Drift scenarios with known ground truth: River's generators cut into blocks, plus a manifest of every change.

`generate_scenario` builds a synthetic stream whose labelling function switches (abruptly, gradually or for a
while) at a chosen block, optionally with covariate and label shifts from `pipelines.synthetic.shifts`; `inject_scenario`
applies the same shifts to a user's own table. Both return a `Scenario`: the blocks as DataFrames and a
JSON-able manifest saying, per block, whether and how it drifts. Pure: no files, no clock; seeds come in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import pandas as pd
from river.datasets import synth

from pipelines.synthetic.shifts import Reference, Shift, ShiftError, check_shifts, parse_shifts, shift_block

MANIFEST_SCHEMA = "calmops.scenario/1"
TARGET = "target"
SWITCHES: tuple[str, ...] = ("abrupt", "gradual", "recurring", "none")


class ScenarioError(ShiftError):
    """Parameters that cannot make a scenario (unknown name, drift block out of range...)."""


def block_name(index: int) -> str:
    """The id of the `index`-th block (1-based).

    >>> block_name(7)
    'block_0007'
    """
    return f"block_{index:04d}"


@dataclass(frozen=True)
class Scenario:
    """Blocks in order, as `(block_id, frame)` pairs, and the ground-truth manifest (JSON-able)."""

    frames: tuple[tuple[str, pd.DataFrame], ...]
    manifest: dict = field(repr=False)

    def combined(self, block_col: str = "block") -> pd.DataFrame:
        """All blocks in one frame with a `block_col` column first; unlabelled blocks get an empty target."""
        parts = []
        for block_id, frame in self.frames:
            if block_col in frame.columns:
                parts.append(frame)
            else:
                parts.append(frame.assign(**{block_col: block_id})[[block_col, *frame.columns]])
        combined = pd.concat(parts, ignore_index=True)
        target = self.manifest["columns"]["target"]
        if target in combined.columns:
            combined = combined[[c for c in combined.columns if c != target] + [target]]
        return combined


@dataclass(frozen=True)
class _Spec:
    task: str
    before: str
    after: str
    concept_features: tuple[str, ...]
    make_before: Callable[[int], synth.base.SyntheticDataset]
    make_after: Callable[[int], synth.base.SyntheticDataset]
    default_switch: str = "abrupt"
    rename: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f.rename(columns=lambda k: f"feat_{k + 1}")


def _agrawal_columns(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("elevel", "car", "zipcode"):
        frame[column] = [f"{column}_{v}" for v in frame[column]]
    return frame


_STAGGER_LABELS = {
    "size": ("small", "medium", "large"),
    "color": ("red", "blue", "green"),
    "shape": ("circle", "square", "triangle"),
}


def _stagger_columns(frame: pd.DataFrame) -> pd.DataFrame:
    for column, labels in _STAGGER_LABELS.items():
        frame[column] = [labels[v] for v in frame[column]]
    return frame


SCENARIOS: dict[str, _Spec] = {
    "sea": _Spec(
        "classification",
        "SEA variant 0: target = feat_1 + feat_2 > 8",
        "SEA variant 3: target = feat_1 + feat_2 > 9.5",
        ("feat_1", "feat_2"),
        lambda s: synth.SEA(variant=0, seed=s),
        lambda s: synth.SEA(variant=3, seed=s),
    ),
    "agrawal": _Spec(
        "classification",
        "Agrawal function 0: target depends on age",
        "Agrawal function 2: target depends on age and elevel",
        ("age", "elevel"),
        lambda s: synth.Agrawal(classification_function=0, seed=s),
        lambda s: synth.Agrawal(classification_function=2, seed=s),
        rename=_agrawal_columns,
    ),
    "hyperplane": _Spec(
        "classification",
        "Hyperplane with fixed random weights (5% label noise)",
        "another random hyperplane whose first 2 weights keep moving (mag_change=0.001, 5% label noise)",
        tuple(f"feat_{i}" for i in range(1, 11)),
        lambda s: synth.Hyperplane(n_features=10, mag_change=0.0, seed=s),
        lambda s: synth.Hyperplane(n_features=10, n_drift_features=2, mag_change=0.001, sigma=0.1, seed=s),
        default_switch="gradual",
    ),
    "sine": _Spec(
        "classification",
        "SINE1: target = 1 when feat_1 < sin(feat_2)",
        "reversed SINE1: target = 1 when feat_1 >= sin(feat_2)",
        ("feat_1", "feat_2"),
        lambda s: synth.Sine(classification_function=0, seed=s),
        lambda s: synth.Sine(classification_function=1, seed=s),
    ),
    "stagger": _Spec(
        "classification",
        "STAGGER function 0: target = size is small and color is red",
        "STAGGER function 1: target = color is green or shape is circle",
        ("size", "color", "shape"),
        lambda s: synth.STAGGER(classification_function=0, seed=s),
        lambda s: synth.STAGGER(classification_function=1, seed=s),
        rename=_stagger_columns,
    ),
    "friedman": _Spec(
        "regression",
        "Friedman #1: 10 sin(pi f1 f2) + 20 (f3 - 0.5)^2 + 10 f4 + 5 f5 + N(0, 1)",
        "FriedmanDrift 'gra' concept: 10 sin(pi f4 f6) + 20 (f2 - 0.5)^2 + 10 f1 + 5 f3 + N(0, 1)",
        tuple(f"feat_{i}" for i in range(1, 7)),
        lambda s: synth.Friedman(seed=s),
        # FriedmanDrift 'gra' uses its second concept between the two positions: here, from row 0 on.
        lambda s: synth.FriedmanDrift(drift_type="gra", position=(0, 2**62), seed=s),
    ),
}


def _sigmoid_share(local_rows: np.ndarray, width: int) -> np.ndarray:
    """ConceptDriftStream's chance that a row comes from the new concept (position = width // 2)."""
    exponent = np.clip(-4.0 * (local_rows - width // 2) / width, -700.0, 700.0)
    return 1.0 / (1.0 + np.exp(exponent))


def drift_schedule(
    block_rows: Sequence[int],
    drift_at: int,
    switch: str,
    drift_width: int | None = None,
    recur_after: int | None = None,
    alternate: bool = False,
) -> tuple[float, ...]:
    """Per block, the share of rows under the new concept (and the strength of the shifts), 0..1.

    `alternate` (recurring only): the concepts keep taking turns every `recur_after` blocks (A-B-A-B...)
    instead of the old concept returning once for good, so a stream can test a concept seen twice.

    >>> drift_schedule([100] * 5, drift_at=3, switch="recurring", recur_after=1)
    (0.0, 0.0, 1.0, 0.0, 0.0)
    >>> drift_schedule([100] * 7, drift_at=2, switch="recurring", recur_after=2, alternate=True)
    (0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0)
    """
    start = sum(block_rows[: drift_at - 1])
    shares = []
    offset = 0
    for index, rows in enumerate(block_rows, start=1):
        if index < drift_at:
            share = 0.0
        elif switch == "gradual":
            local = np.arange(offset - start + 1, offset - start + rows + 1, dtype=float)
            share = float(_sigmoid_share(local, drift_width).mean()) if rows else 0.0
        elif switch == "recurring" and alternate:
            share = 1.0 if (index - drift_at) // recur_after % 2 == 0 else 0.0
        elif switch == "recurring":
            share = 1.0 if index < drift_at + recur_after else 0.0
        else:
            share = 1.0
        shares.append(share)
        offset += rows
    return tuple(shares)


def _take(iterator: Iterator, n: int) -> list:
    return list(islice(iterator, n))


def _concept_rows(
    spec: _Spec, seeds: Sequence[int], total: int, start: int, end: int, switch: str, width: int | None,
    alternate: bool = False,
) -> list:
    """The (x, y) pairs of the whole stream: concept A, then B from row `start` (until `end` if recurring;
    alternating, each concept's stream resumes where it left off, every `end - start` rows)."""
    before = iter(spec.make_before(seeds[0]))
    if switch == "none":
        return _take(before, total)
    head = _take(before, start)
    if switch == "abrupt":
        return head + _take(iter(spec.make_after(seeds[1])), total - start)
    if switch == "recurring" and alternate:
        streams = (iter(spec.make_after(seeds[1])), before)
        period = max(1, end - start)
        for turn, at in enumerate(range(start, total, period)):
            head += _take(streams[turn % 2], min(period, total - at))
        return head
    if switch == "recurring":
        middle = _take(iter(spec.make_after(seeds[1])), end - start)
        return head + middle + _take(before, total - end)
    # Gradual: River's ConceptDriftStream mixes a fresh concept-A stream with concept B along a sigmoid
    # centred width // 2 rows after the drift block starts (never width=1 at a far position: exp overflows).
    mixed = synth.ConceptDriftStream(
        stream=spec.make_before(seeds[2]),
        drift_stream=spec.make_after(seeds[1]),
        position=width // 2,
        width=width,
        seed=seeds[3],
    )
    return head + _take(iter(mixed), total - start)


def _to_frame(spec: _Spec, pairs: list) -> pd.DataFrame:
    frame = spec.rename(pd.DataFrame.from_records([x for x, _ in pairs]))
    ys = [y for _, y in pairs]
    frame[TARGET] = np.asarray(ys, dtype="float64" if spec.task == "regression" else "int64")
    return frame


def _dtype_name(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int64"
    if pd.api.types.is_float_dtype(series):
        return "float64"
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        return "string"
    return str(series.dtype)


def _unify(frames: list[pd.DataFrame]) -> tuple[list[pd.DataFrame], dict[str, str]]:
    """Give every block the same dtypes: a column that became float in one block is float in all (and one
    that became text, e.g. a new category in a pandas categorical, is text in all)."""
    schema: dict[str, str] = {}
    for frame in frames:
        for column in frame.columns:
            name = _dtype_name(frame[column])
            previous = schema.setdefault(column, name)
            if previous != name:
                schema[column] = "float64" if {previous, name} == {"int64", "float64"} else "string"
    out = []
    for frame in frames:
        frame = frame.copy()
        for column in frame.columns:
            if schema[column] == "float64" and _dtype_name(frame[column]) != "float64":
                frame[column] = frame[column].astype("float64")
            elif schema[column] == "string":
                frame[column] = frame[column].astype(object)
        out.append(frame)
    return out, schema


def _as_shifts(shifts: Iterable[Shift | str]) -> tuple[Shift, ...]:
    return tuple(s for item in shifts for s in (parse_shifts([item]) if isinstance(item, str) else (item,)))


def _check_int(name: str, value: int, low: int, high: int | None = None) -> None:
    if not isinstance(value, int | np.integer) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ScenarioError(f"{name} must be a whole number {bound}, got {value!r}")


def _resolve_timing(
    block_rows: Sequence[int],
    drift_at: int | None,
    switch: str,
    drift_width: int | None,
    recur_after: int | None,
    labels_until: int | None,
) -> tuple[int, int | None, int | None]:
    blocks = len(block_rows)
    if switch not in SWITCHES:
        raise ScenarioError(f"unknown switch {switch!r}; use one of {', '.join(SWITCHES)}")
    drift_at = blocks // 2 + 1 if drift_at is None else drift_at
    _check_int("the drift block (--drift-at)", drift_at, 1, blocks)
    if switch == "gradual":
        drift_width = 2 * block_rows[drift_at - 1] if drift_width is None else drift_width
        _check_int("the drift width in rows (--drift-width)", drift_width, 1)
    else:
        drift_width = None
    if switch == "recurring":
        recur_after = max(1, (blocks - drift_at + 1) // 2) if recur_after is None else recur_after
        _check_int(
            "the number of drifted blocks before the old concept returns (--recur-after)", recur_after, 1
        )
    else:
        recur_after = None
    if labels_until is not None:
        _check_int("the last labelled block (--no-labels-after)", labels_until, 0, blocks)
    return drift_at, drift_width, recur_after


def _reference(frames: Sequence[pd.DataFrame], drift_at: int, target: str | None) -> tuple[Reference, int]:
    """Statistics of the blocks before the drift (block 1 alone when the drift starts at block 1)."""
    count = max(1, drift_at - 1)
    return Reference.from_frame(pd.concat(frames[:count], ignore_index=True), target=target), count


def _assemble(
    ids: Sequence[str],
    clean: list[pd.DataFrame],
    *,
    shifts: tuple[Shift, ...],
    shift_seed: int,
    shares: Sequence[float],
    concept: dict | None,
    drift_at: int,
    labels_until: int | None,
    target: str,
    protected: Iterable[str] = (),
) -> tuple[tuple[tuple[str, pd.DataFrame], ...], list[dict], dict[str, str], dict, str | None]:
    """Shift each block by its schedule share and describe it; returns frames, block entries, dtypes,
    the reference description and the task inferred from the reference target."""
    reference, ref_count = _reference(clean, drift_at, target if target in clean[0].columns else None)
    check_shifts(shifts, reference, protected)
    shifted: list[pd.DataFrame] = []
    entries: list[dict] = []
    for index, (block_id, frame, share) in enumerate(zip(ids, clean, shares, strict=True), start=1):
        labelled = labels_until is None or index <= labels_until
        if not labelled and target in frame.columns:
            frame = frame.drop(columns=[target])  # before shifting: withheld labels cannot be corrupted
        rng = np.random.default_rng([shift_seed, index])
        frame, records = shift_block(frame, shifts, rng, reference, share)
        changes = list(records)
        if concept is not None and share > 0:
            changes.insert(
                0,
                {
                    "kind": "concept",
                    "features": list(concept["features"]),
                    "before": concept["before"],
                    "after": concept["after"],
                    "new_concept_fraction": share,
                },
            )
        shifted.append(frame)
        kinds = sorted({c["kind"] for c in changes})
        features = sorted(
            {f for c in changes for f in (c["features"] if "features" in c else [c["feature"]])}
        )
        entries.append(
            {
                "block_id": block_id,
                "index": index,
                "rows": len(frame),
                "labelled": labelled,
                "drift": bool(changes),
                "kinds": kinds,
                "features": features,
                "concept": "before"
                if concept is None or share == 0
                else ("after" if share == 1 else "transition"),
                "changes": changes,
            }
        )
    frames, schema = _unify(shifted)
    reference_info = {"blocks": list(ids[:ref_count]), "rows": int(sum(len(f) for f in clean[:ref_count]))}
    return tuple(zip(ids, frames, strict=True)), entries, schema, reference_info, reference.task


def generate_scenario(
    name: str,
    blocks: int = 10,
    rows: int = 1000,
    seed: int = 0,
    drift_at: int | None = None,
    drift_width: int | None = None,
    switch: str | None = None,
    shifts: Iterable[Shift | str] = (),
    labels_until: int | None = None,
    recur_after: int | None = None,
    alternate: bool = False,
) -> Scenario:
    """Generate `blocks` blocks of `rows` rows from River scenario `name` with a known drift from `drift_at`.

    `switch` (default: the scenario's own, `gradual` for hyperplane, else `abrupt`) says how the labelling
    function changes: `abrupt` at the first row of block `drift_at`; `gradual` along ConceptDriftStream's
    sigmoid over about `drift_width` rows (default two blocks); `recurring` for `recur_after` blocks, then
    the old concept returns (with `alternate`, the two keep taking turns every `recur_after` blocks: A-B-A-B);
    `none` keeps the concept. `shifts` follow the same schedule. Blocks after `labels_until` carry no target
    column.

    >>> s = generate_scenario("sea", blocks=4, rows=50, seed=1, shifts=["mean:feat_3:1"])
    >>> [(b["block_id"], b["kinds"]) for b in s.manifest["blocks"]]
    [('block_0001', []), ('block_0002', []), ('block_0003', ['concept', 'covariate']), ('block_0004', ['concept', 'covariate'])]
    >>> abab = generate_scenario("sea", blocks=8, rows=20, seed=1, drift_at=3, switch="recurring", recur_after=2,
    ...                          alternate=True)
    >>> [b["concept"] for b in abab.manifest["blocks"]], abab.manifest["parameters"]["alternate"]
    (['before', 'before', 'after', 'after', 'before', 'before', 'after', 'after'], True)
    """
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    spec = SCENARIOS[name]
    _check_int("the number of blocks (--blocks)", blocks, 1)
    _check_int("the rows per block (--rows)", rows, 1)
    switch = spec.default_switch if switch is None else switch
    if alternate and switch != "recurring":
        raise ScenarioError(f"alternate concepts need switch='recurring', not {switch!r}")
    block_rows = [rows] * blocks
    drift_at, drift_width, recur_after = _resolve_timing(
        block_rows, drift_at, switch, drift_width, recur_after, labels_until
    )
    parsed = _as_shifts(shifts)
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(5)]
    total = rows * blocks
    start = rows * (drift_at - 1)
    end = min(total, start + rows * (recur_after or 0))
    pairs = _concept_rows(spec, seeds, total, start, end, switch, drift_width, alternate)
    data = _to_frame(spec, pairs)
    clean = [data.iloc[i * rows : (i + 1) * rows].reset_index(drop=True) for i in range(blocks)]
    ids = [block_name(i) for i in range(1, blocks + 1)]
    shares = drift_schedule(block_rows, drift_at, switch, drift_width, recur_after, alternate)
    concept = None
    if switch != "none":
        concept = {"before": spec.before, "after": spec.after, "features": list(spec.concept_features)}
    frames, entries, schema, reference, _ = _assemble(
        ids,
        clean,
        shifts=parsed,
        shift_seed=seeds[4],
        shares=shares,
        concept=concept,
        drift_at=drift_at,
        labels_until=labels_until,
        target=TARGET,
    )
    features = [c for c in clean[0].columns if c != TARGET]
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "scenario": name,
        "task": spec.task,
        "seed": seed,
        "parameters": {
            "blocks": blocks,
            "rows": rows,
            "drift_at": drift_at,
            "switch": switch,
            "drift_width": drift_width,
            "recur_after": recur_after,
            "shifts": [s.spec for s in parsed],
            "labels_until": labels_until,
            # only when set, so every manifest written before `alternate` existed reads the same
            **({"alternate": True} if alternate else {}),
        },
        "concepts": concept,
        "columns": {
            "features": features,
            "categorical": [c for c in features if schema[c] == "string"],
            "target": TARGET,
            "dtypes": schema,
        },
        "reference": reference,
        "blocks": entries,
    }
    return Scenario(frames, manifest)


def split_blocks(
    frame: pd.DataFrame, rows: int | None = None, block_col: str | None = None
) -> tuple[tuple[str, pd.DataFrame], ...]:
    """Cut `frame` into consecutive blocks of `rows` rows, or by the values of `block_col` in order of
    first appearance (the column is kept).

    >>> [(b, len(f)) for b, f in split_blocks(pd.DataFrame({"x": range(5)}), rows=2)]
    [('block_0001', 2), ('block_0002', 2), ('block_0003', 1)]
    """
    if (rows is None) == (block_col is None):
        raise ScenarioError("split the data either by --rows N or by --block-col NAME (exactly one of them)")
    if frame.empty:
        raise ScenarioError("the input has no rows to split into blocks")
    if rows is not None:
        _check_int("the rows per block (--rows)", rows, 1)
        count = math.ceil(len(frame) / rows)
        return tuple(
            (block_name(i + 1), frame.iloc[i * rows : (i + 1) * rows].reset_index(drop=True))
            for i in range(count)
        )
    if block_col not in frame.columns:
        raise ScenarioError(
            f"no column {block_col!r} to split blocks by; the columns are: {', '.join(map(str, frame.columns))}"
        )
    if frame[block_col].isna().any():
        raise ScenarioError(f"the block column {block_col!r} has empty values; fill them or split by --rows")
    keys = pd.unique(frame[block_col])
    groups = frame.groupby(block_col, sort=False)
    return tuple((str(key), groups.get_group(key).reset_index(drop=True)) for key in keys)


def inject_scenario(
    frame: pd.DataFrame,
    shifts: Iterable[Shift | str],
    seed: int,
    rows: int | None = None,
    block_col: str | None = None,
    drift_at: int | None = None,
    switch: str = "abrupt",
    drift_width: int | None = None,
    recur_after: int | None = None,
    labels_until: int | None = None,
    target: str = TARGET,
) -> Scenario:
    """Split a user's table into blocks and apply `shifts` from block `drift_at` on (see `generate_scenario`
    for the schedules; `none` is not offered because a user's table brings no concept to switch).

    >>> table = pd.DataFrame({"x": np.arange(40.0), "target": [0, 1] * 20})
    >>> s = inject_scenario(table, ["missing:x:0.5"], seed=3, rows=10, drift_at=3)
    >>> [int(f["x"].isna().sum()) for _, f in s.frames]
    [0, 0, 5, 5]
    """
    if switch == "none":
        raise ScenarioError(
            "inject has no concept to keep or switch; use --switch abrupt, gradual or recurring"
        )
    parsed = _as_shifts(shifts)
    frame = frame.rename(columns=str)
    blocks = split_blocks(frame, rows=rows, block_col=block_col)
    ids = [b for b, _ in blocks]
    clean = [f for _, f in blocks]
    block_rows = [len(f) for f in clean]
    drift_at, drift_width, recur_after = _resolve_timing(
        block_rows, drift_at, switch, drift_width, recur_after, labels_until
    )
    shares = drift_schedule(block_rows, drift_at, switch, drift_width, recur_after)
    shift_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    protected = [block_col] if block_col else []
    frames, entries, schema, reference, task = _assemble(
        ids,
        clean,
        shifts=parsed,
        shift_seed=shift_seed,
        shares=shares,
        concept=None,
        drift_at=drift_at,
        labels_until=labels_until,
        target=target,
        protected=protected,
    )
    has_target = target in frame.columns
    features = [c for c in frame.columns if c != target and c != block_col]
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "scenario": "inject",
        "task": task,
        "seed": seed,
        "parameters": {
            "blocks": len(blocks),
            "rows": rows,
            "block_col": block_col,
            "drift_at": drift_at,
            "switch": switch,
            "drift_width": drift_width,
            "recur_after": recur_after,
            "shifts": [s.spec for s in parsed],
            "labels_until": labels_until,
        },
        "concepts": None,
        "columns": {
            "features": features,
            "categorical": [c for c in features if schema[c] in ("string", "bool", "category")],
            "target": target if has_target else None,
            "dtypes": schema,
        },
        "reference": reference,
        "blocks": entries,
    }
    return Scenario(frames, manifest)
