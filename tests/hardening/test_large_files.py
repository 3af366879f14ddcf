"""A file of more rows than `[intake] max_rows` is one `too_many_rows` rejection, refused before its rows are
decoded: from the Parquet footer's count, or for CSV from its line breaks (counted exactly, a megabyte at a
time, only when they are over the limit). The test pipeline allows 1,000 rows so the files stay small; the
memory test measures the peak RSS growth of one `ingest` as `benchmarks/large_files.py` does (VmHWM reset
through /proc/self/clear_refs, as in `test_hostile_inputs`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_hostile_inputs import HEADER, parquet, rows  # the hostile corpus's helpers

from benchmarks.large_files import measure
from calmops_actors.home import stream_id

MAX_ROWS = 1_000
CONFIG = f"""\
name = "large"
target = "target"

[training]
initial_blocks = 1000

[intake]
max_file_mb = 512
max_rows = {MAX_ROWS}
"""


@pytest.fixture
def actor(tmp_path: Path):
    from calmops_actors.pipeline_actor import PipelineActor

    a = PipelineActor(str(tmp_path / "home"), "large")
    a.configure(tomllib.loads(CONFIG), str(tmp_path))
    yield a
    a.store.close()


def zeros(n: int) -> pa.Table:
    return pa.table({"feat_1": np.zeros(n), "feat_2": np.zeros(n), "feat_3": np.zeros(n), "target": np.zeros(n)})


@pytest.mark.parametrize("name, data", [
    ("long.csv", lambda: (HEADER + rows(MAX_ROWS + 1)).encode()),
    ("long.parquet", lambda: parquet(zeros(MAX_ROWS + 1))),
], ids=["csv", "parquet"])
def test_a_file_over_max_rows_is_one_rejection_naming_its_rows_the_limit_and_the_key(
        actor, tmp_path: Path, name: str, data) -> None:
    path = tmp_path / name
    path.write_bytes(data())
    result = actor.ingest(str(path))
    assert (result["outcome"], result["reason_code"]) == ("rejected", "too_many_rows"), result
    assert result["message"] == (f"{name}: 1,001 rows is over the limit of 1,000 rows ([intake] max_rows); split "
                                 "the file into smaller files, or raise max_rows if the machine has the memory "
                                 "(docs/config.md gives the need)")
    assert [r.type for r in actor.store.read(stream_id("large"))][-1] == "BlockRejected"
    assert actor.state.counters.blocks == 0


def test_a_file_of_exactly_max_rows_is_accepted(actor, tmp_path: Path) -> None:
    path = tmp_path / "full.csv"
    path.write_text(HEADER + rows(MAX_ROWS))
    assert actor.ingest(str(path))["outcome"] == "accepted"


def test_line_breaks_inside_quoted_cells_are_not_counted_as_rows(actor, tmp_path: Path) -> None:
    """More line breaks than `max_rows`, but fewer rows: the exact count decides."""
    path = tmp_path / "quoted.csv"
    path.write_text("note,feat_1,target\n" + "".join(f'"two\nlines",{i},{i % 2}\n' for i in range(MAX_ROWS)))
    assert actor.ingest(str(path))["outcome"] == "accepted"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_far_over_max_rows_is_refused_for_little_more_than_its_bytes(tmp_path: Path, fmt: str) -> None:
    """200,000 rows x 21 columns decode to 32 MB and took 160-210 MB to take in; refused, they cost the bytes the
    actor reads and a row count. Peak RSS growth of one `ingest` in a fresh subprocess (the benchmark's own)."""
    case = measure(tmp_path, fmt, 200_000, max_rows=MAX_ROWS)
    growth = case["peak"] - case["before"]
    print(f"\n{fmt}: peak RSS growth {growth / 2**20:.0f} MB, file {case['file_bytes'] / 2**20:.0f} MB")
    assert case["reason_code"] == "too_many_rows", case
    assert growth < case["file_bytes"] + 32 * 2**20, growth / 2**20
