"""A restarted actor keeps everything its config gave it: the `preprocess` hook above all.

The reproduction: a pipeline with `preprocess = "hk:pre"`, the actor process SIGKILLed part way through; the
old constructor did not load the hook, so later files were stored raw and a file the hook refuses was accepted.
"""

from __future__ import annotations

import os
import signal
import time
import tomllib
from pathlib import Path

import pytest
from chaos_tools import write_scenario_files

from calmops_actors.home import Home, stream_id
from calmops_actors.pipeline_actor import PipelineActor
from calmops_actors.runtime import spawn_actor

pytestmark = pytest.mark.ray

HOOK = '''\
def pre(frame):
    """Scale one feature (so a block stored without the hook has other bytes) and refuse a poisoned file."""
    if "poison" in frame.columns:
        raise ValueError("poisoned file")
    frame = frame.copy()
    frame["feat_1"] = frame["feat_1"] * 10.0
    return frame
'''


def setup(root: Path, blocks: int = 8) -> tuple[dict, list[Path]]:
    files = write_scenario_files(root / "incoming", blocks=blocks, rows=200, seed=11)
    (root / "conf").mkdir()
    (root / "conf" / "hk.py").write_text(HOOK)
    raw = tomllib.loads('name = "hooked"\ntarget = "target"\nsource = "../incoming"\npreprocess = "hk:pre"\n'
                        '[retrain]\nstrategies = ["full"]\n')
    return raw, files


def stored_blocks(home: Path) -> dict[str, str]:
    store = Home(home).open_store()
    try:
        return {r.payload["block_id"]: r.payload["artifact"]["sha256"] for r in store.read(stream_id("hooked"))
                if r.type == "BlockArrived"}
    finally:
        store.close()


def sigkill_and_wait(ray, actor) -> None:
    old = ray.get(actor.ping.remote())["pid"]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if ray.get(actor.ping.remote(), timeout=30)["pid"] != old:
                return
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError("the actor was not restarted")


def test_a_sigkilled_actor_stores_every_block_through_its_hook_as_an_uninterrupted_run(ray_local, tmp_path):
    ray = ray_local
    raw, files = setup(tmp_path)
    conf = tmp_path / "conf"

    calm = PipelineActor(str(tmp_path / "calm-home"), "hooked", str(conf))  # the uninterrupted run
    calm.configure(raw, str(conf))
    for f in files:
        assert calm.ingest(str(f), True)["outcome"] == "accepted"

    actor = spawn_actor(tmp_path / "home", "hooked", config_dir=conf)
    ray.get(actor.configure.remote(raw, str(conf)))
    for f in files[:4]:
        assert ray.get(actor.ingest.remote(str(f), True))["outcome"] == "accepted"
    sigkill_and_wait(ray, actor)  # no `configure` after this: Ray's restart is all the new process gets
    for f in files[4:]:
        assert ray.get(actor.ingest.remote(str(f), True))["outcome"] == "accepted"
    assert stored_blocks(tmp_path / "home") == stored_blocks(tmp_path / "calm-home")

    poisoned = tmp_path / "incoming" / "poisoned.csv"
    poisoned.write_text(files[0].read_text().replace("target", "target,poison", 1).replace("\n", ",1\n")
                        .replace("target,poison,1\n", "target,poison\n", 1))
    result = ray.get(actor.ingest.remote(str(poisoned), True))
    assert result["outcome"] == "rejected" and result["reason_code"] == "preprocess_failed", result
    ray.kill(actor, no_restart=True)


def test_an_actor_that_cannot_load_its_hook_takes_no_file(ray_local, tmp_path):
    raw, files = setup(tmp_path, blocks=2)
    conf = tmp_path / "conf"
    first = PipelineActor(str(tmp_path / "home"), "hooked", str(conf))
    first.configure(raw, str(conf))
    assert first.ingest(str(files[0]), True)["outcome"] == "accepted"
    first.store.close()

    blind = PipelineActor(str(tmp_path / "home"), "hooked")  # started without its config folder
    result = blind.ingest(str(files[1]), True)
    assert result["outcome"] == "unreadable" and "preprocess hook 'hk:pre' is not loaded" in result["message"]
    assert set(stored_blocks(tmp_path / "home")) == {files[0].stem}  # nothing recorded, nothing stored raw
