"""The operating console in a real browser (issue #25): honest drift colours and a cell's distributions, guarded
rollback, the age of a score with unlabelled blocks, time travel that stays in its pipeline, a rounds table
without repeats, version labels that do not overlap.

The scenario log is extended by appending events (as the actor records them): a second rollback at the same
block (two labels at one block), unlabelled blocks around one labelled block, and a second pipeline whose event
is the log's last. Screenshots are saved under the test's tmp folder (`--basetemp` to keep them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import PASSWORD, USER, field, first_cell, free_port, open_tab

pytestmark = [pytest.mark.browser, pytest.mark.ray]

AT = "2030-01-01T00:00:0{}+00:00"


def append(home: Path, stream: str, events: list) -> None:
    from calmops_actors.home import Home

    store = Home(home).open_store()
    try:
        store.append(stream, events, expected_version=store.stream_version(stream))
    finally:
        store.close()


def extend_scenario(home: Path) -> None:
    """Rollback v1 -> v4 at block_0008 (the second change there), blocks 9-13 of which only 11 is labelled and
    scored, and a second pipeline registered last."""
    from calmops_actors.home import stream_id
    from calmops_actors.projector import update_projections
    from pipelines.core.events import (
        Artifact,
        BlockArrived,
        ModelRolledBack,
        PerformanceMeasured,
        PipelineRegistered,
    )
    from ui.queries import Queries

    frame = Queries(home / "projections.sqlite").block_artifacts("sea", ["block_0008"]).iloc[0]
    artifact = Artifact(sha256=frame["artifact_sha256"], kind=frame["artifact_kind"],
                        size=int(frame["artifact_size"]), format="parquet")
    events: list = [ModelRolledBack(from_version="v1", to_version="v4", reason="test: v4 again",
                                    occurred_at=AT.format(0))]
    for n in range(9, 14):
        block = f"block_{n:04d}"
        events.append(BlockArrived(block_id=block, file=f"{block}.csv", sha256=f"{n:x}" * 64, rows=600,
                                   labelled=n == 11, artifact=artifact, occurred_at=AT.format(1)))
        if n == 11:
            events.append(PerformanceMeasured(block_id=block, model_version="v4", metrics={"accuracy": 0.9},
                                              occurred_at=AT.format(2)))
    append(home, stream_id("sea"), events)
    append(home, stream_id("tide"), [PipelineRegistered(name="tide", config_sha256="0" * 64,
                                                         config={"task": "classification"},
                                                         occurred_at=AT.format(3))])
    assert update_projections(home) == len(events) + 1


class Rollbacks:
    """Stands in for serve's actions and records the rollback in the log, as the actor would."""

    def __init__(self, home: Path) -> None:
        self.home, self.calls = home, []

    def rollback(self, pipeline: str, version: str, reason: str) -> dict:
        from calmops_actors.home import stream_id
        from calmops_actors.projector import update_projections
        from pipelines.core.events import ModelRolledBack
        from ui.queries import Queries

        self.calls.append(("rollback", pipeline, version, reason))
        old = Queries(self.home / "projections.sqlite").pipeline(pipeline)["champion"]
        append(self.home, stream_id(pipeline), [ModelRolledBack(from_version=old, to_version=version, reason=reason,
                                                                 occurred_at=AT.format(5))])
        update_projections(self.home)
        return {"ok": True, "recorded": ["ModelRolledBack"], "champion": version}

    def resume(self, pipeline: str, reason: str) -> dict:
        self.calls.append(("resume", pipeline, reason))
        return {"ok": True, "recorded": []}


@pytest.fixture(scope="module")
def home(projected_copy) -> Path:
    home = projected_copy("ui-console")
    extend_scenario(home)
    return home


@pytest.fixture(scope="module")
def queries(home):
    from ui.queries import Queries

    return Queries(home / "projections.sqlite")


@pytest.fixture(scope="module")
def server(browser, home):
    from ui.server import launch

    handle = launch(home, port=free_port(), block=False)
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def operator(browser, projected_copy):
    """A login server over an unextended copy, whose rollbacks are recorded for real."""
    from ui.server import launch

    home = projected_copy("ui-operator")
    actions = Rollbacks(home)
    handle = launch(home, port=free_port(), auth=(USER, PASSWORD), actions=actions, block=False)
    yield handle, actions, home
    handle.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


def pipeline_page(page, url: str) -> None:
    page.goto(url)
    open_tab(page, "Pipeline")
    page.locator("#drift-heatmap .js-plotly-plot").wait_for()
    page.locator("#performance-chart .js-plotly-plot").wait_for()


def plot_data(page, chart: str) -> list[dict]:
    return page.locator(f"{chart} .js-plotly-plot").evaluate(
        "gd => { const plain = v => ArrayBuffer.isView(v) ? Array.from(v) : Array.isArray(v) ? v.map(plain) : v;"
        " return gd._fullData.map(t => ({name: t.name, type: t.type, x: plain(t.x), y: plain(t.y), z: plain(t.z),"
        " zmin: t.zmin, zmax: t.zmax, colorscale: t.colorscale, text: plain(t.text)})); }")


