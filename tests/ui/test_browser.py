"""The UI in a real headless browser (Debian's chromium driven by Playwright) on the scenario home.

Each page is opened, its key elements awaited (never a fixed sleep), the numbers it shows compared with
`Queries` on the same projection tables, and a screenshot saved under the test's tmp folder. A second server
runs with a login to check that the page asks for it, refuses a wrong password, and only then shows the
operator actions.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

RAY_URL = "http://127.0.0.1:8265"
USER, PASSWORD = "operator", "correct horse"
TIMEOUT = 90_000  # ms: the shared 2-core machine can be slow to render the first page

pytestmark = [pytest.mark.browser, pytest.mark.ray]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Stands in for serve's actions: records what the UI asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def rollback(self, pipeline: str, version: str, reason: str) -> dict:
        self.calls.append(("rollback", pipeline, version, reason))
        return {"ok": True, "message": f"{pipeline}: champion is now {version}"}

    def resume(self, pipeline: str, reason: str) -> dict:
        self.calls.append(("resume", pipeline, reason))
        return {"ok": False, "message": "the circuit is not open"}


@pytest.fixture(scope="module")
def home(projected_copy) -> Path:
    return projected_copy("ui-browser")


@pytest.fixture(scope="module")
def queries(home):
    from ui.queries import Queries

    return Queries(home / "projections.sqlite")


@pytest.fixture(scope="module")
def ignored_actions() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def server(browser, home, ignored_actions):
    """The read-only UI: no login, so the actions passed are dropped."""
    from ui.server import launch

    handle = launch(home, port=free_port(), ray_dashboard_url=RAY_URL, actions=ignored_actions, block=False)
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def auth_server(browser, home):
    from ui.server import launch

    recorder = Recorder()
    handle = launch(home, port=free_port(), auth=(USER, PASSWORD), actions=recorder, block=False)
    yield handle, recorder
    handle.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def first_cell(page, table: str, column: str) -> str:
    cell = page.locator(f"{table} tbody tr").first.locator(f"td[data-field={column}]")
    cell.wait_for()
    return cell.inner_text().strip()


def field(locator, name: str) -> str:
    return locator.locator(f"[data-field={name}]").first.inner_text().strip()


def test_binds_localhost_by_default(server):
    assert server.startswith("http://127.0.0.1:")
    assert server.app.server_name == "127.0.0.1"


def test_overview_lists_every_pipeline_with_numbers_from_the_projections(server, page, queries, shots):
    page.goto(server)
    row = page.locator("#overview-table tr[data-pipeline='sea']")
    row.wait_for()
    (expected,) = queries.overview().to_dict("records")
    assert row.locator("[data-health]").first.get_attribute("data-health") == expected["health"]
    assert field(row, "champion").split()[0] == expected["champion"]
    assert field(row, "last_block") == expected["last_block"]
    assert field(row, "blocks") == str(expected["blocks"])
    assert field(row, "drift_count") == f"{expected['recent_drifted']}/{expected['recent_checked']}"
    assert row.locator(".spark span").count() == expected["recent_checked"]
    assert expected["last_alert"][:40] in field(row, "alert")
    summary = queries.summary()
    assert field(page.locator("#summary"), "events") == str(summary["events"])
    assert page.locator("#ray-dashboard").get_attribute("href") == RAY_URL
    assert first_cell(page, "#alerts-table", "type") == queries.alerts().iloc[0]["type"] == "ModelRolledBack"
    page.screenshot(path=shots / "overview.png", full_page=True)


def test_pipeline_page_shows_drift_performance_models_rounds_circuit_rejections(server, page, queries, shots):
    page.goto(server)
    open_tab(page, "Pipeline")
    page.locator("#drift-heatmap .js-plotly-plot").wait_for()
    page.locator("#performance-chart .js-plotly-plot").wait_for()
    row = queries.pipeline("sea")
    card = page.locator("#pipeline-card")
    for name in ("promotions", "rollbacks", "rounds", "drifts", "rejected_files"):
        assert field(card, name) == str(row[name]), name
    cells = queries.drift_matrix("sea", last_blocks=50)
    marks = page.locator("#drift-heatmap svg text").evaluate_all("els => els.map(e => e.textContent)")
    assert marks.count("✕") == int(cells["drifted"].sum()) > 0
    legend = page.locator("#performance-chart svg text").evaluate_all("els => els.map(e => e.textContent)")
    assert "promoted" in legend and "rolled back" in legend
    changes = queries.blocks("sea")["change_point"].dropna()
    assert len(changes) > 0 and "change began" in legend  # where each change began, as the rounds adapt to it
    estimates = queries.estimates("sea")
    assert not estimates.empty  # the champion's calibrated estimate of every block it checked
    assert "estimated accuracy (no labels)" in legend and "estimate's 95% interval" in legend
    promoted = queries.champion_changes("sea")
    assert set(promoted["to_version"]) <= set(legend)  # each change is labelled with its version
    models = queries.models("sea")
    assert first_cell(page, "#models-table", "version") == models.iloc[0]["version"] == row["champion"]
    assert first_cell(page, "#models-table", "status") == "champion"
    assert page.locator("#models-table tbody tr").count() == len(models)
    latest_round = queries.rounds("sea").iloc[0]
    assert first_cell(page, "#rounds-table", "round_id") == latest_round["round_id"]
    assert first_cell(page, "#rounds-table", "outcome").split()[0] == latest_round["outcome"]
    assert page.locator("#rounds-table tbody tr").count() == len(queries.candidates("sea"))
    strategies = page.locator("#rounds-table tbody td").evaluate_all("els => els.map(e => e.textContent)")
    reused = queries.candidates("sea")["strategy"].str.startswith("reuse of ")
    assert any(s.startswith("reuse of v") for s in strategies) == bool(reused.any())
    rejected = queries.rejected_files("sea").iloc[0]
    assert first_cell(page, "#rejected-table", "reason_code") == rejected["reason_code"]
    assert first_cell(page, "#rejected-table", "file") == rejected["file"]
    circuit = page.locator("#circuit-panel")
    assert field(circuit, "consecutive_failures") == str(queries.circuit("sea")["consecutive_failures"])
    assert circuit.locator("[data-health]").get_attribute("data-health") == queries.circuit("sea")["circuit"]
    assert page.locator("#operator").count() == 0  # no login: no write path at all
    page.screenshot(path=shots / "pipeline.png", full_page=True)


def test_events_page_pages_filters_and_shows_a_full_payload(server, page, queries, shots):
    page.goto(server)
    open_tab(page, "Events")
    rejected = queries.events(types=["BlockRejected"]).iloc[0]
    page.locator("#ev-before input").fill(str(int(rejected["position"]) + 1))
    page.locator("#ev-apply").click()
    page.locator("#ev-note").get_by_text(f"{int(rejected['position'])} events", exact=False).wait_for()
    assert first_cell(page, "#events-rows", "type") == "BlockRejected"
    page.locator(f"#events-rows tr[data-position='{int(rejected['position'])}']").click()
    payload = page.locator("#payload")
    payload.get_by_text("wrong_delimiter").first.wait_for()
    assert queries.event(int(rejected["position"]))["payload"]["reason_code"] == "wrong_delimiter"
    page.screenshot(path=shots / "events.png", full_page=True)
    # filter by type: only the promotions are left
    page.locator("#ev-before input").fill("0")
    types = page.locator("#ev-types input")
    types.click()
    types.fill("ModelPromoted")
    types.press("Enter")
    page.locator("#ev-apply").click()
    n = len(queries.events(types=["ModelPromoted"]))
    page.locator("#ev-note").get_by_text(f"{n} events, newest first").wait_for()
    cells = page.locator("#events-rows td[data-field=type]")
    assert cells.count() == n and set(cells.all_inner_texts()) == {"ModelPromoted"}


def test_time_travel_shows_the_state_at_a_position(server, page, queries, shots):
    page.goto(server)
    open_tab(page, "Time travel")
    card = page.locator("#tt-card")
    head = queries.head()
    card.get_by_text(f"event {head}:").wait_for()
    assert field(card, "champion") == queries.state_at("sea", head)["champion"]
    first_promotion = int(queries.events(types=["ModelPromoted"]).iloc[-1]["position"])
    box = page.locator("#tt-slider input[data-testid='number-input']")
    box.fill(str(first_promotion - 1))
    box.blur()
    card.get_by_text(f"event {first_promotion - 1}:").wait_for()
    before = queries.state_at("sea", first_promotion - 1)
    assert field(card, "champion") == "-" and before["champion"] is None
    assert field(card, "events") == str(before["events"])
    box.fill(str(first_promotion))
    box.blur()
    card.get_by_text(f"event {first_promotion}:").wait_for()
    after = queries.state_at("sea", first_promotion)
    assert field(card, "champion") == after["champion"] and field(card, "promotions") == "1"
    assert first_cell(page, "#tt-lineage-table", "version") == after["champion"]
    page.screenshot(path=shots / "time_travel.png", full_page=True)


def test_login_is_required_and_a_wrong_password_is_refused(auth_server, page, queries, shots):
    url, recorder = auth_server
    with pytest.raises(urllib.error.HTTPError) as refused:  # no data without the login cookie, API included
        urllib.request.urlopen(url + "gradio_api/info", timeout=30)
    assert refused.value.code == 401
    page.goto(url)
    page.get_by_label("username").fill(USER)
    page.get_by_label("password").fill("wrong password")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect Credentials").wait_for()
    assert page.locator("#overview-table").count() == 0
    page.screenshot(path=shots / "login_refused.png")
    page.get_by_label("username").fill(USER)
    page.get_by_label("password").fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.locator("#overview-table tr[data-pipeline='sea']").wait_for()
    # behind the login, the operator actions appear and go to the actions object with the reason
    open_tab(page, "Pipeline")
    page.locator("#pipeline-card [data-field='champion']").wait_for()
    page.get_by_text("Operator actions (recorded in the log)").click()
    target = queries.rollback_targets("sea").iloc[0]["version"]  # the latest former champion
    version = page.locator("#rollback-version input")
    version.click()
    page.get_by_role("option").first.click()
    page.locator("#rollback").click()
    page.locator("#action-result").get_by_text("Give a reason").wait_for()
    assert recorder.calls == []
    page.locator("#action-reason textarea").fill("canary looked bad")
    page.locator("#rollback").click()
    page.locator("#rollback-confirm").click()  # the second step: nothing is called before it
    page.locator("#action-result").get_by_text(f"{target} is now the champion of sea").wait_for()
    assert recorder.calls == [("rollback", "sea", target, f"canary looked bad (by {USER})")]
    page.screenshot(path=shots / "operator.png", full_page=True)


def test_without_login_the_actions_are_never_called(server, ignored_actions):
    assert ignored_actions.calls == []
    names = {getattr(fn, "name", "") for fn in server.app.fns.values()}
    assert not {"do_rollback", "do_resume"} & names
    assert urllib.request.urlopen(server + "gradio_api/info", timeout=30).status == 200


def test_the_timer_refreshes_the_page_when_the_log_grows(server, page, home, queries):
    from calmops_actors.home import Home, stream_id
    from calmops_actors.projector import update_projections
    from pipelines.core.events import BlockRejected

    page.goto(server)
    row = page.locator("#overview-table tr[data-pipeline='sea']")
    row.wait_for()
    before = queries.summary()["events"]
    assert field(page.locator("#summary"), "events") == str(before)
    store = Home(home).open_store()
    try:
        store.append(stream_id("sea"), [BlockRejected(
            file="late.csv", sha256="e" * 64, reason_code="empty_file", message="late.csv is empty",
            occurred_at="2030-01-01T00:00:00+00:00")], expected_version=store.stream_version(stream_id("sea")))
    finally:
        store.close()
    assert update_projections(home) == 1
    page.locator("#summary [data-field='events']").get_by_text(str(before + 1), exact=True).wait_for()
    row.locator("[data-field=alert]").get_by_text("late.csv").wait_for()
