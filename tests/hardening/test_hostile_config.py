"""A hostile or broken config is a config error naming the file, never a crash of `run` or `serve`.

The reproduction: 8 KB of 2,000 nested inline tables made `run` print a RecursionError traceback, made `serve`
die at start-up, and, dropped into a running `serve`'s config folder, stopped every pipeline with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from calmops_actors.cli import main
from calmops_actors.supervisor import Supervisor
from pipelines.config.pipeline import ConfigError, parse_toml

NESTED = "name = \"deep\"\ntarget = \"y\"\nx = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n"


def test_deeply_nested_tables_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_toml(NESTED, "deep.toml")
    with pytest.raises(ConfigError, match="nested more than 8 deep"):
        parse_toml("x = " + "{a = " * 12 + "1" + "}" * 12, "deep.toml")


def test_an_oversized_or_binary_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must be under 1024 KB"):
        parse_toml(b"# " + b"x" * (2 * 1024 * 1024), "big.toml")
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_toml(b"name = \"\xff\"", "bin.toml")


def test_run_with_a_nested_config_says_what_is_wrong_without_a_traceback(tmp_path: Path, capsys) -> None:
    (tmp_path / "deep.toml").write_text(NESTED)
    assert main(["run", str(tmp_path / "deep.toml"), "--home", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err
    assert "deep.toml: tables or arrays are nested too deeply" in err and "Traceback" not in err


@pytest.mark.ray
def test_a_nested_config_next_to_a_good_one_does_not_stop_serve(ray_local, tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "good.toml").write_text('name = "good"\ntarget = "y"\nsource = "in"\n')
    supervisor = Supervisor(tmp_path / "home", configs, watch=False)
    try:
        assert supervisor.scan().started == ["good"]
        (configs / "deep.toml").write_text(NESTED)  # dropped in while serve runs
        report = supervisor.scan()
        assert "nested too deeply" in report.errors[str(configs / "deep.toml")]
        assert list(supervisor.pipelines) == ["good"] and report.stopped == []
    finally:
        for actor in supervisor.actors().values():
            ray_local.kill(actor, no_restart=True)
        supervisor.close()