def test_the_heatmap_colours_the_effect_against_its_gate_on_one_fixed_scale(server, page, queries, shots):
    pipeline_page(page, server)
    (heat,) = [t for t in plot_data(page, "#drift-heatmap") if t["type"] == "heatmap"]
    assert (heat["zmin"], heat["zmax"]) == (0, 4)  # the same scale on every pipeline: 0 to 4x the gate
    assert heat["colorscale"][1][1] == "#c9d1d9" and heat["colorscale"][2][0] == 0.25  # grey below the gate
    cells = queries.drift_matrix("sea", last_blocks=50)
    ratio = dict(zip(zip(cells["feature"], cells["block_id"], strict=True), cells["effect"] / cells["min_effect"],
                     strict=True))
    for row, feature in enumerate(heat["y"]):
        for col, block in enumerate(heat["x"]):
            if (feature, block) in ratio:
                assert heat["z"][row][col] == pytest.approx(min(ratio[(feature, block)], 4.0))
    below = [r for r in ratio.values() if r < 1]
    assert below, "the scenario has cells under the gate: they must show grey"
    legend = page.locator("#drift-heatmap svg text").evaluate_all("els => els.map(e => e.textContent)")
    assert "gate" in legend and "4x+" in legend
    page.locator("#drift-heatmap").screenshot(path=shots / "heatmap.png")


def test_a_click_on_a_cell_shows_the_reference_and_block_distributions_with_the_gate(server, page, queries, shots):
    pipeline_page(page, server)
    cells = queries.drift_matrix("sea", last_blocks=50)
    cell = cells[cells["drifted"] == 1].sort_values("effect").iloc[-1]
    point = page.locator("#drift-heatmap .js-plotly-plot").evaluate(
        """(gd, [block, feature]) => {
             const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
             return [box.left + xa._offset + xa.d2p(block), box.top + ya._offset + ya.d2p(feature)];
           }""", [cell["block_id"], cell["feature"]])
    page.mouse.move(*point)
    page.mouse.click(*point)
    note = page.locator("#dist-note")
    note.get_by_text("checked against its recorded sha256", exact=False).wait_for()  # then the chart is drawn
    page.locator("#distribution-chart .js-plotly-plot .legendtext").first.wait_for()
    names = [t["name"] for t in plot_data(page, "#distribution-chart")]
    full = queries.drift_cell("sea", cell["block_id"], cell["feature"])
    assert f"block {cell['block_id']}" in names
    n_ref = len(full["reference_blocks"])
    assert f"reference ({n_ref} block{'s' * (n_ref != 1)})" in names
    assert f"gate: a mean shift of {full['min_effect']:g} sd" in names
    assert page.locator("#dist-block textarea, #dist-block input").first.input_value() == cell["block_id"]
    assert "600 values of the block" in note.inner_text()
    page.locator("#dist-block").scroll_into_view_if_needed()
    page.screenshot(path=shots / "distributions.png", full_page=True)


def test_the_card_says_how_old_the_score_is_and_that_later_blocks_are_unlabelled(server, page, queries, shots):
    pipeline_page(page, server)
    card = page.locator("#pipeline-card")
    assert field(card, "champion").startswith("v4")
    assert field(card, "last_metric") == "0.9000"  # v4's score on block_0011, not a previous champion's
    assert field(card, "score_age") == ("on block_0011, 2 blocks ago; 2 later blocks are unlabelled "
                                        "(block_0012 to block_0013)")
    overview_score = queries.score_age("sea")
    assert (overview_score["blocks_since"], overview_score["unlabelled_since"]) == (2, 2)
    # the chart keeps a place for every block: the unlabelled ones are gaps, not closer neighbours
    traces = plot_data(page, "#performance-chart")
    (line,) = [t for t in traces if (t["name"] or "").startswith("champion ")]
    axis = dict(zip(line["x"], line["y"], strict=True))
    gaps = [b for b, v in axis.items() if v is None or v != v]  # None or NaN: Plotly breaks the line there
    scored = set(queries.performance("sea")["block_id"])
    assert gaps == [b for b in queries.blocks("sea")["block_id"][::-1] if b not in scored]
    assert {"block_0009", "block_0010", "block_0012", "block_0013"} <= set(gaps)
    assert axis["block_0011"] == pytest.approx(0.9) and axis["block_0008"] == pytest.approx(0.98333, abs=1e-4)
    (unlabelled,) = [t for t in traces if t["name"] == "unlabelled: no score"]
    assert list(unlabelled["x"]) == ["block_0009", "block_0010", "block_0012", "block_0013"]
    page.locator("#performance-chart").screenshot(path=shots / "performance_gaps.png")


