"""Security: no artifact is loaded before its hash is checked, no user-supplied name becomes a path unchecked,
and the UI and Ray dashboard stay on 127.0.0.1 unless told otherwise.

The UI's own behaviour in a real browser (it binds 127.0.0.1 by default; with a login, every page needs it and
a wrong password is refused; operator actions only behind it) is tested in tests/ui/test_browser.py
(`test_binds_localhost_by_default`, `test_login_is_required_and_a_wrong_password_is_refused`,
`test_without_login_the_actions_are_never_called`); this file does not repeat it.

The pickle artifact below is legitimate (the store keeps models that skops cannot represent as pickle); its
bytes are then swapped for a malicious pickle whose loading would create a file. Every path that loads a
model must refuse it on the sha256 check, before a single byte is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from calmops_actors import cli
from calmops_actors.artifact_refs import artifact_for
from calmops_actors.artifacts import (
    ArtifactError,
    ArtifactRef,
    ArtifactStore,
    ArtifactTampered,
    Blob,
    decode_model,
)
from calmops_actors.home import stream_id
from calmops_actors.pipeline_actor import PipelineActor
from pipelines.core.decide import RecordRoundOutcome, RequestRetrain, StrategyOutcome

HEADER = "feat_1,feat_2,feat_3,target\n"
RAW = {"name": "secure", "target": "target", "training": {"initial_blocks": 1000}}


def block(path: Path, seed: int = 0, n: int = 200) -> Path:
    rng = np.random.default_rng(seed)
    path.write_text(HEADER + "".join(f"{a:.4f},{b:.4f},{c:.4f},{int(a + b > 8)}\n"
                                     for a, b, c in rng.uniform(0, 10, (n, 3))))
    return path


class Planted:
    """Unpickling this creates the file at `path`: what a malicious artifact would do (harmlessly here)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture
def pickled_home(tmp_path: Path):
    """A home whose champion v1 is stored as a pickle artifact, recorded through the real actor."""
    from pipelines.retraining.evaluation import evaluate
    from pipelines.retraining.models import ModelSpec, make_model

    src = block(tmp_path / "b1.csv")
    actor = PipelineActor(str(tmp_path / "home"), "secure")
    actor.configure(RAW, str(tmp_path))
    assert actor.ingest(str(src))["outcome"] == "accepted"
    schema = actor.state.schema
    frame = actor.frame("b1")
    model = make_model(ModelSpec("sklearn.linear_model.LogisticRegression"), schema.features, schema.categorical)
    model.fit(frame[list(schema.features)], frame[schema.target])
    ref = actor.artifacts.put_blob(Blob.of(pickle.dumps(model), "model-pickle"))
    now = datetime.now(UTC).isoformat()
    actor.execute(RequestRetrain(round_id="r1", block_id="b1", strategies=("full",), training_blocks=("b1",),
                                 holdout_blocks=("b1",), holdout="b1[160:200]", seed=0, trigger="initial",
                                 new_blocks=("b1",), occurred_at=now))
    metrics = evaluate(model, frame, schema.features, schema.target, "classification")
    actor.execute(RecordRoundOutcome(
        round_id="r1", champion_metrics={}, code_version="test", occurred_at=now,
        outcomes=(StrategyOutcome(strategy="full", artifact=artifact_for(ref), metrics=metrics,
                                  training_blocks=("b1",), rows=200),)))
    assert actor.state.champion == "v1" and ref.kind == "model-pickle"
    actor.store.close()
    return tmp_path / "home", src, actor.artifacts.path(ref), ref


def tamper(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(Planted(marker)))
    assert not marker.exists()


