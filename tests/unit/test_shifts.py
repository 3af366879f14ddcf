"""Covariate and label shifts: the data moves exactly where, and by as much as, the manifest says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.synthetic.scenarios import generate_scenario, inject_scenario
from pipelines.synthetic.shifts import Reference, Shift, ShiftError, apply_shifts, check_shifts, parse_shifts


def frames(scenario) -> list[pd.DataFrame]:
    return [frame for _, frame in scenario.frames]


def changes_of(scenario, index: int, shift: str) -> list[dict]:
    return [c for c in scenario.manifest["blocks"][index]["changes"] if c.get("shift") == shift]


# --- parsing ---------------------------------------------------------------------------------------------


def test_parse_every_kind_and_feature_lists() -> None:
    shifts = parse_shifts(
        [
            "mean:feat_1,feat_2:0.5",
            "scale:feat_3:2",
            "category:color:purple:0.3",
            "missing:age:0.25",
            "label-noise:0.1",
        ]
    )
    assert shifts == (
        Shift("mean", "feat_1", 0.5),
        Shift("mean", "feat_2", 0.5),
        Shift("scale", "feat_3", 2.0),
        Shift("category", "color", 0.3, "purple"),
        Shift("missing", "age", 0.25),
        Shift("label_noise", None, 0.1),
    )
    assert parse_shifts([s.spec for s in shifts]) == shifts


def test_category_fraction_defaults_to_a_fifth() -> None:
    assert parse_shifts(["category:color:purple"]) == (Shift("category", "color", 0.2, "purple"),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("drift:feat_1:0.5", "unknown kind 'drift'"),
        ("mean:feat_1", "write mean:FEATURES:AMOUNT"),
        ("mean:feat_1:half", "must be a number, got 'half'"),
        ("mean:feat_1:nan", "must be finite"),
        ("scale:feat_1:0", "scale factor must be positive"),
        ("missing:feat_1:1.5", "fraction must be in (0, 1]"),
        ("missing:feat_1:0", "fraction must be in (0, 1]"),
        ("label_noise:feat_1:0.1", "write label_noise:FRACTION"),
        ("category:color:", "name the new category"),
        ("mean::0.5", "name at least one feature"),
    ],
)
def test_bad_specs_say_what_to_write(spec: str, message: str) -> None:
    with pytest.raises(ShiftError) as err:
        parse_shifts([spec])
    assert message in str(err.value)
    assert spec in str(err.value)


# --- fitting the data ------------------------------------------------------------------------------------

TABLE = pd.DataFrame(
    {
        "x": np.linspace(0.0, 10.0, 50),
        "flat": np.ones(50),
        "city": ["a", "b"] * 25,
        "target": [0, 1] * 25,
    }
)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mean:nope:0.5", "unknown column 'nope'; the columns are: city, flat, x"),
        ("mean:city:0.5", "'city' is categorical"),
        ("category:x:new", "'x' is numeric"),
        ("category:city:a", "'a' already occurs in 'city'"),
        ("mean:target:1", "'target' is the target; use label_noise"),
        ("scale:flat:2", "'flat' is constant"),
    ],
)
def test_shifts_that_do_not_fit_the_columns_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ShiftError, match=message.replace("(", r"\(")):
        check_shifts(parse_shifts([spec]), Reference.from_frame(TABLE))


def test_label_noise_needs_a_target() -> None:
    reference = Reference.from_frame(TABLE.drop(columns="target"))
    with pytest.raises(ShiftError, match="no target column"):
        check_shifts(parse_shifts(["label_noise:0.1"]), reference)


def test_apply_shifts_measures_on_the_reference_and_leaves_the_input_alone() -> None:
    before = TABLE.copy()
    reference = TABLE.iloc[:10]  # x from 0 to ~1.84: sd ~0.62
    shifted = apply_shifts(TABLE, ["mean:x:1"], seed=0, reference=reference)
    pd.testing.assert_frame_equal(TABLE, before)
    assert np.allclose(shifted["x"] - TABLE["x"], reference["x"].std())
    assert apply_shifts(TABLE, ["mean:x:1"], seed=0, intensity=0.0).equals(TABLE)


def test_regression_label_noise_shuffles_targets_without_inventing_values() -> None:
    table = pd.DataFrame({"x": np.arange(200.0), "target": np.linspace(0.5, 99.5, 200)})
    noisy = apply_shifts(table, ["label_noise:0.5"], seed=4)
    changed = noisy["target"] != table["target"]
    assert 80 <= changed.sum() <= 100  # 100 rows shuffled among themselves; a few land on their own value
    assert sorted(noisy["target"]) == sorted(table["target"])


# --- ground truth on generated scenarios -----------------------------------------------------------------


def test_mean_shift_moves_the_feature_by_the_recorded_sd_units_from_the_drift_block_only() -> None:
    args = dict(blocks=6, rows=2000, seed=11, drift_at=4, switch="none")
    clean = generate_scenario("sea", **args)
    shifted = generate_scenario("sea", shifts=["mean:feat_1:0.5"], **args)
    reference = pd.concat(frames(clean)[:3])["feat_1"]
    for index, (a, b) in enumerate(zip(frames(clean), frames(shifted), strict=True)):
        entry = shifted.manifest["blocks"][index]
        if index < 3:
            assert not entry["drift"] and entry["changes"] == []
            pd.testing.assert_frame_equal(a, b)
            continue
        (change,) = changes_of(shifted, index, "mean")
        assert entry["drift"] and entry["kinds"] == ["covariate"] and entry["features"] == ["feat_1"]
        assert change["sd_units"] == 0.5
        assert change["reference_sd"] == pytest.approx(reference.std())
        assert np.allclose(b["feat_1"] - a["feat_1"], change["delta"])
        moved = (b["feat_1"].mean() - reference.mean()) / reference.std()
        assert moved == pytest.approx(0.5, abs=0.1)  # uniform(0, 10): sd ~2.9, block mean se ~0.02 sd
        pd.testing.assert_frame_equal(a.drop(columns="feat_1"), b.drop(columns="feat_1"))


def test_scale_shift_widens_the_spread_by_the_factor() -> None:
    scenario = generate_scenario(
        "friedman", blocks=4, rows=3000, seed=2, drift_at=3, switch="none", shifts=["scale:feat_2:2"]
    )
    blocks = frames(scenario)
    reference_sd = pd.concat(blocks[:2])["feat_2"].std()
    assert blocks[1]["feat_2"].std() / reference_sd == pytest.approx(1.0, abs=0.05)
    assert blocks[3]["feat_2"].std() / reference_sd == pytest.approx(2.0, abs=0.1)
    assert changes_of(scenario, 3, "scale")[0]["factor"] == 2.0


def test_new_category_appears_only_from_the_drift_block() -> None:
    scenario = generate_scenario(
        "stagger",
        blocks=5,
        rows=1000,
        seed=5,
        drift_at=3,
        switch="none",
        shifts=["category:color:purple:0.3"],
    )
    seen = [int((frame["color"] == "purple").sum()) for frame in frames(scenario)]
    recorded = [sum(c["rows_affected"] for c in changes_of(scenario, i, "new_category")) for i in range(5)]
    assert seen == recorded == [0, 0, 300, 300, 300]
    assert set(frames(scenario)[0]["color"]) == {"red", "blue", "green"}


def test_missing_value_surge_is_visible_and_counted() -> None:
    scenario = generate_scenario(
        "agrawal", blocks=4, rows=500, seed=8, drift_at=3, switch="none", shifts=["missing:salary,elevel:0.4"]
    )
    for index, frame in enumerate(frames(scenario)):
        recorded = {c["feature"]: c["rows_affected"] for c in changes_of(scenario, index, "missing")}
        expected = 200 if index >= 2 else 0
        for feature in ("salary", "elevel"):
            assert int(frame[feature].isna().sum()) == expected == recorded.get(feature, 0)
    assert scenario.manifest["columns"]["dtypes"]["elevel"] == "string"


def test_label_noise_flips_exactly_the_recorded_number_of_labels() -> None:
    args = dict(blocks=4, rows=1000, seed=3, drift_at=2, switch="none")
    clean = generate_scenario("sine", **args)
    noisy = generate_scenario("sine", shifts=["label_noise:0.15"], **args)
    for index, (a, b) in enumerate(zip(frames(clean), frames(noisy), strict=True)):
        flips = int((a["target"] != b["target"]).sum())
        recorded = changes_of(noisy, index, "label_noise")
        assert flips == (recorded[0]["rows_affected"] if recorded else 0) == (150 if index >= 1 else 0)
        if recorded:
            assert noisy.manifest["blocks"][index]["kinds"] == ["label"]


def test_gradual_schedule_scales_the_shift_with_the_new_concept_share() -> None:
    scenario = generate_scenario(
        "sea",
        blocks=6,
        rows=500,
        seed=1,
        drift_at=3,
        switch="gradual",
        drift_width=1500,
        shifts=["mean:feat_3:1"],
    )
    shares = [
        b["changes"][0]["new_concept_fraction"] if b["drift"] else 0.0 for b in scenario.manifest["blocks"]
    ]
    units = [changes_of(scenario, i, "mean")[0]["sd_units"] if shares[i] else 0.0 for i in range(6)]
    assert shares[:2] == [0.0, 0.0]
    assert 0 < shares[2] < shares[3] < shares[4] < shares[5] < 1
    assert units == pytest.approx(shares)


def test_injected_unknown_column_is_refused_with_the_known_columns() -> None:
    with pytest.raises(ShiftError, match="unknown column 'price'; the columns are: city, flat, x"):
        inject_scenario(TABLE, ["mean:price:1"], seed=0, rows=10)