def test_version_labels_at_one_block_do_not_overlap(server, page, queries, shots):
    pipeline_page(page, server)
    changes = queries.champion_changes("sea")
    assert (changes["block_id"] == "block_0008").sum() == 2  # rolled back to v1, then to v4, at one block
    boxes = page.locator("#performance-chart .js-plotly-plot").evaluate(
        """gd => [...gd.querySelectorAll('.scatterlayer .textpoint text')].map(t => {
             const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.top, r.right, r.bottom]; })""")
    assert {b[0] for b in boxes} >= {"v1", "v4"}
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = a[3] <= b[1] or b[3] <= a[1] or a[4] <= b[2] or b[4] <= a[2]
            assert apart, f"labels {a[0]} and {b[0]} overlap"
    page.locator("#performance-chart").screenshot(path=shots / "version_labels.png")


def test_the_rounds_table_says_each_round_once_and_drops_the_empty_ipip_column(server, page, queries, shots):
    pipeline_page(page, server)
    table = page.locator("#rounds-table")
    table.wait_for()
    candidates, rounds = queries.candidates("sea"), queries.rounds("sea")
    assert table.locator("tbody tr").count() == len(candidates)
    assert table.locator("td[data-field=outcome]").count() == len(rounds)  # once per round, spanning its rows
    outcomes = table.locator("td[data-field=outcome]").all_inner_texts()
    promoted = rounds[rounds["outcome"] == "promoted"]
    assert {f"promoted {v}" for v in promoted["promoted_version"]} <= set(outcomes)
    headers = table.locator("th").all_inner_texts()
    assert not candidates["strategy"].eq("ipip").any() and not any("ipip" in h for h in headers)
    assert "status now" in headers
    table.screenshot(path=shots / "rounds.png")


def test_time_travel_never_shows_another_pipelines_event(server, page, queries, shots):
    page.goto(server)
    open_tab(page, "Time travel")
    card = page.locator("#tt-card")
    head = queries.head()
    assert queries.event(head)["pipeline"] == "tide"  # the log's last event is the other pipeline's
    own = queries.pipeline_event_at("sea", head)
    line = page.locator("#tt-event")
    line.get_by_text(f"event {own['position']}:", exact=False).wait_for()
    assert line.get_attribute("data-position") == str(own["position"])
    assert "tide" not in line.inner_text().replace("another stream", "") and "sea" in line.inner_text()
    assert field(card, "champion") == "v4"
    page.screenshot(path=shots / "time_travel_own_event.png", full_page=True)


def test_rollback_offers_former_champions_previews_confirms_and_the_page_follows(operator, page, shots):
    from ui.queries import Queries

    url, actions, home = operator
    queries = Queries(home / "projections.sqlite")
    page.goto(url)
    page.get_by_label("username").fill(USER)
    page.get_by_label("password").fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    open_tab(page, "Pipeline")
    card = page.locator("#pipeline-card")
    card.locator("[data-field='champion']").wait_for()
    assert field(card, "champion").startswith("v1")
    # v1 is champion after the scenario's rollback; its score is its own from its earlier term, not v4's
    assert field(card, "score_age").startswith("v1's last score, on ")
    page.get_by_text("Operator actions (recorded in the log)").click()
    version = page.locator("#rollback-version input")
    version.click()
    options = page.get_by_role("option").all_inner_texts()
    models = queries.models("sea")
    former = models[models["promoted_at"].notna() & (models["version"] != "v1")]["version"].tolist()
    assert former == ["v4"] and [o.split()[0] for o in options] == former  # no rejected candidate is offered
    page.get_by_role("option").first.click()
    preview = page.locator("#rollback-preview-body")
    preview.wait_for()
    last = queries.model_scores("sea", "v4").iloc[0]
    assert first_cell(page, "#rollback-scores", "block_id") == last["block_id"]
    assert "today's champion v1" in preview.inner_text()
    page.locator("#action-reason textarea").fill("v1 underperforms")
    page.locator("#rollback").click()
    page.locator("#action-result").get_by_text("Roll back sea from v1 to v4?").wait_for()
    assert actions.calls == []  # nothing happens before the confirmation
    page.screenshot(path=shots / "rollback_confirm.png", full_page=True)
    page.locator("#rollback-cancel").click()
    page.locator("#action-result").get_by_text("Rollback cancelled").wait_for()
    assert page.locator("#rollback-confirm").is_hidden() and actions.calls == []
    page.locator("#rollback").click()
    page.locator("#rollback-confirm").click()
    page.locator("#action-result").get_by_text("v4 is now the champion of sea").wait_for()
    assert "{" not in page.locator("#action-result").inner_text()  # words, not JSON
    assert actions.calls == [("rollback", "sea", "v4", f"v1 underperforms (by {USER})")]
    # every figure follows the new champion: the card, its score, the model table, the next targets
    page.locator("#pipeline-card [data-field='champion']").get_by_text("v4", exact=False).wait_for()
    own = queries.model_scores("sea", "v4").iloc[0]
    assert field(card, "last_metric") == f"{own['value']:.4f}"
    assert first_cell(page, "#models-table", "version") == "v4"
    version.click()
    assert [o.split()[0] for o in page.get_by_role("option").all_inner_texts()] == ["v1"]
    page.keyboard.press("Escape")
    page.screenshot(path=shots / "rollback_done.png", full_page=True)
