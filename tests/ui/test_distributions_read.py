"""`ui.distributions`: a heatmap cell's values come from the artifact store verified and bounded, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

import ui.distributions as distributions
from ui.queries import Queries

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def home(projected_copy) -> Path:
    return projected_copy("ui-distributions")


@pytest.fixture(scope="module")
def q(home) -> Queries:
    return Queries(home / "projections.sqlite")


def cell_of(q: Queries, block: str = "block_0005", feature: str = "feat_3") -> dict:
    cell = q.drift_cell("sea", block, feature)
    assert cell is not None and cell["reference_blocks"]
    return cell


def test_the_values_are_the_recorded_frames_column(q, home):
    from calmops_actors.artifacts import ArtifactStore, ref_of

    cell = cell_of(q)
    dist = distributions.load_distributions(home / "artifacts", q, "sea", cell)
    frame = ArtifactStore(home / "artifacts").get_frame(
        ref_of(cell["artifact_sha256"], cell["artifact_kind"], cell["artifact_size"]))
    assert dist.block.tolist() == frame["feat_3"].dropna().tolist() and dist.notes == []
    assert len(dist.reference) > 0 and dist.reference_blocks == tuple(cell["reference_blocks"])


def test_a_changed_file_is_not_read(q, home, tmp_path):
    import shutil

    cell = cell_of(q)
    store = tmp_path / "artifacts"
    shutil.copytree(home / "artifacts", store)
    path = next(store.rglob(f"{cell['artifact_sha256']}.parquet"))
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    dist = distributions.load_distributions(store, q, "sea", cell)
    assert dist.block.empty and any("was changed after it was written" in n for n in dist.notes)


def test_the_read_is_bounded(q, home, monkeypatch):
    cell = {**cell_of(q), "reference_blocks": ["block_0002", "block_0003", "block_0004"]}
    monkeypatch.setattr(distributions, "MAX_REFERENCE_BLOCKS", 2)
    monkeypatch.setattr(distributions, "MAX_VALUES", 100)
    dist = distributions.load_distributions(home / "artifacts", q, "sea", cell)
    assert dist.reference_blocks == ("block_0003", "block_0004")
    assert len(dist.block) <= 100 and len(dist.reference) <= 100
    assert "reference: the latest 2 of its 3 blocks" in dist.notes
    monkeypatch.setattr(distributions, "MAX_FRAME_BYTES", 10)
    big = distributions.load_distributions(home / "artifacts", q, "sea", cell)
    assert big.block.empty and any("not read (over" in n for n in big.notes)
