"""NannyML's CBPE as the peer of `benchmarks/estimation.py`: its own venv, and the worker run on our files.

Why: NannyML pins plotly < 6, lightgbm < 4.6 and kaleido 0.2 (STACK-NOTES), which the project venv must not
take, so, like Evidently (`benchmarks/peer_evidently.py`), it runs in `benchmarks/.venv-nannyml/`, created on
first use with `REQUIREMENTS` (about 2 GB and a few minutes; reused afterwards). statsmodels is named by hand:
NannyML 0.13.1 imports it without declaring it. The worker, `benchmarks/peer/nannyml_worker.py`, reads the
parquet files `estimation.py` writes (the model's probabilities, predictions and labels) and writes JSON.
A venv that cannot be created (no network) is reported, never raised: the benchmark still gives our figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

NANNYML_VERSION = "0.13.1"
# statsmodels: imported by nannyml 0.13.1 but missing from its requirements; pyarrow: the worker reads parquet.
REQUIREMENTS = (f"nannyml=={NANNYML_VERSION}", "statsmodels==0.14.5", "pandas==2.3.3", "pyarrow==26.0.1")
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-nannyml"
STAMP_NAME = "calmops-requirements.txt"
WORKER = HERE / "peer" / "nannyml_worker.py"


def venv_python(venv: Path = VENV) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_ready(venv: Path = VENV, requirements: tuple[str, ...] = REQUIREMENTS) -> bool:
    """True when the venv was completed by `ensure_venv` with exactly these requirements."""
    stamp = venv / STAMP_NAME
    return venv_python(venv).exists() and stamp.exists() and \
        stamp.read_text(encoding="utf-8").split() == list(requirements)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def ensure_venv(install: bool, venv: Path | None = None) -> tuple[Path | None, str]:
    """The peer venv's python, creating the venv when allowed; (None, why) when it is not available.

    Never raises for a failed creation (no network, no disk): the reason is returned for the report.
    """
    venv = venv or VENV
    if venv_ready(venv):
        return venv_python(venv), "reused"
    if not install:
        return None, f"{_shown(venv)} is missing or incomplete (run without --no-install to create it)"
    try:
        venv.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, f"cannot create {_shown(venv)}: {exc}"
    log = venv / "install.log"
    print(f"peer_nannyml: creating {_shown(venv)} (one time, a few minutes): "
          f"pip install {' '.join(REQUIREMENTS)}; log in {_shown(log)}", flush=True)
    started = time.perf_counter()
    steps = {"python -m venv": [sys.executable, "-m", "venv", str(venv)],
             "pip install": [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check",
                             "--timeout", "60", "--retries", "2", *REQUIREMENTS]}
    with open(log, "w", encoding="utf-8") as out:
        for name, step in steps.items():
            try:
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=1800, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, f"creating the peer venv failed at `{name}`: {exc}"
            if done.returncode != 0:
                out.flush()
                tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
                return None, (f"creating the peer venv failed at `{name}` (exit {done.returncode}; no network to "
                              f"PyPI?): {' / '.join(tail)}")
    (venv / STAMP_NAME).write_text("\n".join(REQUIREMENTS) + "\n", encoding="utf-8")
    return venv_python(venv), f"created in {time.perf_counter() - started:.0f} s"


def run_worker(python: Path, manifest: dict, folder: Path) -> dict:
    """The worker in the peer venv on the files `manifest` names; its JSON (RuntimeError when it fails)."""
    path, out, errors = folder / "nannyml-manifest.json", folder / "nannyml.json", folder / "nannyml.err"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", NML_DISABLE_USAGE_LOGGING="1")
    env.pop("PYTHONPATH", None)
    with open(errors, "w", encoding="utf-8") as err:
        done = subprocess.run([str(python), str(WORKER), str(path), str(out)], env=env, stderr=err, check=False)
    if done.returncode != 0:
        tail = errors.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"the NannyML worker failed (exit {done.returncode}): {' / '.join(tail)}")
    return json.loads(out.read_text(encoding="utf-8"))
