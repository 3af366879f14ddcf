"""A pipeline's declaration in TOML, validated on load with messages that name the file, key and remedy.

Every key is documented in docs/config.md. The validated config is recorded in `PipelineRegistered` as
plain data (`config_to_dict`) and rebuilt on replay with `config_from_dict`, so the log alone says what a
pipeline was told to do.

>>> cfg = config_from_text('name = "churn"\\nsource = "incoming"\\ntarget = "y"\\n', "churn.toml")
>>> (cfg.name, cfg.task, cfg.model.class_path)
('churn', 'classification', 'sklearn.linear_model.LogisticRegression')
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipelines.config.alerts import AlertSink, check_names
from pipelines.config.builder import SettingsError, build_settings, convert, settings_to_dict
from pipelines.config.drift import DriftSettings
from pipelines.config.retrain import RetrainSettings

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class ConfigError(ValueError):
    """A pipeline config cannot be used; the message names the file and the key."""

    def __init__(self, origin: str, key: str | None, message: str) -> None:
        where = f"{origin}: {key}: " if key else f"{origin}: "
        super().__init__(where + message)
        self.origin, self.key, self.reason = origin, key, message

    def __reduce__(self):  # picklable, so it crosses process boundaries (a Ray actor's `configure`) intact
        return type(self), (self.origin, self.key, self.reason)


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """`[model]`: any scikit-learn compatible estimator, by import path, with its constructor params."""

    class_path: str = field(default="sklearn.linear_model.LogisticRegression", metadata={"key": "class"})
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", self.class_path):
            raise ValueError(f"class must be an import path like 'sklearn.linear_model.LogisticRegression', "
                             f"got {self.class_path!r}")


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """`[training]`: how the first model is trained and how randomness is seeded."""

    initial_blocks: int = 1
    holdout_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.initial_blocks < 1:
            raise ValueError(f"initial_blocks must be at least 1, got {self.initial_blocks}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be between 0 and 1 (exclusive), got {self.holdout_fraction}")


@dataclass(frozen=True, kw_only=True)
class CircuitBreakerSettings:
    """`[circuit_breaker]`: pause retraining after repeated failed rounds, with exponential backoff."""

    max_consecutive_failures: int = 3
    backoff_seconds: float = 60.0
    max_backoff_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be at least 1")
        if self.backoff_seconds <= 0 or self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("need 0 < backoff_seconds <= max_backoff_seconds")


@dataclass(frozen=True, kw_only=True)
class IntakeSettings:
    """`[intake]`: limits that make a file a rejection instead of a risk."""

    max_file_mb: float = 512.0
    max_invalid_share: float = 0.2  # NaN or infinity in a feature column above this share rejects the file
    max_columns: int = 2000
    max_rows: int = 2_000_000  # a file's rows are decoded at once: this bounds the memory one file takes

    def __post_init__(self) -> None:
        if self.max_file_mb <= 0:
            raise ValueError("max_file_mb must be positive")
        if not 0.0 <= self.max_invalid_share <= 1.0:
            raise ValueError("max_invalid_share must be between 0 and 1")
        if self.max_columns < 1:
            raise ValueError("max_columns must be at least 1")
        if self.max_rows < 1:
            raise ValueError("max_rows must be at least 1")


@dataclass(frozen=True, kw_only=True)
class LabelSettings:
    """`[labels]`: labels that arrive after their block (docs/estimation.md). `key` names the column that
    identifies a row in both the block and its labels file; without it, late labels cannot be joined and a
    labels file is refused. `folder` is where labels files arrive, inside `source`."""

    key: str | None = None
    folder: str = "labels"

    def __post_init__(self) -> None:
        if self.key is not None and (not isinstance(self.key, str) or not self.key.strip()):
            raise ValueError(f"key is {self.key!r}; allowed: the name of a column that identifies a row")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", self.folder):
            raise ValueError(f"folder is {self.folder!r}; allowed: one folder name inside `source` (letters, "
                             "digits, '_', '-', '.'), no path")


@dataclass(frozen=True, kw_only=True)
class LifecycleSettings:
    """`[lifecycle]`: when `serve` stops an idle pipeline's actor (it starts again on the next file). None: the
    serve's default (`--idle-seconds`, 300 s)."""

    idle_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.idle_seconds is not None and (isinstance(self.idle_seconds, bool)
                                              or not isinstance(self.idle_seconds, int | float)
                                              or not 1 <= self.idle_seconds <= 30 * 86400):
            raise ValueError(f"idle_seconds is {self.idle_seconds!r}; allowed: seconds from 1 to 2592000 (30 days)")


