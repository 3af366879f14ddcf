"""Load a config's `preprocess = "module:function"` hook from the config's own folder.

The hook is the user's own code and runs with the user's rights (docs/config.md says so). The module
name is checked and resolved inside the config folder, so a name can never reach a file elsewhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipelines.config.pipeline import ConfigError

MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def load_preprocess(spec: str, config_dir: Path, origin: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Import `module:function` from `config_dir` (module `a.b` is `a/b.py`)."""
    module_name, _, func_name = spec.partition(":")
    if not MODULE.fullmatch(module_name) or not func_name.isidentifier():
        raise ConfigError(origin, "preprocess", f"must look like 'module:function', got {spec!r}")
    root = config_dir.resolve()
    path = (root / Path(*module_name.split("."))).with_suffix(".py").resolve()
    if root not in path.parents:
        raise ConfigError(origin, "preprocess", f"module {module_name!r} must live in {root}")
    if not path.is_file():
        raise ConfigError(origin, "preprocess", f"module file {path} not found (looked next to the config)")
    unique = "calmops_hook_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    loader_spec = importlib.util.spec_from_file_location(unique, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(origin, "preprocess", f"cannot load {path}")
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:  # the user's module failed to import: the config cannot be used
        raise ConfigError(origin, "preprocess", f"importing {path.name} raised {type(err).__name__}: {err}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(origin, "preprocess", f"{path.name} has no function {func_name!r}")
    func.__name__ = getattr(func, "__name__", spec)
    return func
