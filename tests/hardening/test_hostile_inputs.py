"""A hostile corpus, generated here: every file becomes one `BlockRejected` with a reason code and nothing else
changes; every bad config is a config error naming its key; memory stays bounded on the big ones.

The files go through the real `PipelineActor.ingest` (a plain instance in this process: a pipeline waiting for
1000 labelled blocks never starts a round, so no Ray is needed). The memory test ingests the big files in a
subprocess and measures each one's peak RSS growth (Linux: VmHWM after resetting it through
/proc/self/clear_refs).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calmops_actors.home import Home, stream_id
from pipelines.config.pipeline import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HEADER = "feat_1,feat_2,feat_3,target\n"
LIMIT_MB = 64  # [intake] max_file_mb of the test pipeline

CONFIG = f"""\
name = "hostile"
target = "target"
source = "incoming"

[training]
initial_blocks = 1000

[intake]
max_file_mb = {LIMIT_MB}
"""


def rows(n: int = 20, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return "".join(f"{a:.3f},{b:.3f},{c:.3f},{int(a + b > 8)}\n" for a, b, c in rng.uniform(0, 10, (n, 3)))


def parquet(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def dictionary_bomb() -> bytes:
    """2 million rows that all point at one 2,000-character dictionary entry: 445 KB on disk, 4 GB decoded."""
    n = 2_000_000
    zeros = np.zeros(n)
    text = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array(["x" * 2000]))
    return parquet(pa.table({"feat_1": zeros, "feat_2": text, "feat_3": zeros, "target": zeros}),
                   compression="zstd")


def page_bomb() -> bytes:
    """One 70 MB string that zstd squeezes into a few kilobytes: a huge page (dictionary page) to decompress."""
    return parquet(pa.table({"feat_1": [1.0], "feat_2": ["y" * 70_000_000], "feat_3": [1.0], "target": [0]}),
                   compression="zstd")


def row_bomb() -> bytes:
    """5 million rows of one repeated value: run-length encoded to almost nothing, 160 MB once loaded."""
    zeros = np.zeros(5_000_000)
    return parquet(pa.table({"feat_1": zeros, "feat_2": zeros, "feat_3": zeros, "target": zeros}),
                   compression="zstd")


def long_line() -> bytes:
    """One 50 MB line (a single cell of 50 million digits)."""
    return (HEADER + "1,2,").encode() + b"9" * 50_000_000 + b",0\n"


def gzip_bomb() -> bytes:
    """500 MB of zeros in under 500 KB of gzip (50 members of 10 MB each: gzip decompresses them one after another)."""
    return gzip.compress(b"0" * 10_000_000, 6) * 50


BIG = ("bomb.csv", "dictionary_bomb.parquet", "page_bomb.parquet", "row_bomb.parquet", "long_line.csv",
       "list_bomb.parquet")


def list_bomb(values: int = 60_000_000) -> bytes:
    """One row whose cell is a list of 60 M doubles: about 1.5 KB on disk, 480 MB once decoded (the footer's
    sizes say a few hundred bytes)."""
    cell = pa.ListArray.from_arrays(pa.array([0, values], pa.int32()), pa.array(np.zeros(values)))
    return parquet(pa.table({"feat_1": [1.0], "feat_2": cell, "feat_3": [1.0], "target": [0]}))


@functools.cache
def corpus() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, the reason code it must be rejected with)."""
    rng = np.random.default_rng(7)
    wide_header = ",".join(f"c{i}" for i in range(10_000)) + "\n"
    good = parquet(pa.table({"feat_1": [1.0, 2.0], "feat_2": [1.0, 2.0], "feat_3": [1.0, 2.0], "target": [0, 1]}))
    duplicate_parquet = pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0]), pa.array([3.0]), pa.array([0])],
                                             names=["feat_1", "feat_1", "feat_3", "target"])
    half_inf = "".join(f"{'inf' if i % 2 else '1.5'},2,3,0\n" for i in range(20))
    return {
        "garbage.csv": (b"\x00" + rng.bytes(4096), "not_text"),
        "latin1.csv": ((HEADER + "1,2,3,0\n").encode() + "caf\u00e9,2,3,0\n".encode("latin-1"), "bad_encoding"),
        "garbage.parquet": (b"PAR1" + rng.bytes(4096) + b"PAR1", "unreadable_file"),
        "truncated.parquet": (good[: len(good) // 2], "unreadable_file"),
        "csv_in_disguise.pq": ((HEADER + rows(5)).encode(), "unreadable_file"),
        "bomb.csv": (gzip_bomb(), "not_text"),
        "bomb.csv.gz": (gzip.compress((HEADER + rows(5)).encode()), "unsupported_format"),
        "program.exe": (b"MZ\x90\x00" + rng.bytes(512), "unsupported_format"),
        "dictionary_bomb.parquet": (dictionary_bomb(), "file_too_large"),
        "page_bomb.parquet": (page_bomb(), "file_too_large"),
        "row_bomb.parquet": (row_bomb(), "file_too_large"),
        "long_line.csv": (long_line(), "unreadable_file"),
        "list_bomb.parquet": (list_bomb(), "nested_column"),
        "wide.csv": ((wide_header + ",".join("1" for _ in range(10_000)) + "\n").encode(), "too_many_columns"),
        "homoglyph_headers.csv": ("f\u0435at_1,feat_2,feat_3,target\n1,2,3,0\n".encode(), "missing_columns"),
        "zero_width_header.csv": ("feat_1\u200b,feat_2,feat_3,target\n1,2,3,0\n".encode(), "missing_columns"),
        "unicode_only.csv": ("\u7279\u5f81,\u76ee\u6807\n1,0\n".encode(), "missing_columns"),
        "duplicate_headers.csv": (b"feat_1,feat_1,feat_2,feat_3,target\n1,1,2,3,0\n", "duplicate_columns"),
        "duplicate_after_spaces.csv": (b"feat_1, feat_1 ,feat_2,feat_3,target\n1,1,2,3,0\n", "duplicate_columns"),
        "duplicate_columns.parquet": (parquet(duplicate_parquet), "duplicate_columns"),
        "mixed_types.csv": ((HEADER + "1,2,3,0\n1,abc,3,1\n2,3,4,0\n").encode(), "non_numeric_values"),
        "formula_cmd.csv": ((HEADER + "=cmd|' /C calc'!A0,2,3,0\n1,2,3,1\n").encode(), "non_numeric_values"),
        "formula_hyperlink.csv": ((HEADER + '1,"=HYPERLINK(""http://x"")",3,0\n').encode(), "non_numeric_values"),
        "formula_at_plus.csv": ((HEADER + "@SUM(1+1),2,3,0\n+1+cmd|x,2,3,1\n").encode(), "non_numeric_values"),
        "all_infinite.csv": ((HEADER + "inf,2,3,0\n-inf,2,3,1\ninf,4,5,0\n").encode(), "all_missing_feature"),
        "half_infinite.csv": ((HEADER + half_inf).encode(), "too_many_invalid"),
        "empty_feature.csv": ((HEADER + "1,,3,0\n2,,4,1\n").encode(), "all_missing_feature"),
        "header_only.csv": (HEADER.encode(), "no_rows"),
        "zero_bytes.csv": (b"", "empty_file"),
        "semicolons.csv": (b"feat_1;feat_2;feat_3;target\n1;2;3;0\n", "wrong_delimiter"),
        "missing_labels.csv": ((HEADER + "1,2,3,0\n1,2,3,\n").encode(), "missing_labels"),
        "good.csv": ((HEADER + rows(5, seed=99)).encode(), "block_id_conflict"),  # another file's block id
    }


@pytest.fixture
def actor(tmp_path: Path):
    from calmops_actors.pipeline_actor import PipelineActor

    (tmp_path / "incoming").mkdir()
    (tmp_path / "hostile.toml").write_text(CONFIG)
    good = tmp_path / "first" / "good.csv"
    good.parent.mkdir()
    good.write_text(HEADER + rows(50))
    a = PipelineActor(str(tmp_path / "home"), "hostile")
    a.configure(tomllib.loads(CONFIG), str(tmp_path))
    assert a.ingest(str(good))["outcome"] == "accepted"  # fixes the schema: feat_1..3 numeric, target
    yield a
    a.store.close()


def artifact_files(home: Path) -> set[str]:
    return {p.name for p in (home / "artifacts").rglob("*") if p.is_file()}


def test_every_hostile_file_is_one_rejection_with_its_reason_and_nothing_else(actor, tmp_path: Path) -> None:
    files = corpus()
    assert len(files) >= 25
    home = tmp_path / "home"
    incoming = tmp_path / "incoming"
    for name, (data, _) in files.items():
        (incoming / name).write_bytes(data)
    before_state, before_artifacts = actor.state, artifact_files(home)
    seen, messages = {}, {}
    for name, (_, code) in files.items():
        version = actor.state.version
        result = actor.ingest(str(incoming / name))
        seen[name] = result.get("reason_code")
        messages[name] = result.get("message", "")
        assert result["outcome"] == "rejected", (name, result)
        assert result["message"].startswith(f"{name}: ") or code == "block_id_conflict", result
        recorded = actor.store.read(stream_id("hostile"), after_version=version)
        assert [(r.type, r.payload["reason_code"], r.payload["file"]) for r in recorded] == \
            [("BlockRejected", code, name)], (name, result)
    assert seen == {name: code for name, (_, code) in files.items()}
    assert "a line is longer than 1 MB" in messages["long_line.csv"]
    assert '"=cmd|\' /C calc\'!A0"' in messages["formula_cmd.csv"]  # the message shows the cell, quoted
    assert "decodes to 4064.0 MB" in messages["dictionary_bomb.parquet"]
    # nothing else changed: the blocks, schema, models and stored artifacts are those of before
    after = actor.state
    assert (after.blocks, after.schema, after.models, after.champion) == \
        (before_state.blocks, before_state.schema, before_state.models, before_state.champion)
    assert after.counters.rejected_files == len(files) and after.counters.blocks == 1
    # a block_id_conflict is found by `decide`, after the block's rows were stored: the actor deletes them again
    assert artifact_files(home) == before_artifacts
    # and each is recorded once: the same bytes again are a duplicate, not a second rejection
    assert actor.ingest(str(incoming / "garbage.csv"))["outcome"] == "duplicate"
    assert actor.store.verify().ok


def test_a_file_over_the_size_limit_is_refused_without_being_read(actor, tmp_path: Path) -> None:
    import hashlib

    sparse = tmp_path / "incoming" / "huge.csv"
    with open(sparse, "wb") as handle:  # a sparse file: 65 MiB long, no blocks written
        handle.truncate((LIMIT_MB + 1) * 1024 * 1024)
    result = actor.ingest(str(sparse))
    assert (result["outcome"], result["reason_code"]) == ("rejected", "file_too_large")
    assert f"over the limit of {LIMIT_MB:.1f} MB ([intake] max_file_mb)" in result["message"]
    st = sparse.stat()  # identified by name, size and mtime: its bytes were never read, let alone hashed
    (recorded,) = [r for r in actor.store.read(stream_id("hostile")) if r.type == "BlockRejected"]
    assert recorded.payload["sha256"] == hashlib.sha256(f"huge.csv:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()


def test_block_ids_from_a_block_column_never_name_a_path(tmp_path: Path) -> None:
    from calmops_actors.pipeline_actor import PipelineActor

    raw = {"name": "blocky", "target": "target", "block_col": "blk", "training": {"initial_blocks": 1000}}
    a = PipelineActor(str(tmp_path / "home"), "blocky")
    a.configure(raw, str(tmp_path))
    try:
        for i, value in enumerate(["../../etc/passwd", "a/b", "..\\\\windows", "", "x" * 200]):
            f = tmp_path / f"f{i}.csv"
            f.write_text(f"blk,feat_1,target\n{value},1,0\nok,2,1\n")
            result = a.ingest(str(f))
            assert (result["outcome"], result["reason_code"]) == ("rejected", "bad_block_id"), (value, result)
        assert a.state.counters.blocks == 0 and not artifact_files(tmp_path / "home")
        assert not list(tmp_path.rglob("passwd"))
    finally:
        a.store.close()


def test_the_big_files_are_rejected_with_bounded_memory(tmp_path: Path) -> None:
    """Peak RSS growth of ingesting each big file, measured alone in a fresh subprocess."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (tmp_path / "hostile.toml").write_text(CONFIG)
    (tmp_path / "good.csv").write_text(HEADER + rows(50))
    for name in BIG:
        (incoming / name).write_bytes(corpus()[name][0])
    script = f"""
import json, re, sys, tomllib
from calmops_actors.pipeline_actor import PipelineActor
def status(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
a = PipelineActor({str(tmp_path / "home")!r}, "hostile")
a.configure(tomllib.loads(open({str(tmp_path / "hostile.toml")!r}).read()), {str(tmp_path)!r})
a.ingest({str(tmp_path / "good.csv")!r})
out = {{}}
for name in {sorted(BIG)!r}:
    rss = status("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
    result = a.ingest({str(incoming)!r} + "/" + name)
    out[name] = [result.get("reason_code"), status("VmHWM") - rss]
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    print("\npeak RSS growth (MB):", {k: round(v[1] / 2**20) for k, v in measured.items()})
    sizes = {name: (incoming / name).stat().st_size for name in BIG}
    for name, (code, growth) in measured.items():
        assert code == corpus()[name][1], (name, code)
        # at most the file read once, its text decoded once and 100 MB of working space; the bombs would
        # need 0.1 to 4 GB if they were decoded
        assert growth < 3 * sizes[name] + 100 * 2**20, (name, growth / 2**20)


# -- configs ------------------------------------------------------------------------------------------------

BAD_CONFIGS = [
    ('name = "x"\ntarget = "y"\ntaks = "regression"\n', "taks: unknown key (did you mean 'task'?)"),
    ('name = "x"\ntarget = "y"\n[retrain]\nstratgies = ["full"]\n', "retrain.stratgies: unknown key"),
    ('name = "x"\ntarget = "y"\n[model]\nclas = "a.B"\n', "model.clas: unknown key"),
    ('name = "x"\ntarget = "y"\n[intake]\nmax_file_mb = -1\n', "intake"),
    ('name = "a/b"\ntarget = "y"\n', "name: 'a/b' is not a valid pipeline name"),
    ('name = "../evil"\ntarget = "y"\n', "name: '../evil' is not a valid pipeline name"),
    ('name = "Evil Name"\ntarget = "y"\n', "name: 'Evil Name' is not a valid pipeline name"),
    ('name = "x"\ntarget = "y"\nformats = ["exe"]\n', "formats"),
    ('name = "x"\ntarget = "y"\npreprocess = "../hook:f"\n', "preprocess"),
    ('name = "x"\ntarget = "y"\n[model]\nclass = "os.system; rm -rf /"\n', "model: class must be an import path"),
]


@pytest.mark.parametrize("text, words", BAD_CONFIGS, ids=[w.split(":")[0] for _, w in BAD_CONFIGS])
def test_a_bad_config_is_an_error_naming_the_key(text: str, words: str) -> None:
    from pipelines.config.pipeline import config_from_text

    with pytest.raises(ConfigError) as caught:
        config_from_text(text, "bad.toml")
    assert str(caught.value).startswith("bad.toml: ") and words in str(caught.value)


MODEL_CLASSES = [
    ("nosuchpackage.Model", "cannot be imported"),
    ("sklearn.linear_model.NoSuchModel", "has no attribute 'NoSuchModel'"),
    ("collections.OrderedDict", "not a scikit-learn compatible estimator"),
    ("os.path", "is not a class"),
]


@pytest.mark.parametrize("class_path, words", MODEL_CLASSES, ids=[c for c, _ in MODEL_CLASSES])
def test_a_model_class_that_cannot_train_is_refused_when_the_pipeline_is_configured(
        tmp_path: Path, class_path: str, words: str) -> None:
    from calmops_actors.pipeline_actor import PipelineActor

    raw = {"name": "modelcheck", "target": "y", "model": {"class": class_path}}
    a = PipelineActor(str(tmp_path / "home"), "modelcheck")
    try:
        with pytest.raises(ConfigError) as caught:
            a.configure(raw, str(tmp_path))
        assert "model.class" in str(caught.value) and words in str(caught.value)
        assert a.store.head() == 0  # nothing recorded
    finally:
        a.store.close()


def test_run_reports_an_unusable_model_class_as_a_config_error(ray_local, tmp_path: Path, capsys) -> None:
    from calmops_actors import cli
    from calmops_actors.runtime import NAMESPACE, actor_name

    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "b1.csv").write_text(HEADER + rows(10))
    (tmp_path / "m.toml").write_text('name = "runmodelcheck"\ntarget = "target"\n[model]\n'
                                     'class = "collections.OrderedDict"\n')
    try:
        assert cli.main(["run", str(tmp_path / "m.toml"), "--home", str(tmp_path / "home")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "model.class" in err and "Traceback" not in err
    finally:
        with contextlib.suppress(ValueError):  # the named actor `run` left behind on the shared Ray
            ray_local.kill(ray_local.get_actor(actor_name("runmodelcheck"), namespace=NAMESPACE), no_restart=True)
    store = Home(tmp_path / "home").open_store()
    assert store.head() == 0
    store.close()


def test_the_supervisor_reports_configs_its_actors_refuse_and_runs_the_others(ray_local, tmp_path: Path) -> None:
    """Errors raised inside the actor's `configure` (an unusable model class, a missing preprocess module) come
    back through Ray as the config error they are; the supervisor reports them and starts the good pipeline."""
    from calmops_actors.supervisor import Supervisor

    (tmp_path / "good.toml").write_text('name = "supgood"\ntarget = "target"\n')
    (tmp_path / "model.toml").write_text('name = "supmodel"\ntarget = "target"\n[model]\n'
                                         'class = "sklearn.linear_model.NoSuchModel"\n')
    (tmp_path / "hook.toml").write_text('name = "suphook"\ntarget = "target"\npreprocess = "missing_module:clean"\n')
    supervisor = Supervisor(tmp_path / "home", tmp_path, watch=False)
    try:
        report = supervisor.scan()
        assert report.started == ["supgood"]
        errors = {Path(k).name: v for k, v in report.errors.items()}
        assert set(errors) == {"model.toml", "hook.toml"}
        assert "model.class 'sklearn.linear_model.NoSuchModel' cannot be imported" in errors["model.toml"]
        assert "preprocess: module file" in errors["hook.toml"] and "not found" in errors["hook.toml"]
    finally:
        supervisor.close()
        for name in ("supgood", "supmodel", "suphook"):
            from calmops_actors.runtime import NAMESPACE, actor_name

            with contextlib.suppress(ValueError):
                ray_local.kill(ray_local.get_actor(actor_name(name), namespace=NAMESPACE), no_restart=True)
