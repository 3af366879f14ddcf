"""Config validation: every error names the file and the key, says what is wrong and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config.pipeline import (
    ConfigError,
    config_from_dict,
    config_from_text,
    config_sha256,
    config_to_dict,
    load_config,
)

MINIMAL = 'name = "churn"\ntarget = "churned"\n'


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_text(text, "churn.toml")
    return str(info.value)


def test_a_minimal_config_gets_documented_defaults() -> None:
    cfg = config_from_text(MINIMAL, "churn.toml")
    assert cfg.source == "incoming" and cfg.formats == ("csv", "parquet") and cfg.task == "classification"
    assert cfg.training.initial_blocks == 1 and cfg.circuit_breaker.max_consecutive_failures == 3
    assert cfg.model.class_path == "sklearn.linear_model.LogisticRegression"


def test_a_full_config_round_trips_through_the_log_form() -> None:
    text = MINIMAL + """
source = "data/in"
formats = ["csv"]
task = "regression"
block_col = "week"
features = ["a", "b", "c"]
categorical = ["c"]
preprocess = "hooks:clean"
[model]
class = "sklearn.ensemble.HistGradientBoostingRegressor"
params = { max_iter = 50 }
[training]
initial_blocks = 2
seed = 7
[circuit_breaker]
max_consecutive_failures = 2
"""
    cfg = config_from_text(text, "churn.toml")
    assert cfg.features == ("a", "b", "c") and cfg.model.params == {"max_iter": 50}
    again = config_from_dict(config_to_dict(cfg), "<log>")
    assert again == cfg and config_sha256(again) == config_sha256(cfg)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('name = "churn"\n', ["churn.toml: target: is required"]),
        ('target = "y"\n', ["churn.toml: name: is required"]),
        ('name = "Churn/../x"\ntarget = "y"\n', ["name:", "not a valid pipeline name", "a-z, 0-9"]),
        (MINIMAL + 'taks = "regression"\n', ["churn.toml: taks: unknown key (did you mean 'task'?)"]),
        (MINIMAL + 'task = "regresion"\n', ["task: 'regresion' is not allowed (did you mean 'regression'?)",
                                            "'classification', 'regression'"]),
        (MINIMAL + 'formats = ["csv", "xlsx"]\n', ["formats[1]: 'xlsx' is not allowed", "'csv', 'parquet'"]),
        (MINIMAL + 'formats = "csv"\n', ["formats: must be a list, got a string ('csv')"]),
        (MINIMAL + "formats = []\n", ["formats: must list at least one"]),
        (MINIMAL + 'features = ["a", "churned"]\n', ["features: the target 'churned' cannot also be a feature"]),
        (MINIMAL + 'features = ["a", "a"]\n', ["features: lists a column twice"]),
        (MINIMAL + 'features = ["a"]\ncategorical = ["b"]\n', ["categorical: ['b'] are not in features"]),
        (MINIMAL + 'block_col = "churned"\n', ["block_col: cannot be the target column"]),
        (MINIMAL + 'preprocess = "hooks.clean"\n', ["preprocess: must look like 'module:function'"]),
        (MINIMAL + '[model]\nclass = "LogisticRegression"\n', ["model:", "import path like"]),
        (MINIMAL + '[model]\nklass = "a.B"\n', ["model.klass: unknown key (did you mean 'class'?)"]),
        (MINIMAL + "[training]\ninitial_blocks = 0\n", ["training:", "initial_blocks must be at least 1"]),
        (MINIMAL + '[training]\nseed = "7"\n', ["training.seed: must be a whole number, got a string ('7')"]),
        (MINIMAL + "[training]\nholdout_fraction = 1.5\n", ["holdout_fraction must be between 0 and 1"]),
        (MINIMAL + "[circuit_breaker]\nbackoff_seconds = -1\n", ["circuit_breaker:", "backoff_seconds"]),
        (MINIMAL + '[trigger]\nmode = "poll"\n', ["trigger.mode: 'poll' is not allowed (did you mean 'polling'?)"]),
        (MINIMAL + "[intake]\nmax_invalid_share = 2\n", ["intake:", "max_invalid_share must be between 0 and 1"]),
        (MINIMAL + "[intake]\nmax_rows = 0\n", ["intake:", "max_rows must be at least 1"]),
        (MINIMAL + "[intake]\nmax_rows = 1.5e6\n", ["intake.max_rows: must be a whole number"]),
        (MINIMAL + "[drift]\nalpah = 0.1\n", ["drift.alpah: unknown key (did you mean 'alpha'?)"]),
        (MINIMAL + '[retrain]\nstrategies = ["ful"]\n', ["retrain:", "unknown strategy 'ful'"]),
        (MINIMAL + "model = 3\n", ["model: must be a table, got an integer (3)"]),
        ("name = \n", ["churn.toml: not valid TOML"]),
    ],
)
def test_each_error_names_file_key_and_remedy(text: str, fragments: list[str]) -> None:
    message = error(text)
    assert message.startswith("churn.toml: ")
    for fragment in fragments:
        assert fragment in message


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe name")
    with pytest.raises(ConfigError, match="bad.toml: cannot be read"):
        load_config(bad)


def test_the_sha_changes_with_any_setting() -> None:
    a = config_from_text(MINIMAL, "a.toml")
    b = config_from_text(MINIMAL + "[training]\nseed = 1\n", "b.toml")
    assert config_sha256(a) != config_sha256(b)