@dataclass(frozen=True, kw_only=True)
class TriggerSettings:
    """`[trigger]`: how arriving files are noticed: file-system events, or polling (network mounts)."""

    mode: Literal["events", "polling"] = "events"
    interval_seconds: float = 5.0
    settle_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0 or self.settle_seconds < 0:
            raise ValueError("interval_seconds must be positive and settle_seconds not negative")


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """The whole declaration of one pipeline (top-level keys plus one settings object per section)."""

    name: str
    target: str
    source: str = "incoming"
    formats: tuple[Literal["csv", "parquet"], ...] = ("csv", "parquet")
    task: Literal["classification", "regression"] = "classification"
    block_col: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None
    preprocess: str | None = None
    model: ModelSettings = field(default_factory=ModelSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)
    circuit_breaker: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    trigger: TriggerSettings = field(default_factory=TriggerSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    alerts: tuple[AlertSink, ...] = ()  # where news goes; not part of the recorded config (config_to_dict)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise SettingsError("name", f"{self.name!r} is not a valid pipeline name; use 1-64 characters "
                                        "a-z, 0-9, '_' and '-', starting with a letter or digit")
        if not self.formats:
            raise SettingsError("formats", "must list at least one of 'csv', 'parquet'")
        if self.preprocess is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.preprocess):
            raise SettingsError("preprocess", f"must look like 'module:function', got {self.preprocess!r}")
        if self.features is not None:
            if self.target in self.features:
                raise SettingsError("features", f"the target {self.target!r} cannot also be a feature")
            if len(set(self.features)) != len(self.features):
                raise SettingsError("features", "lists a column twice")
        if self.categorical and self.features is not None:
            unknown = sorted(set(self.categorical) - set(self.features))
            if unknown:
                raise SettingsError("categorical", f"{unknown} are not in features")
        if self.block_col is not None and self.block_col == self.target:
            raise SettingsError("block_col", "cannot be the target column")
        key = self.labels.key
        if key is not None and key in (self.target, self.block_col):
            raise SettingsError("labels.key", f"{key!r} is the {'target' if key == self.target else 'block'} "
                                              "column; allowed: a column that identifies a row")
        if key is not None and self.features is not None and key in self.features:
            raise SettingsError("labels.key", f"{key!r} is one of the features; allowed: a row id that is not "
                                              "a feature (a model should not learn from row ids)")
        try:
            check_names(self.alerts)
        except ValueError as err:
            raise SettingsError("alerts", str(err)) from None


def config_from_dict(data: dict[str, Any], origin: str) -> PipelineConfig:
    """Validate a parsed TOML document; raise ConfigError naming `origin` and the key."""
    missing = [k for k in ("name", "target") if k not in data]
    if missing:
        raise ConfigError(origin, missing[0], "is required")
    try:
        return build_settings(PipelineConfig, data, "")
    except SettingsError as err:
        raise ConfigError(origin, err.key, err.reason) from None


# A pipeline config is a few kilobytes and three tables deep; these bounds only stop hostile or broken files
# (a parser's recursion, a gigabyte of TOML) from becoming anything but a ConfigError.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 8


