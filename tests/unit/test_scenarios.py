"""Scenarios from River's generators: seeded, shaped as documented, and the concept really switches."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from pipelines.synthetic.scenarios import (
    SCENARIOS,
    ScenarioError,
    drift_schedule,
    generate_scenario,
    inject_scenario,
    split_blocks,
)
from pipelines.synthetic.shifts import ShiftError


def frames(scenario) -> list[pd.DataFrame]:
    return [frame for _, frame in scenario.frames]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_seed_same_frames_other_seed_other_frames(name: str) -> None:
    a = generate_scenario(name, blocks=3, rows=40, seed=5, shifts=["label_noise:0.2"])
    b = generate_scenario(name, blocks=3, rows=40, seed=5, shifts=["label_noise:0.2"])
    c = generate_scenario(name, blocks=3, rows=40, seed=6, shifts=["label_noise:0.2"])
    assert [i for i, _ in a.frames] == ["block_0001", "block_0002", "block_0003"]
    for x, y in zip(frames(a), frames(b), strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert json.dumps(a.manifest) == json.dumps(b.manifest)
    assert not frames(a)[0].equals(frames(c)[0])


EXPECTED_COLUMNS = {
    "sea": ["feat_1", "feat_2", "feat_3"],
    "agrawal": ["salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan"],
    "hyperplane": [f"feat_{i}" for i in range(1, 11)],
    "sine": ["feat_1", "feat_2"],
    "stagger": ["size", "color", "shape"],
    "friedman": [f"feat_{i}" for i in range(1, 11)],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_columns_are_strings_categoricals_stay_text_and_target_is_last(name: str) -> None:
    scenario = generate_scenario(name, blocks=2, rows=30, seed=1)
    frame = frames(scenario)[0]
    assert list(frame.columns) == [*EXPECTED_COLUMNS[name], "target"]
    columns = scenario.manifest["columns"]
    assert columns["features"] == EXPECTED_COLUMNS[name]
    for column in columns["categorical"]:
        assert frame[column].map(type).eq(str).all()
        assert not frame[column].str.fullmatch(r"\d+").any()  # survives a CSV round trip as text
    assert columns["categorical"] == {
        "agrawal": ["elevel", "car", "zipcode"],
        "stagger": ["size", "color", "shape"],
    }.get(name, [])
    expected_target = "float64" if name == "friedman" else "int64"
    assert str(frame["target"].dtype) == columns["dtypes"]["target"] == expected_target
    assert scenario.manifest["task"] == ("regression" if name == "friedman" else "classification")


def test_stagger_and_agrawal_categories_are_readable_words() -> None:
    stagger = frames(generate_scenario("stagger", blocks=1, rows=300, seed=0))[0]
    assert set(stagger["size"]) == {"small", "medium", "large"}
    assert set(stagger["shape"]) == {"circle", "square", "triangle"}
    agrawal = frames(generate_scenario("agrawal", blocks=1, rows=300, seed=0))[0]
    assert set(agrawal["elevel"]) == {f"elevel_{i}" for i in range(5)}


def test_concept_switch_costs_a_model_fit_before_it_on_sea() -> None:
    scenario = generate_scenario("sea", blocks=6, rows=1000, seed=42, drift_at=4, switch="abrupt")
    blocks = frames(scenario)
    train = pd.concat(blocks[:2])
    model = LogisticRegression().fit(train[["feat_1", "feat_2", "feat_3"]], train["target"])
    accuracy = [model.score(b[["feat_1", "feat_2", "feat_3"]], b["target"]) for b in blocks]
    assert accuracy[2] > 0.97  # held out, same concept
    assert max(accuracy[3:]) < 0.91  # threshold 8 -> 9.5 relabels ~13% of the rows
    # The labelling function is exactly the one the manifest names, on either side of the switch.
    total = [b["feat_1"] + b["feat_2"] for b in blocks]
    assert all(((t > 8).astype(int) == b["target"]).all() for t, b in zip(total[:3], blocks[:3], strict=True))
    assert all(
        ((t > 9.5).astype(int) == b["target"]).all() for t, b in zip(total[3:], blocks[3:], strict=True)
    )
    assert [b["concept"] for b in scenario.manifest["blocks"]] == ["before"] * 3 + ["after"] * 3


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_switch_degrades_a_model_fit_before_it(name: str) -> None:
    scenario = generate_scenario(name, blocks=4, rows=1000, seed=3, drift_at=3, switch="abrupt")
    blocks = frames(scenario)
    features = pd.get_dummies(pd.concat(blocks).drop(columns="target"), dtype=float)
    x = [features.iloc[i * 1000 : (i + 1) * 1000] for i in range(4)]
    y = [b["target"] for b in blocks]
    if name == "hyperplane":
        model = LogisticRegression(max_iter=1000)
    elif name == "friedman":
        model = DecisionTreeRegressor(max_depth=6, random_state=0)
    else:
        model = DecisionTreeClassifier(max_depth=6, random_state=0)
    model.fit(x[0], y[0])
    before, after = model.score(x[1], y[1]), max(model.score(x[2], y[2]), model.score(x[3], y[3]))
    assert after < before - 0.1, (name, before, after)
    assert scenario.manifest["blocks"][2]["kinds"] == ["concept"]
    assert scenario.manifest["blocks"][2]["features"] == sorted(scenario.manifest["concepts"]["features"])


def test_recurring_switch_returns_to_the_old_labelling_function() -> None:
    scenario = generate_scenario(
        "sine", blocks=6, rows=500, seed=9, drift_at=3, switch="recurring", recur_after=2
    )
    sine1 = [(b["feat_1"] < np.sin(b["feat_2"])).astype(int) for b in frames(scenario)]
    agreement = [float((s == b["target"]).mean()) for s, b in zip(sine1, frames(scenario), strict=True)]
    assert agreement == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # reversed SINE1 in blocks 3-4 only
    entries = scenario.manifest["blocks"]
    assert [e["drift"] for e in entries] == [False, False, True, True, False, False]
    assert [e["concept"] for e in entries] == ["before", "before", "after", "after", "before", "before"]
    assert scenario.manifest["parameters"]["recur_after"] == 2
    # After the return, the stream goes on rather than replaying its first rows.
    assert not np.isin(frames(scenario)[4]["feat_1"], frames(scenario)[0]["feat_1"]).any()


def test_gradual_switch_mixes_concepts_in_the_recorded_proportions() -> None:
    scenario = generate_scenario(
        "sine", blocks=8, rows=1000, seed=4, drift_at=3, switch="gradual", drift_width=3000
    )
    reversed_share = []
    for frame in frames(scenario):
        reversed_sine1 = (frame["feat_1"] >= np.sin(frame["feat_2"])).astype(int)
        reversed_share.append(float((reversed_sine1 == frame["target"]).mean()))
    recorded = [
        e["changes"][0]["new_concept_fraction"] if e["drift"] else 0.0 for e in scenario.manifest["blocks"]
    ]
    assert reversed_share[:2] == [0.0, 0.0]
    assert reversed_share == pytest.approx(recorded, abs=0.05)
    assert recorded[2] < 0.5 < recorded[4] and recorded[-1] > 0.95
    assert {e["concept"] for e in scenario.manifest["blocks"][2:]} == {"transition"}


def test_hyperplane_defaults_to_a_gradual_switch() -> None:
    scenario = generate_scenario("hyperplane", blocks=4, rows=100, seed=0)
    assert scenario.manifest["parameters"]["switch"] == "gradual"
    assert scenario.manifest["parameters"]["drift_width"] == 200


def test_switch_none_keeps_the_concept_and_only_shifts() -> None:
    scenario = generate_scenario("sea", blocks=4, rows=500, seed=1, switch="none", shifts=["mean:feat_3:1"])
    for frame in frames(scenario):
        assert ((frame["feat_1"] + frame["feat_2"] > 8).astype(int) == frame["target"]).all()
    assert scenario.manifest["concepts"] is None
    assert [e["kinds"] for e in scenario.manifest["blocks"]] == [[], [], ["covariate"], ["covariate"]]


def test_blocks_after_the_label_cutoff_have_no_target() -> None:
    scenario = generate_scenario("sea", blocks=5, rows=20, seed=0, labels_until=2)
    assert ["target" in frame.columns for frame in frames(scenario)] == [True, True, False, False, False]
    assert [e["labelled"] for e in scenario.manifest["blocks"]] == [True, True, False, False, False]
    combined = scenario.combined("block")
    assert list(combined.columns) == ["block", "feat_1", "feat_2", "feat_3", "target"]
    assert combined.groupby("block")["target"].count().tolist() == [20, 20, 0, 0, 0]


def test_manifest_is_json_and_describes_the_run() -> None:
    scenario = generate_scenario(
        "agrawal", blocks=4, rows=50, seed=7, drift_at=2, shifts=["mean:salary:0.5", "missing:car:0.1"]
    )
    manifest = json.loads(json.dumps(scenario.manifest, allow_nan=False))
    assert manifest["schema"] == "calmops.scenario/1"
    assert manifest["scenario"] == "agrawal" and manifest["seed"] == 7
    assert manifest["parameters"] == {
        "blocks": 4,
        "rows": 50,
        "drift_at": 2,
        "switch": "abrupt",
        "drift_width": None,
        "recur_after": None,
        "shifts": ["mean:salary:0.5", "missing:car:0.1"],
        "labels_until": None,
    }
    assert manifest["reference"] == {"blocks": ["block_0001"], "rows": 50}
    assert [e["rows"] for e in manifest["blocks"]] == [50] * 4
    assert manifest["blocks"][1]["features"] == ["age", "car", "elevel", "salary"]
    assert manifest["columns"]["dtypes"]["salary"] == "float64"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "waves"}, "unknown scenario 'waves'; choose one of sea, agrawal"),
        ({"drift_at": 0}, "drift block (--drift-at) must be a whole number between 1 and 4"),
        ({"drift_at": 5}, "between 1 and 4, got 5"),
        ({"switch": "sudden"}, "unknown switch 'sudden'"),
        ({"switch": "gradual", "drift_width": 0}, "drift width in rows (--drift-width) must be"),
        ({"switch": "recurring", "recur_after": 0}, "--recur-after"),
        ({"labels_until": 5}, "last labelled block (--no-labels-after)"),
        ({"rows": 0}, "rows per block (--rows)"),
        ({"shifts": ["mean:feat_9:1"]}, "unknown column 'feat_9'"),
    ],
)
def test_impossible_parameters_are_refused_with_the_option_named(kwargs: dict, message: str) -> None:
    arguments = {"name": "sea", "blocks": 4, "rows": 10, "seed": 0} | kwargs
    with pytest.raises(ScenarioError if "shifts" not in kwargs else ShiftError) as err:
        generate_scenario(**arguments)
    assert message in str(err.value)


def test_drift_schedule_shapes() -> None:
    assert drift_schedule([10] * 4, 3, "abrupt") == (0.0, 0.0, 1.0, 1.0)
    assert drift_schedule([10] * 4, 3, "none") == (0.0, 0.0, 1.0, 1.0)
    assert drift_schedule([10] * 6, 2, "recurring", recur_after=3) == (0.0, 1.0, 1.0, 1.0, 0.0, 0.0)
    gradual = drift_schedule([100] * 5, 2, "gradual", drift_width=200)
    assert gradual[0] == 0.0 and all(a < b for a, b in zip(gradual[1:], gradual[2:], strict=False))
    assert gradual[2] == pytest.approx(0.5 + (0.5 - gradual[1]), abs=0.01)  # the sigmoid's symmetry


def test_split_blocks_by_rows_and_by_column() -> None:
    table = pd.DataFrame({"week": ["w2", "w2", "w1", "w3", "w1"], "x": range(5)})
    by_rows = split_blocks(table, rows=2)
    assert [(b, len(f)) for b, f in by_rows] == [("block_0001", 2), ("block_0002", 2), ("block_0003", 1)]
    by_week = split_blocks(table, block_col="week")
    assert [(b, f["x"].tolist()) for b, f in by_week] == [("w2", [0, 1]), ("w1", [2, 4]), ("w3", [3])]
    with pytest.raises(ScenarioError, match="exactly one of them"):
        split_blocks(table, rows=2, block_col="week")
    with pytest.raises(ScenarioError, match="no column 'day' to split blocks by"):
        split_blocks(table, block_col="day")


def test_inject_shifts_a_users_table_from_the_drift_block() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "week": np.repeat([1, 2, 3, 4], 250),
            "price": rng.normal(10, 2, 1000),
            "city": rng.choice(["x", "y"], 1000),
            "churned": rng.integers(0, 2, 1000),
        }
    )
    scenario = inject_scenario(
        table,
        ["mean:price:1", "category:city:z:0.5", "label_noise:0.2"],
        seed=1,
        block_col="week",
        drift_at=3,
        target="churned",
    )
    blocks = frames(scenario)
    assert [b for b, _ in scenario.frames] == ["1", "2", "3", "4"]
    reference = table[table["week"] <= 2]["price"]
    for index, (original, shifted) in enumerate(
        zip(split_blocks(table, block_col="week"), blocks, strict=True)
    ):
        original = original[1]
        drifting = index >= 2
        assert np.allclose(shifted["price"] - original["price"], reference.std() if drifting else 0.0)
        assert int((shifted["city"] == "z").sum()) == (125 if drifting else 0)
        assert int((shifted["churned"] != original["churned"]).sum()) == (50 if drifting else 0)
        assert shifted["week"].tolist() == original["week"].tolist()
    manifest = scenario.manifest
    assert manifest["scenario"] == "inject" and manifest["task"] == "classification"
    assert manifest["columns"]["target"] == "churned"
    assert manifest["columns"]["features"] == ["price", "city"]
    assert manifest["blocks"][2]["kinds"] == ["covariate", "label"]
    with pytest.raises(ShiftError, match="cannot be shifted"):
        inject_scenario(table, ["missing:week:0.1"], seed=1, block_col="week")


def test_the_cli_lists_the_same_scenarios_switches_and_formats() -> None:
    from calmops_actors import blockfiles
    from calmops_actors.commands import generate
    from pipelines.synthetic.scenarios import SWITCHES

    assert tuple(SCENARIOS) == generate.SCENARIO_NAMES
    assert generate.SWITCH_NAMES == SWITCHES
    assert generate.FORMATS == blockfiles.FORMATS and generate.MANIFEST == blockfiles.MANIFEST