def test_a_tampered_pickle_model_is_refused_everywhere_before_it_is_unpickled(pickled_home, tmp_path, capsys):
    home, src, path, ref = pickled_home
    # untampered, it loads and predicts
    assert cli.main(["predict", "secure", str(src), "--home", str(home), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 201
    capsys.readouterr()
    marker = tmp_path / "pwned"
    tamper(path, marker)

    # the predict command
    assert cli.main(["predict", "secure", str(src), "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: artifact ") and "was changed after it was written" in err
    assert "It was not loaded" in err and "Traceback" not in err
    # the actor (what monitoring and rounds use), and the blob sent to Ray tasks
    actor = PipelineActor(str(home), "secure")
    try:
        with pytest.raises(ArtifactTampered, match="It was not loaded"):
            actor.model("v1")
        with pytest.raises(ArtifactTampered):
            actor.artifacts.read_blob(ref)
    finally:
        actor.store.close()
    # a blob whose bytes do not hash to its recorded sha256, as a task would receive it
    with pytest.raises(ArtifactTampered, match="not loaded"):
        decode_model(Blob(kind="model-pickle", sha256=ref.sha256, data=path.read_bytes()))
    # verify names it; audit reports it as an error instead of loading it
    assert cli.main(["verify", "--home", str(home)]) == 1
    assert ref.artifact_id in capsys.readouterr().out
    assert not marker.exists(), "a tampered pickle was deserialised"
    # control: the same bytes under their own hash *would* run: the check is what stops them
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_an_artifact_reference_from_the_log_never_becomes_an_arbitrary_path(pickled_home, tmp_path, capsys):
    home, src, path, ref = pickled_home
    store = ArtifactStore(home / "artifacts")
    for bad in (ArtifactRef(artifact_id="../../../etc/passwd", sha256="../../../etc/passwd", kind="model-pickle",
                            size=1),
                ArtifactRef(artifact_id=f"{ref.sha256}.pkl/../../x.pkl", sha256=ref.sha256, kind="model-pickle",
                            size=1),
                ArtifactRef(artifact_id=ref.artifact_id, sha256=ref.sha256, kind="../model", size=1)):
        with pytest.raises(ArtifactError):
            store.path(bad)
    # a log edited to point the champion at another file: predict refuses the edited record (its hash no longer
    # matches), loads nothing
    outside = tmp_path / "outside.pkl"
    marker = tmp_path / "pwned"
    outside.write_bytes(pickle.dumps(Planted(marker)))
    with sqlite3.connect(home / "log.sqlite") as conn:
        (position, payload), = conn.execute(
            "SELECT position, payload FROM events WHERE type = 'CandidateTrained'").fetchall()
        data = json.loads(payload)
        data["artifact"]["sha256"] = "../" * 6 + str(outside.with_suffix(""))
        conn.execute("UPDATE events SET payload = ? WHERE position = ?", (json.dumps(data), position))
    assert cli.main(["predict", "secure", str(src), "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "position 5: its hash does not match its content" in err and "Traceback" not in err
    assert not marker.exists()


@pytest.mark.parametrize("command", [
    ["replay", "../../etc/passwd"], ["predict", "../secure", "FILE"], ["explain", "secure", "--block", "../b1"],
    ["explain", "secure/../secure", "--block", "b1"], ["rollback", "..", "--to", "v1", "--reason", "x"],
    ["export", "../../secure", "--format", "jsonl", "--out", "OUT"],
])
def test_names_on_the_command_line_are_looked_up_never_used_as_paths(pickled_home, tmp_path, capsys, command):
    home, src, _, _ = pickled_home
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = [str(src) if a == "FILE" else str(tmp_path / "out.jsonl") if a == "OUT" else a for a in command]
    assert cli.main([*args, "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "secure" in err  # the message lists the known pipeline (or the known blocks)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "projections" not in p.name) == \
        [p for p in before if "projections" not in p.name]


def test_file_names_become_block_ids_and_never_paths(tmp_path: Path) -> None:
    """Odd file names (shell syntax, dots, Unicode) name blocks in the log; artifacts stay content-addressed."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    names = ["$(touch pwned).csv", "a;rm -rf x.csv", "..csv", "-rf.csv", "名前.csv", "con.csv"]
    actor = PipelineActor(str(tmp_path / "home"), "secure")
    try:
        actor.configure(RAW, str(tmp_path))
        for i, name in enumerate(names):
            assert actor.ingest(str(block(incoming / name, seed=i)))["outcome"] == "accepted", name
        assert sorted(actor.state.blocks) == sorted(Path(n).stem for n in names)
    finally:
        actor.store.close()
    stored = [p for p in (tmp_path / "home" / "artifacts").rglob("*") if p.is_file()]
    assert len(stored) == len(names)
    assert all(len(p.stem) == 64 and p.parent.name == p.stem[:2] for p in stored)
    assert not list(tmp_path.rglob("pwned")) and {p.name for p in tmp_path.iterdir()} == {"incoming", "home"}


def test_a_symlink_out_of_the_source_folder_is_never_read(tmp_path: Path) -> None:
    from calmops_actors.sources import is_candidate, source_files

    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    block(secret, seed=42)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    block(incoming / "b1.csv")
    (incoming / "escape.csv").symlink_to(secret)
    (incoming / "dotdot.csv").symlink_to(Path("..") / "outside" / "secret.csv")
    (incoming / "inside.csv").symlink_to(incoming / "b1.csv")  # control: a link that stays inside
    assert [p.name for p in source_files(incoming)] == ["b1.csv", "inside.csv"]
    assert not is_candidate(incoming / "escape.csv", incoming)
    # `run` over the folder ingests only what source_files lists (the watcher applies is_candidate too)
    (tmp_path / "s.toml").write_text('name = "secure"\ntarget = "target"\n[training]\ninitial_blocks = 1000\n')
    actor = PipelineActor(str(tmp_path / "home"), "secure")
    try:
        actor.configure(tomllib.loads((tmp_path / "s.toml").read_text()), str(tmp_path))
        for f in source_files(incoming):
            actor.ingest(str(f))
        recorded = actor.store.read(stream_id("secure"))
    finally:
        actor.store.close()
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert secret_sha not in {r.payload.get("sha256") for r in recorded}
    assert {r.payload.get("file") for r in recorded if r.type in ("BlockArrived", "BlockRejected")} <= \
        {"b1.csv", "inside.csv"}


def test_a_preprocess_hook_is_only_loaded_from_the_config_folder(tmp_path: Path) -> None:
    from calmops_actors.hooks import load_preprocess
    from pipelines.config.pipeline import ConfigError

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "hook.py").write_text("def clean(frame):\n    return frame\n")
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "linked.py").symlink_to(outside / "hook.py")
    for spec, words in (("linked:clean", "must live in"), ("..elsewhere.hook:clean", "must look like"),
                        ("elsewhere/hook:clean", "must look like"), ("missing:clean", "not found")):
        with pytest.raises(ConfigError, match=words) as caught:
            load_preprocess(spec, configs, "c.toml")
        assert "preprocess" in str(caught.value)
    (configs / "own.py").write_text("def clean(frame):\n    return frame\n")
    assert load_preprocess("own:clean", configs, "c.toml").__name__ == "clean"


def test_the_ui_defaults_to_localhost(capsys) -> None:
    """The defaults `serve` passes to the UI (the Ray dashboard's address is checked on a running `serve` in
    test_chaos_serve.py, the UI's in a browser in tests/ui/test_browser.py)."""
    import inspect

    from ui.server import launch

    args = cli.build_parser().parse_args(["serve"])
    assert args.ui_host == "127.0.0.1" and args.ui_auth is None
    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"
    # exposing the UI without a login is allowed but warned about; a malformed login is refused
    assert cli.main(["serve", "--ui-host", "0.0.0.0", "--ui-auth", "nopassword", "--home", os.devnull]) == 2
    assert "--ui-auth must look like USER:PASSWORD" in capsys.readouterr().err


LOCAL_RAY_PROBE = """
import json, urllib.error, urllib.request
from pathlib import Path
from calmops_actors.runtime import start_ray
url = start_ray(num_cpus=1, dashboard=True)["dashboard_url"]
def status(path, token=None):
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        return urllib.request.urlopen(req, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code
token = (Path.home() / ".ray" / "auth_token").read_text().strip()
print(json.dumps({"url": url, "page": status("/"), "api": status("/api/jobs/"),
                  "api_with_token": status("/api/jobs/", token), "wrong_token": status("/api/jobs/", "x" * 32)}))
"""


@pytest.mark.slow
def test_the_local_ray_that_run_and_serve_start_requires_its_token(tmp_path: Path) -> None:
    """Ray's services listen beyond loopback, so the local Ray keeps token authentication on: its dashboard's
    API refuses a request without the token (the page itself loads, and asks for the token)."""
    import subprocess
    import sys
    import tempfile

    ray_tmp = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # Unix socket paths must stay short
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(HOME=str(tmp_path), RAY_TMPDIR=str(ray_tmp), RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    try:
        done = subprocess.run([sys.executable, "-c", LOCAL_RAY_PROBE], env=env, capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
    finally:
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["url"].startswith("http://127.0.0.1:"), seen
    assert seen["page"] == 200 and seen["api"] == 401 and seen["wrong_token"] == 403, seen
    assert seen["api_with_token"] == 200, seen


def test_predictions_written_as_csv_cannot_run_as_spreadsheet_formulas() -> None:
    """Class labels are the user's data: a label such as `=cmd|...` must reach `predict`'s CSV inert."""
    import pandas as pd

    from calmops_actors.commands.predict import spreadsheet_safe

    out = spreadsheet_safe(pd.DataFrame({"model_version": ["v2"] * 4,
                                         "prediction": ["=cmd|' /C calc'!A0", "+1", "@SUM(A1)", "ok"],
                                         "=HYPERLINK(1)": [0.1, 0.2, 0.3, 0.4],
                                         "residual": [-1.0, 2.0, -3.0, 0.0]}))
    assert out["prediction"].tolist() == ["'=cmd|' /C calc'!A0", "'+1", "'@SUM(A1)", "ok"]
    assert list(out.columns) == ["model_version", "prediction", "'=HYPERLINK(1)", "residual"]
    assert out["residual"].tolist() == [-1.0, 2.0, -3.0, 0.0]  # numbers are not text: left alone
