"""`calmops generate` and `calmops inject` end to end: files, manifest, formats, errors, live mode, the docs."""

from __future__ import annotations

import hashlib
import json
import re
import selectors
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calmops_actors import cli
from calmops_actors.blockfiles import read_blocks
from pipelines.synthetic.scenarios import generate_scenario, split_blocks

ROOT = Path(__file__).resolve().parents[2]
# The real `main`, with both commands listed even before cli.COMMANDS names them (a no-op afterwards).
RUNNER = (
    "import sys\n"
    "from calmops_actors import cli\n"
    "cli.COMMANDS = tuple(dict.fromkeys((*cli.COMMANDS, 'generate', 'inject')))\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def calmops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def main(monkeypatch):
    """Run the CLI in this process (fast); returns the exit code (read the output with capsys)."""
    monkeypatch.setattr(cli, "COMMANDS", tuple(dict.fromkeys((*cli.COMMANDS, "generate", "inject"))))

    def run(*args: str) -> int:
        return cli.main(list(args))

    return run


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_same_blocks(actual: list[tuple[str, pd.DataFrame]], expected) -> None:
    assert [b for b, _ in actual] == [b for b, _ in expected]
    for (_, a), (_, e) in zip(actual, expected, strict=True):
        pd.testing.assert_frame_equal(a, e)


def test_generate_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    result = calmops(
        "generate",
        "sea",
        "--out",
        "out",
        "--blocks",
        "5",
        "--rows",
        "200",
        "--seed",
        "7",
        "--drift-at",
        "3",
        "--shift",
        "mean:feat_1:0.5",
        "--shift",
        "missing:feat_3:0.3",
        "--no-labels-after",
        "4",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6 and lines[-1] == "wrote 5 blocks (3 drifting) and manifest.json to out"
    assert lines[2].startswith("block_0003") and "concept+covariate on feat_1, feat_2, feat_3" in lines[2]
    assert lines[4].endswith("unlabelled")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [f"block_000{i}.csv" for i in range(1, 6)] + [
        "manifest.json"
    ]
    expected = generate_scenario(
        "sea",
        blocks=5,
        rows=200,
        seed=7,
        drift_at=3,
        shifts=["mean:feat_1:0.5", "missing:feat_3:0.3"],
        labels_until=4,
    )
    assert_same_blocks(read_blocks(out), expected.frames)
    manifest = json.loads((out / "manifest.json").read_text())
    ground_truth = {
        **manifest,
        "blocks": [{k: v for k, v in b.items() if k not in ("file", "sha256")} for b in manifest["blocks"]],
    }
    del ground_truth["output"]
    assert ground_truth == json.loads(json.dumps(expected.manifest))
    assert [b["file"] for b in manifest["blocks"]] == [f"block_000{i}.csv" for i in range(1, 6)]
    for entry in manifest["blocks"]:
        assert entry["sha256"] == hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest()
    assert manifest["output"] == {"format": "csv", "layout": "per_block", "block_col": None, "complete": True}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, main, fmt: str) -> None:
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert (
            main(
                "generate",
                "stagger",
                "--out",
                str(tmp_path / name),
                "--blocks",
                "3",
                "--rows",
                "100",
                "--seed",
                seed,
                "--format",
                fmt,
                "--shift",
                "category:color:purple",
                "--shift",
                "label_noise:0.1",
            )
            == 0
        )
    a, b, c = (files(tmp_path / n) for n in "abc")
    assert a == b
    assert list(a) == list(c) and all(a[name] != c[name] for name in a)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("layout", [[], ["--block-col", "batch"]])
def test_both_formats_and_layouts_round_trip(tmp_path: Path, main, fmt: str, layout: list[str]) -> None:
    args = dict(
        blocks=4,
        rows=150,
        seed=2,
        drift_at=2,
        labels_until=3,
        shifts=["missing:elevel,salary:0.3", "category:car:car_99", "mean:age:1"],
    )
    code = main(
        "generate",
        "agrawal",
        "--out",
        str(tmp_path),
        "--blocks",
        "4",
        "--rows",
        "150",
        "--seed",
        "2",
        "--drift-at",
        "2",
        "--no-labels-after",
        "3",
        "--format",
        fmt,
        *layout,
        *[f"--shift={s}" for s in args["shifts"]],
    )
    assert code == 0
    expected = generate_scenario("agrawal", **args)
    assert_same_blocks(read_blocks(tmp_path), expected.frames)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == (["blocks." + fmt] if layout else [f"block_000{i}.{fmt}" for i in range(1, 5)]) + [
        "manifest.json"
    ]
    if layout:
        combined = (
            pd.read_parquet(tmp_path / "blocks.parquet")
            if fmt == "parquet"
            else pd.read_csv(tmp_path / "blocks.csv")
        )
        assert list(combined.columns)[0] == "batch" and list(combined.columns)[-1] == "target"
        assert combined.groupby("batch")["target"].count().tolist() == [150, 150, 150, 0]


def write_table(path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {
            "week": np.repeat(["w1", "w2", "w3", "w4"], 50),
            "price": rng.normal(20, 4, 200),
            "city": rng.choice(["oslo", "lima"], 200),
            "target": rng.integers(0, 2, 200),
        }
    )
    table.to_csv(path, index=False)
    return table


def test_inject_a_small_csv_in_a_subprocess(tmp_path: Path) -> None:
    table = write_table(tmp_path / "sales.csv")
    result = calmops(
        "inject",
        "sales.csv",
        "--out",
        "inj",
        "--rows",
        "40",
        "--drift-at",
        "3",
        "--seed",
        "5",
        "--shift",
        "mean:price:1",
        "--shift",
        "category:city:rome:0.5",
        "--shift",
        "label_noise:0.25",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    blocks = read_blocks(tmp_path / "inj")
    assert [b for b, _ in blocks] == [f"block_000{i}" for i in range(1, 6)]
    reference_sd = table["price"].iloc[:80].std()
    for index, ((_, original), (_, shifted)) in enumerate(
        zip(split_blocks(table, rows=40), blocks, strict=True)
    ):
        drifting = index >= 2
        assert np.allclose(shifted["price"] - original["price"], reference_sd if drifting else 0.0)
        assert int((shifted["city"] == "rome").sum()) == (20 if drifting else 0)
        assert int((shifted["target"] != original["target"]).sum()) == (10 if drifting else 0)
    manifest = json.loads((tmp_path / "inj" / "manifest.json").read_text())
    assert manifest["source"] == {
        "path": "sales.csv",
        "rows": 200,
        "columns": ["week", "price", "city", "target"],
    }
    assert [b["drift"] for b in manifest["blocks"]] == [False, False, True, True, True]
    assert manifest["blocks"][2]["kinds"] == ["covariate", "label"]
    assert manifest["blocks"][2]["features"] == ["city", "price", "target"]


def test_inject_by_an_existing_block_column_into_one_parquet(tmp_path: Path, main) -> None:
    table = write_table(tmp_path / "sales.csv")
    table.to_parquet(tmp_path / "sales.parquet")
    assert (
        main(
            "inject",
            str(tmp_path / "sales.parquet"),
            "--out",
            str(tmp_path / "inj"),
            "--block-col",
            "week",
            "--drift-at",
            "4",
            "--shift",
            "missing:price:0.5",
            "--single-file",
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "inj").iterdir()) == ["blocks.parquet", "manifest.json"]
    blocks = read_blocks(tmp_path / "inj")
    assert [(b, int(f["price"].isna().sum())) for b, f in blocks] == [
        ("w1", 0),
        ("w2", 0),
        ("w3", 0),
        ("w4", 25),
    ]
    assert blocks[0][1]["week"].eq("w1").all()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            None,
            ["inject", "nowhere.csv", "--out", "o", "--rows", "10"],
            "input file nowhere.csv does not exist",
        ),
        (
            "garbage.parquet",
            ["inject", "garbage.parquet", "--out", "o", "--rows", "10"],
            "cannot read garbage.parquet as parquet",
        ),
        ("table.txt", ["inject", "table.txt", "--out", "o", "--rows", "10"], "name it .csv or .parquet"),
        ("empty.csv", ["inject", "empty.csv", "--out", "o", "--rows", "10"], "empty.csv is empty"),
        (
            "sales.csv",
            ["inject", "sales.csv", "--out", "o", "--rows", "10", "--shift", "mean:cost:1"],
            "unknown column 'cost'; the columns are: city, price, week",
        ),
        ("sales.csv", ["inject", "sales.csv", "--out", "o", "--block-col", "day"], "no column 'day'"),
        (
            "sales.csv",
            [
                "inject",
                "sales.csv",
                "--out",
                "o",
                "--rows",
                "10",
                "--target",
                "y",
                "--shift",
                "label_noise:0.1",
            ],
            "no target column to add label noise to",
        ),
        (
            None,
            ["generate", "sea", "--out", "o", "--blocks", "4", "--drift-at", "9"],
            "between 1 and 4, got 9",
        ),
        (None, ["generate", "sea", "--out", "o", "--shift", "mean:feat_1"], "write mean:FEATURES:AMOUNT"),
        (
            None,
            ["generate", "sea", "--out", "o", "--live", "--single-file"],
            "--live writes one file per block",
        ),
        (None, ["generate", "sea", "--out", "o", "--block-col", "feat_1"], "already has a column 'feat_1'"),
    ],
)
def test_user_mistakes_exit_2_with_a_message(
    tmp_path, main, capsys, monkeypatch, setup, args, message
) -> None:
    monkeypatch.chdir(tmp_path)
    if setup == "sales.csv":
        write_table(tmp_path / setup)
    elif setup == "garbage.parquet":
        (tmp_path / setup).write_bytes(b"not a parquet file at all")
    elif setup:
        (tmp_path / setup).write_text("" if setup == "empty.csv" else "a,b\n1,2\n")
    assert main(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_bad_arguments_in_a_subprocess_give_exit_2_and_no_traceback(tmp_path: Path) -> None:
    bad_choice = calmops("generate", "sea", "--out", "o", "--format", "xml", cwd=tmp_path)
    assert bad_choice.returncode == 2
    assert "argument --format: invalid choice: 'xml'" in bad_choice.stderr
    unknown_column = calmops("generate", "sea", "--out", "o", "--shift", "mean:feat_9:0.5", cwd=tmp_path)
    assert unknown_column.returncode == 2
    assert unknown_column.stderr.strip() == (
        "error: --shift mean:feat_9:0.5: unknown column 'feat_9'; the columns are: feat_1, feat_2, feat_3"
    )
    for result in (bad_choice, unknown_column):
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_an_existing_output_is_kept_unless_overwrite(tmp_path: Path, main, capsys) -> None:
    assert main("generate", "sine", "--out", str(tmp_path), "--blocks", "3", "--rows", "20") == 0
    (tmp_path / "notes.txt").write_text("mine")
    first = files(tmp_path)
    assert (
        main("generate", "sine", "--out", str(tmp_path), "--blocks", "2", "--rows", "20", "--seed", "1") == 2
    )
    assert "pass --overwrite" in capsys.readouterr().err
    assert files(tmp_path) == first
    assert (
        main(
            "generate",
            "sine",
            "--out",
            str(tmp_path),
            "--blocks",
            "2",
            "--rows",
            "20",
            "--seed",
            "1",
            "--overwrite",
        )
        == 0
    )
    assert sorted(files(tmp_path)) == ["block_0001.csv", "block_0002.csv", "manifest.json", "notes.txt"]


def test_live_mode_writes_every_block_and_says_so(tmp_path: Path, main, capsys) -> None:
    assert (
        main(
            "generate",
            "sea",
            "--out",
            str(tmp_path),
            "--blocks",
            "3",
            "--rows",
            "50",
            "--live",
            "--interval",
            "0",
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["block_0001", "block_0002", "block_0003", "done:"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["output"]["complete"] is True
    assert [b["file"] for b in manifest["blocks"]] == ["block_0001.csv", "block_0002.csv", "block_0003.csv"]


def test_live_mode_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUNNER,
            "generate",
            "sea",
            "--out",
            "live",
            "--blocks",
            "5",
            "--rows",
            "50",
            "--live",
            "--interval",
            "60",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # even if our parent ignores SIGINT
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        first = ""
        while not first and time.monotonic() < deadline:
            if selector.select(timeout=1):
                first = process.stdout.readline()
        assert first.startswith("block_0001"), first
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "stopped: 1 of 5 blocks written to live" in err and "Traceback" not in err
    folder = tmp_path / "live"
    assert sorted(p.name for p in folder.iterdir()) == ["block_0001.csv", "manifest.json"]  # no temp files
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["output"]["complete"] is False
    assert [b["file"] for b in manifest["blocks"]] == ["block_0001.csv", None, None, None, None]


@pytest.mark.parametrize("command", ["generate", "inject"])
def test_help_explains_with_examples(main, capsys, command: str) -> None:
    with pytest.raises(SystemExit) as done:
        main(command, "--help")
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"calmops {command} " in text and "mean:FEATURES:SD" in text


def doc_commands() -> list[str]:
    text = (ROOT / "docs" / "generator.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("calmops ")]


def test_every_example_in_the_docs_runs(tmp_path: Path, main, monkeypatch) -> None:
    commands = doc_commands()
    assert len(commands) >= 10
    monkeypatch.chdir(tmp_path)
    for line in commands:
        assert main(*shlex.split(line)[1:]) == 0, line
    manifest = json.loads((tmp_path / "data" / "injected" / "manifest.json").read_text())
    assert [b["drift"] for b in manifest["blocks"]] == [False] * 3 + [True] * 3