def parse_toml(data: bytes | str, origin: str) -> dict[str, Any]:
    """The TOML document in `data` as a dict; any problem with it is a ConfigError naming `origin`.

    >>> parse_toml("a = {b = {c = {d = {e = {f = {g = {h = {i = 1}}}}}}}}", "deep.toml")
    Traceback (most recent call last):
    ...
    pipelines.config.pipeline.ConfigError: deep.toml: tables are nested more than 8 deep; a pipeline config needs at most 8
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(origin, None, f"is {len(data) / 1e6:.1f} MB; a pipeline config must be under "
                                        f"{MAX_CONFIG_BYTES // 1024} KB")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        parsed = tomllib.loads(text)
    except UnicodeDecodeError as err:
        raise ConfigError(origin, None, f"is not UTF-8 text: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(origin, None, f"not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(origin, None, f"tables or arrays are nested too deeply to read; a pipeline config "
                                        f"needs at most {MAX_CONFIG_DEPTH}") from None
    if nesting(parsed) > MAX_CONFIG_DEPTH:
        raise ConfigError(origin, None, f"tables are nested more than {MAX_CONFIG_DEPTH} deep; a pipeline config "
                                        f"needs at most {MAX_CONFIG_DEPTH}")
    return parsed


def nesting(value: Any, limit: int = MAX_CONFIG_DEPTH + 1) -> int:
    """How deep tables and arrays nest in `value` (a scalar is 0), counted no further than `limit`."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((nesting(v, limit - 1) for v in children), default=0)


def config_from_text(text: str, origin: str) -> PipelineConfig:
    return config_from_dict(parse_toml(text, origin), origin)


def load_config(path: Path) -> PipelineConfig:
    """Read and validate a pipeline config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), None, "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), None, f"cannot be read: {err}") from None
    return config_from_text(text, str(path))


def config_to_dict(config: PipelineConfig) -> dict[str, Any]:
    """Plain data for the log: every key with its effective value (defaults included), but `alerts` and
    `lifecycle`.

    `[[alerts]]` says where news goes, not what the pipeline decides: changing a webhook records no
    `ConfigChanged` and never re-opens a rejected file, and a sink's URL, which may be a secret, never reaches
    the log. What was delivered where is recorded by the dispatcher (`AlertDelivered`, `AlertFailed`).
    """
    data = settings_to_dict(config)
    del data["alerts"]
    del data["lifecycle"]  # when `serve` stops an idle actor decides nothing about data or models
    return data


def alerts_from_dict(data: dict[str, Any], origin: str) -> tuple[AlertSink, ...]:
    """The sinks of a config folder's default `alerts.toml` (only `[[alerts]]` tables); ConfigError otherwise.

    >>> [s.sink for s in alerts_from_dict({"alerts": [{"sink": "file", "path": "a.jsonl"}]}, "alerts.toml")]
    ['file']
    """
    unknown = sorted(set(data) - {"alerts"})
    if unknown:
        raise ConfigError(origin, unknown[0], "unknown key; this file holds only [[alerts]] tables")
    try:
        sinks = convert(tuple[AlertSink, ...], data.get("alerts", []), "alerts")
        check_names(sinks)
    except SettingsError as err:
        raise ConfigError(origin, err.key, err.reason) from None
    except ValueError as err:
        raise ConfigError(origin, "alerts", str(err)) from None
    return sinks


def config_sha256(config: PipelineConfig) -> str:
    return hashlib.sha256(canonical(config_to_dict(config)).encode()).hexdigest()


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def resolve_source(config: PipelineConfig, config_dir: Path) -> Path:
    """The folder of arriving files: `source` is relative to the config file's folder."""
    return (config_dir / config.source).resolve()


def diff_configs(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Changed keys between two config dicts, as (dotted key, old, new), sorted by key.

    >>> diff_configs({"a": 1, "t": {"x": 1}}, {"a": 1, "t": {"x": 2}, "b": 3})
    [('b', None, 3), ('t.x', 1, 2)]
    """
    changes: list[tuple[str, Any, Any]] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        dotted = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            changes.extend(diff_configs(a, b, dotted + "."))
        elif a != b:
            changes.append((dotted, a, b))
    return changes
