"""Alert settings as `serve` and `alerts test` read them: a config folder's default `alerts.toml`, and the
machine checks (variables set, programs installed) that turn a sink that cannot work into a ConfigError."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from pipelines.alerts.routes import Route, routes
from pipelines.config.alerts import AlertSink, MachineError, check_machine
from pipelines.config.pipeline import ConfigError, PipelineConfig, alerts_from_dict, parse_toml

__all__ = ["FOLDER_FILE", "check_sinks", "folder_sinks", "routes_for", "webhook_sink"]

FOLDER_FILE = "alerts.toml"  # in a config folder: the sinks of every pipeline there without [[alerts]] of its own


def check_sinks(sinks: tuple[AlertSink, ...], origin: str, env: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError (naming `origin` and the key) for a sink this machine cannot use."""
    try:
        check_machine(sinks, os.environ if env is None else env, shutil.which)
    except MachineError as err:
        raise ConfigError(origin, err.key, err.reason) from None


def folder_sinks(config_dir: Path, env: Mapping[str, str] | None = None) -> tuple[AlertSink, ...]:
    """The sinks of `<config_dir>/alerts.toml` (none when there is no such file); ConfigError when it is wrong."""
    path = config_dir / FOLDER_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ()
    except OSError as err:
        raise ConfigError(str(path), None, f"cannot be read: {err.strerror or err}") from None
    sinks = alerts_from_dict(parse_toml(data, str(path)), str(path))
    check_sinks(sinks, str(path), env)
    return sinks


def webhook_sink(url: str) -> AlertSink:
    """`serve --alert-webhook URL`: one webhook for every pipeline of the folder, default settings."""
    try:
        return AlertSink(sink="webhook", url=url, name="cli-webhook")
    except ValueError as err:
        raise ConfigError("--alert-webhook", None, str(err)) from None


def routes_for(configs: Mapping[str, tuple[PipelineConfig, Path]], folder: tuple[AlertSink, ...],
               config_dir: Path) -> list[Route]:
    """The routes for the running pipelines (`configs`: name -> (config, its file)) and the folder's sinks."""
    own = {name: config.alerts for name, (config, _) in configs.items()}
    base_dirs = {name: str(path.parent) for name, (_, path) in configs.items()}
    return routes(own, folder, base_dirs, str(config_dir))
