"""The Gradio app: layout and wiring of four pages over `Queries` (read-only), refreshed by a timer.

Pages: Overview (every pipeline, its health badge and latest alert), Pipeline (drift heatmap, champion metric
with its tolerance band and champion changes, model registry with lineage, retraining rounds, circuit,
rejected files), Events (filtered feed and one event's full payload) and Time travel (a pipeline's state at
any log position). The only write path is the optional operator panel (rollback, resume), built only when
`actions` is given, which `ui.server.launch` does only behind a login.

The small render helpers below turn the query results into Plotly figures and HTML; all data comes from
`Queries`, nothing here reads a file. User text is escaped on its way out: by `html.escape` in the HTML, by
`ui.plot_text` in the figures (Plotly draws markup in its labels too).
"""

from __future__ import annotations

import html
import json
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pipelines.config.drift import DriftSettings
from ui.distributions import load_distributions
from ui.plot_text import plot_frame, plot_text, plot_texts
from ui.queries import Queries

__all__ = ["APP_CSS", "build_app"]

REFRESH_SECONDS = 5.0
DIST_HINT = "Click a cell of the heatmap: that feature's reference and block distributions, with the gate."
MAX_FEATURES = 25  # heatmap rows: the features with the largest effect in the window
DEFAULT_GATES = {"numeric": DriftSettings.min_effect, "categorical": DriftSettings.min_effect_categorical}
GATE_SCALE_MAX = 4.0  # the heatmap's colours: effect / gate from 0 to 4 (and beyond), the gate at 1
GATE_COLOURS = [[0.0, "#f6f8fa"], [0.2499, "#c9d1d9"], [0.25, "#fff1a8"], [0.5, "#f6a13a"], [0.75, "#d1242f"],
                [1.0, "#6e0b14"]]
# Plotly's named templates cost ~0.1 s per figure to validate: a light layout of our own instead
LAYOUT = {"template": "none", "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"size": 12}}
MARGIN = {"l": 70, "r": 20, "t": 50, "b": 60}
HEALTH_COLOURS = {"ok": "#1a7f37", "drifting": "#b35900", "retraining": "#0b5cad", "paused": "#b42318",
                  "waiting": "#6b7280"}

APP_CSS = """
.badge { display:inline-block; padding:2px 10px; border-radius:999px; color:#fff; font-weight:600;
         font-size:0.85em; text-transform:uppercase; letter-spacing:0.03em; }
.cm-table { width:100%; border-collapse:collapse; font-size:0.92em; }
.cm-table th { text-align:left; border-bottom:2px solid #d0d7de; padding:6px 8px; }
.cm-table td { border-bottom:1px solid #eaeef2; padding:6px 8px; vertical-align:top; }
.spark span { display:inline-block; width:9px; height:14px; margin-right:2px; border-radius:2px; }
.spark .d1 { background:#d1242f; } .spark .d0 { background:#2da44e; }
.cm-card { display:flex; flex-wrap:wrap; gap:18px; align-items:baseline; }
.cm-card .kv { display:flex; flex-direction:column; }
.cm-card .kv b { font-size:1.25em; }
.cm-card .kv small { color:#57606a; }
.cm-empty { padding:24px; border:1px dashed #d0d7de; border-radius:8px; color:#57606a; }
.cm-muted { color:#57606a; }
.cm-scroll { overflow:auto; border:1px solid #eaeef2; border-radius:6px; }
.cm-scroll .cm-table thead th { position:sticky; top:0; background:#fff; z-index:1; }
#rounds-table td.cm-round { background:#fafbfc; border-right:1px solid #eaeef2; }
#rounds-table tr.cm-round-first td { border-top:2px solid #d0d7de; }
tr[data-position] { cursor:pointer; } tr[data-position]:hover { background:#f6f8fa; }
"""


def build_app(queries: Queries, *, ray_dashboard_url: str | None = None, actions: Any = None,
              refresh_seconds: float = REFRESH_SECONDS) -> gr.Blocks:
    """The UI over `queries`; `actions` (with `rollback` and `resume`) adds the operator panel."""

    with gr.Blocks(title="calmops", analytics_enabled=False) as demo:
        seen = gr.State(-1)  # the projected position last rendered: refresh only when it moves
        with gr.Row(equal_height=True):
            gr.Markdown("## calmops: pipelines, drift and models")
            header = gr.HTML(elem_id="summary")
            if ray_dashboard_url:
                url = html.escape(ray_dashboard_url, quote=True)
                gr.HTML(f'<a id="ray-dashboard" href="{url}" target="_blank" rel="noopener">'
                        f"Ray dashboard ↗</a>")

        with gr.Tabs():
            with gr.Tab("Overview", id="overview"):
                overview = gr.HTML(elem_id="overview")
                gr.Markdown("#### Recent alerts (UTC)")
                alerts = gr.HTML(elem_id="alerts")

            with gr.Tab("Pipeline", id="pipeline"):
                with gr.Row():
                    pick = gr.Dropdown(label="Pipeline", choices=[], elem_id="pipeline-pick", scale=2)
                    window = gr.Slider(10, 500, value=50, step=10, label="Blocks shown (the latest)",
                                       elem_id="window", scale=3)
                card = gr.HTML(elem_id="pipeline-card")
                heatmap = gr.Plot(label="Drift per feature and block", elem_id="drift-heatmap")
                with gr.Row(equal_height=True):
                    dist_block = gr.Textbox(label="Block (click a heatmap cell)", elem_id="dist-block", scale=2)
                    dist_feature = gr.Textbox(label="Feature", elem_id="dist-feature", scale=2)
                    dist_show = gr.Button("Show its distributions", elem_id="dist-show", scale=1)
                dist_plot = gr.Plot(_note_figure(DIST_HINT), label="Reference vs block", elem_id="distribution-chart")
                dist_note = gr.Markdown(elem_id="dist-note")
                perf = gr.Plot(label="Champion metric per block", elem_id="performance-chart")
                gr.Markdown("#### Model versions (champion first, then newest)")
                models = gr.HTML(elem_id="models")
                gr.Markdown("#### Retraining rounds: every candidate and its holdout score")
                rounds = gr.HTML(elem_id="rounds")
                with gr.Row():
                    circuit = gr.HTML(elem_id="circuit")
                    with gr.Column(scale=2):
                        gr.Markdown("#### Health and circuit history")
                        history = gr.HTML(elem_id="health-history")
                gr.Markdown("#### Rejected files")
                rejected = gr.HTML(elem_id="rejected")
                action_outputs: list[Any] = []
                action_done: list[Any] = []
                if actions is not None:
                    action_outputs, action_done = _operator_panel(actions, pick, queries)

            with gr.Tab("Events", id="events"):
                with gr.Row():
                    ev_pipeline = gr.Dropdown(label="Pipeline", choices=["(all)"], value="(all)",
                                              elem_id="ev-pipeline")
                    ev_types = gr.Dropdown(label="Types", choices=[], multiselect=True, elem_id="ev-types")
                    ev_since = gr.Textbox(label="Since (UTC, ISO-8601)", placeholder="2026-03-01T12:00",
                                          elem_id="ev-since")
                    ev_until = gr.Textbox(label="Until", placeholder="2026-03-01", elem_id="ev-until")
                    ev_before = gr.Number(label="Before position (0 = latest)", value=0, precision=0,
                                          elem_id="ev-before")
                ev_apply = gr.Button("Show events", elem_id="ev-apply")
                ev_note = gr.Markdown(elem_id="ev-note")
                ev_table = gr.HTML(value={"html": "", "selected": None}, html_template="${value.html}",
                                   js_on_load=SELECT_ROW_JS, elem_id="events-table")
                with gr.Row():
                    ev_position = gr.Number(label="Event position (or click a row)", value=None, precision=0,
                                            elem_id="ev-position")
                    ev_show = gr.Button("Show payload", elem_id="ev-show")
                ev_payload = gr.JSON(label="Full event", elem_id="payload", open=True)

            with gr.Tab("Time travel", id="time-travel") as time_tab:
                gr.Markdown("The state of a pipeline at any position of the log: a fold of its events up to "
                            "there (nothing is re-run).")
                with gr.Row():
                    tt_pick = gr.Dropdown(label="Pipeline", choices=[], elem_id="tt-pick", scale=1)
                    tt_slider = gr.Slider(0, 1, value=0, step=1, label="Log position", elem_id="tt-slider",
                                          scale=4)
                tt_card = gr.HTML(elem_id="tt-state")
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("#### Champion lineage")
                        tt_lineage = gr.HTML(elem_id="tt-lineage")
                    with gr.Column():
                        gr.Markdown("#### Model versions at that point")
                        tt_models = gr.HTML(elem_id="tt-models")

        # -- wiring ----------------------------------------------------------------------------------
        pipeline_outputs = [card, heatmap, perf, models, rounds, circuit, history, rejected, *action_outputs]
        overview_outputs = [seen, header, overview, alerts, pick, ev_pipeline, ev_types, tt_pick, tt_slider]
        event_inputs = [ev_pipeline, ev_types, ev_since, ev_until, ev_before]

        def choose(current: str | None, names: list[str]) -> str | None:
            return current if current in names else (names[0] if names else None)

        def render_overview(current: str | None, tt_current: str | None) -> list[Any]:
            names = queries.pipeline_names()
            chosen = choose(current, names)
            tt_chosen = tt_current if tt_current in names else chosen
            head = queries.head()
            return [
                queries.position(),
                *_overview_page(queries, head),
                gr.Dropdown(choices=names, value=chosen),
                gr.Dropdown(choices=["(all)", *names]),
                gr.Dropdown(choices=queries.event_types()),
                gr.Dropdown(choices=names, value=tt_chosen),
                gr.Slider(maximum=max(head, 1)),  # the position stays where the user put it
            ]

        def render_pipeline(name: str | None, last_blocks: float) -> list[Any]:
            return _pipeline_page(queries, name, int(last_blocks or 50), with_actions=bool(action_outputs))

        def render_events(pipeline, types, since, until, before) -> list[Any]:
            try:
                frame = queries.events(pipeline=None if pipeline in (None, "(all)") else pipeline,
                                       types=types or None, since=since or None, until=until or None,
                                       before=int(before or 0) or None)
            except ValueError as err:
                return [f"**{html.escape(str(err))}**", gr.skip()]
            note = (f"{len(frame)} events, newest first" + (f"; older ones: before position "
                    f"{int(frame['position'].min())}" if len(frame) == 100 else ""))
            return [note, {"html": _html_table(frame, EVENT_COLUMNS, "events-rows", row_key="position",
                                               empty="no event matches", max_height=480), "selected": None}]

        def show_event(position: float | None) -> dict[str, Any] | None:
            if position is None:
                return None
            return queries.event(int(position)) or {"error": f"no event at position {int(position)}"}

        def select_event(table: dict[str, Any]) -> tuple[Any, Any]:
            position = (table or {}).get("selected")
            if position is None:
                return gr.skip(), gr.skip()
            return int(position), show_event(int(position))

        def render_time_travel(name: str | None, position: float) -> list[Any]:
            if not name:
                return ["<div class='cm-empty'>No pipeline to travel in yet.</div>", None, None]
            state = queries.state_at(name, int(position or 0))
            event = queries.pipeline_event_at(name, int(position)) if position else None  # its own, never another's
            lineage = _html_table(pd.DataFrame.from_records(state["lineage"]), LINEAGE_COLUMNS,
                                  "tt-lineage-table", empty="no champion yet")
            models = _html_table(pd.DataFrame.from_records(state["models"]), STATE_MODEL_COLUMNS,
                                 "tt-models-table", empty="no model yet", max_height=360)
            return [_state_html(state, event, int(position or 0)), lineage, models]

        def tick(last_seen: int, current, tt_current, last_blocks, *filters):
            if queries.position() == last_seen:
                return [gr.skip()] * (len(overview_outputs) + len(pipeline_outputs) + 2)
            top = render_overview(current, tt_current)
            page = render_pipeline(choose(current, queries.pipeline_names()), last_blocks)
            events = render_events(*filters) if not int(filters[-1] or 0) else [gr.skip(), gr.skip()]
            return [*top, *page, *events]

        def show_distributions(name: str | None, block: str, feature: str) -> list[Any]:
            if not name or not (block or "").strip() or not (feature or "").strip():
                return [None, "Click a cell of the heatmap (or type a block and a feature)."]
            cell = queries.drift_cell(name, block.strip(), feature.strip()) or queries.drift_cell(
                name, html.unescape(block.strip()), html.unescape(feature.strip()))  # labels arrive escaped
            if cell is None:
                return [None, f"No drift check of **{html.escape(feature)}** in **{html.escape(block)}**."]
            dist = load_distributions(queries.path.parent / "artifacts", queries, name, cell)
            refs = ", ".join(dist.reference_blocks) or "none recorded"
            note = (f"{len(dist.block)} values of the block, {len(dist.reference)} of the reference (blocks "
                    f"{refs}), read from the artifact store, each file checked against its recorded sha256.")
            if dist.notes:
                note += " Not shown: " + "; ".join(dist.notes) + "."
            return [_distribution_figure(cell, dist), html.escape(note)]

        def open_time_travel(name: str | None, position: float) -> list[Any]:
            # the tab may be opened before the first paint filled its picker: choose the pipeline here too
            name = choose(name, queries.pipeline_names())
            head = queries.head()
            position = min(int(position or head), head)
            return [gr.update(value=name), gr.Slider(maximum=max(head, 1), value=position),
                    *render_time_travel(name, position)]

        # Private listeners: the UI is not an API (and the page stays small). The first paint runs the cheap
        # queries in parallel; time travel folds the log, so it runs only when its tab is opened.
        private = {"api_visibility": "private"}
        quiet = {**private, "show_progress": "hidden"}
        tt_outputs = [tt_card, tt_lineage, tt_models]
        demo.load(None, None, None, js=HEATMAP_CLICK_JS)
        for done in action_done:  # after an action, the page follows the new champion at once (as projected)
            done.then(render_pipeline, [pick, window], pipeline_outputs, **private)
        dist_show.click(show_distributions, [pick, dist_block, dist_feature], [dist_plot, dist_note], **private)
        pick.input(lambda: [_note_figure(DIST_HINT), ""], None, [dist_plot, dist_note], **private)  # not stale
        demo.load(render_overview, [pick, tt_pick], overview_outputs, **private)
        demo.load(lambda blocks: render_pipeline(choose(None, queries.pipeline_names()), blocks), [window],
                  pipeline_outputs, **private)
        demo.load(render_events, event_inputs, [ev_note, ev_table], **private)
        pick.input(render_pipeline, [pick, window], pipeline_outputs, **private)
        window.release(render_pipeline, [pick, window], pipeline_outputs, **private)
        ev_apply.click(render_events, event_inputs, [ev_note, ev_table], **private)
        ev_show.click(show_event, ev_position, ev_payload, **private)
        ev_table.submit(select_event, ev_table, [ev_position, ev_payload], **private)
        time_tab.select(open_time_travel, [tt_pick, tt_slider], [tt_pick, tt_slider, *tt_outputs], **private)
        tt_pick.input(render_time_travel, [tt_pick, tt_slider], tt_outputs, **private)
        tt_slider.change(render_time_travel, [tt_pick, tt_slider], tt_outputs, trigger_mode="always_last", **quiet)
        gr.Timer(refresh_seconds).tick(
            tick, [seen, pick, tt_pick, window, *event_inputs],
            [*overview_outputs, *pipeline_outputs, ev_note, ev_table], **quiet)
    return demo


def _operator_panel(actions: Any, pick: gr.Dropdown, queries: Queries) -> tuple[list[Any], list[Any]]:
    """Rollback and resume, recorded in the log with the operator's reason (shown only behind a login).

    Rollback offers only former champions whose model file is still stored (a version that lost its
    comparison needs `calmops rollback --force` and its warning), previews the chosen version's recent scores,
    and asks for a confirmation before it calls the actor. Returns the outputs the page refresh updates and the
    events after which the page is re-rendered.
    """
    with gr.Accordion("Operator actions (recorded in the log)", open=False, elem_id="operator"):
        with gr.Row():
            version = gr.Dropdown(label="Roll back to a former champion", choices=[], elem_id="rollback-version")
            reason = gr.Textbox(label="Reason (required)", elem_id="action-reason")
        preview = gr.HTML(elem_id="rollback-preview")
        with gr.Row():
            rollback = gr.Button("Roll back...", variant="stop", elem_id="rollback")
            confirm = gr.Button("Confirm the rollback", variant="stop", elem_id="rollback-confirm", visible=False)
            cancel = gr.Button("Cancel", elem_id="rollback-cancel", visible=False)
            resume = gr.Button("Resume retraining", elem_id="resume")
        result = gr.Markdown(elem_id="action-result")
        pending = gr.State(None)  # (pipeline, version, reason) waiting for the confirmation

    def refused(name: str | None, why: str, request: gr.Request | None) -> str | None:
        if request is None or not getattr(request, "username", None):
            return "Operator actions need a login."
        if not name:
            return "Pick a pipeline first."
        if not (why or "").strip():
            return "Give a reason: it is recorded in the log with the action."
        return None

    def show_preview(name: str | None, chosen: str | None) -> str:
        return _rollback_preview(queries, name, chosen) if name and chosen else ""

    def ask(name, chosen, why, request: gr.Request):
        hidden = (gr.Button(visible=False), gr.Button(visible=False))
        problem = refused(name, why, request) or (None if chosen else "Pick the version to roll back to.")
        if problem:
            return [problem, None, *hidden]
        row = queries.pipeline(name) or {}
        question = (f"**Roll back {html.escape(name)} from {html.escape(str(row.get('champion')))} to "
                    f"{html.escape(chosen)}?** {html.escape(chosen)} becomes the champion, scores the next "
                    "blocks and serves predictions; the reference for drift follows it. Confirm, or cancel.")
        return [question, (name, chosen, why.strip()), gr.Button(visible=True), gr.Button(visible=True)]

    def do_rollback(waiting, request: gr.Request):
        hidden = [None, gr.Button(visible=False), gr.Button(visible=False)]
        if not waiting:
            return ["Nothing to confirm: choose a version and press Roll back first.", *hidden]
        name, chosen, why = waiting
        problem = refused(name, why, request)
        if problem:
            return [problem, *hidden]
        try:
            outcome = actions.rollback(name, chosen, f"{why} (by {request.username})")
        except Exception as err:  # the actor could not be reached or refused
            return [f"**Rollback refused:** {html.escape(str(err))}", *hidden]
        return [action_words("rollback", name, chosen, outcome), *hidden]

    def do_cancel():
        return ["Rollback cancelled: nothing was recorded.", None, gr.Button(visible=False),
                gr.Button(visible=False)]

    def do_resume(name, why, request: gr.Request):
        problem = refused(name, why, request)
        if problem:
            return problem
        try:
            outcome = actions.resume(name, f"{why.strip()} (by {request.username})")
        except Exception as err:
            return f"**Resume refused:** {html.escape(str(err))}"
        return action_words("resume", name, None, outcome)

    private = {"api_visibility": "private"}
    version.change(show_preview, [pick, version], preview, **private)
    rollback.click(ask, [pick, version, reason], [result, pending, confirm, cancel], **private)
    cancel.click(do_cancel, None, [result, pending, confirm, cancel], **private)
    confirmed = confirm.click(do_rollback, pending, [result, pending, confirm, cancel], **private)
    resumed = resume.click(do_resume, [pick, reason], result, **private)
    return [version], [confirmed, resumed]


def action_words(kind: str, name: str, target: str | None, outcome: Any) -> str:
    """What an operator action did, in a sentence (the actor answers with a dict; never shown raw)."""
    if not isinstance(outcome, dict):
        outcome = {"ok": bool(outcome), "message": None if isinstance(outcome, bool) else str(outcome)}
    message = outcome.get("message")
    recorded = ", ".join(outcome.get("recorded") or [])
    if not outcome.get("ok", True):
        return f"**{kind.capitalize()} refused:** {html.escape(str(message or 'the pipeline said no'))}"
    if kind == "rollback":
        champion = outcome.get("champion") or target
        words = f"**Rolled back:** {html.escape(str(champion))} is now the champion of {html.escape(name)}"
    elif recorded:
        words = f"**Retraining resumed** for {html.escape(name)}"
    else:
        words = f"**Nothing to resume** for {html.escape(name)}: the circuit was not open"
    words += f"; the log recorded {html.escape(recorded)}." if recorded else "."
    if message:
        words += f" {html.escape(str(message))}"
    return words


def _rollback_preview(queries: Queries, name: str, version: str) -> str:
    """The chosen former champion: its term, its holdout score, its last scores, next to today's champion."""
    targets = queries.rollback_targets(name)
    found = targets[targets["version"] == version]
    if found.empty:
        return (f"<div class='cm-muted' id='rollback-preview-body'>{html.escape(version)} is not a former "
                "champion that can be restored.</div>")
    t = found.iloc[0]
    row = queries.pipeline(name) or {}
    scores = queries.model_scores(name, version)
    metric = html.escape(row.get("metric") or "metric")
    term = (f"champion from {_cell('trained_at', t['promoted_at'])} to "
            f"{_cell('trained_at', t['retired_at']) or 'now'}")
    holdout = "" if t["score"] is None or pd.isna(t["score"]) else f" · holdout {metric} {t['score']:.4f}"
    current, words = score_words(queries.score_age(name))
    now = (f"<div>today's champion {html.escape(str(row.get('champion')))}: {metric} "
           f"{'-' if current is None else f'{current:.4f}'} ({html.escape(words)})</div>")
    table = _html_table(scores, {"block_id": "block", "value": row.get("metric") or "metric"},
                        "rollback-scores", empty=f"{version} was never scored on a labelled block")
    return (f"<div id='rollback-preview-body'><b>{html.escape(version)}</b> ({html.escape(t['strategy'] or '-')}): "
            f"{html.escape(term)}{holdout}<div class='cm-muted'>its latest scores while champion, newest first:"
            f"</div>{table}{now}</div>")


# -- pages ----------------------------------------------------------------------------------------------


def _overview_page(queries: Queries, head: int) -> list[str]:
    """Header line, pipelines table and recent alerts."""
    return [
        _summary_html(queries.summary(), head),
        _overview_html(queries.overview(), queries.path.parent),
        _html_table(queries.alerts(), ALERT_COLUMNS, "alerts-table", empty="no alert yet"),
    ]


def _pipeline_page(queries: Queries, name: str | None, last_blocks: int, with_actions: bool) -> list[Any]:
    if not name or (row := queries.pipeline(name)) is None:
        empty = "<div class='cm-empty'>Pick a pipeline (none recorded yet).</div>"
        return [empty, None, None, None, None, "", None, None] + ([gr.Dropdown(choices=[])] if with_actions else [])
    blocks = queries.blocks(name, limit=last_blocks).sort_values("seq")
    order = blocks["block_id"].tolist()
    models = queries.models(name)
    page = [
        _pipeline_card(row, queries.score_age(name)),
        _drift_figure(queries.drift_matrix(name, last_blocks), order),
        _performance_figure(queries.performance(name, last_blocks), queries.champion_changes(name), order, row,
                            blocks, queries.estimates(name, last_blocks)),
        _models_table(models),
        _rounds_table(queries.candidates(name), queries.rounds(name)),
        _circuit_html(queries.circuit(name)),
        _html_table(queries.health_history(name), HISTORY_COLUMNS, "history-table", max_height=300),
        _html_table(queries.rejected_files(name), REJECTED_COLUMNS, "rejected-table", empty="no file rejected",
                    max_height=300),
    ]
    if with_actions:  # former champions only: anything else needs `calmops rollback --force`
        targets = queries.rollback_targets(name)
        metric = row.get("metric") or "metric"
        choices = [(f"{t.version} ({t.strategy}), last {metric} "
                    f"{'-' if t.last_value is None or pd.isna(t.last_value) else f'{t.last_value:.4f}'}", t.version)
                   for t in targets.itertuples(index=False)]
        page.append(gr.Dropdown(choices=choices, value=None))
    return page


def gate_ratio(cells: pd.DataFrame) -> pd.Series:
    """Each cell's effect as a multiple of its own gate (the `min_effect` its check applied): 1 = at the gate.

    A check recorded before the gate was kept in the event falls back to today's default for its kind.
    """
    defaults = cells["kind"].map({"categorical": DEFAULT_GATES["categorical"]}).fillna(DEFAULT_GATES["numeric"])
    gate = pd.to_numeric(cells["min_effect"], errors="coerce").fillna(defaults).astype(float)
    return pd.to_numeric(cells["effect"], errors="coerce") / gate.where(gate > 0)


def _drift_figure(cells: pd.DataFrame, order: list[str]) -> go.Figure | None:
    """Blocks across, features down, coloured on one fixed scale: the effect as a multiple of its gate.

    Below the gate a cell is grey (however large its p-value says the change is, it is too small to count);
    from the gate up, pale yellow to dark red at 4x the gate and beyond. So a colour means the same on every
    pipeline and every feature, whatever the effect's unit.
    """
    if cells.empty:
        return _note_figure("No drift checks in this window yet (they start once a champion exists).")
    cells = cells.assign(ratio=gate_ratio(cells), gate=pd.to_numeric(cells["min_effect"], errors="coerce"))
    cells, order = plot_frame(cells), plot_texts(order)  # feature names and block ids are the user's text
    strongest = cells.groupby("feature")["ratio"].max().sort_values(ascending=False)
    features = strongest.index[:MAX_FEATURES].tolist()
    cells = cells[cells["feature"].isin(features)]
    blocks = order or sorted(set(cells["block_id"]))  # every block of the window: unchecked ones stay blank
    values = ["ratio", "drifted", "p_adjusted", "effect", "gate", "effect_name"]
    grid = cells.pivot(index="feature", columns="block_id", values=values)
    ratio, drifted, p_adj, effect, gate, unit = (grid[v].reindex(index=features[::-1], columns=blocks)
                                                 for v in values)
    ratio = ratio.astype(float)
    marks = [["✕" if v == 1 else "" for v in row] for row in drifted.to_numpy()]
    custom = np.dstack([p_adj.to_numpy(dtype=object), effect.to_numpy(dtype=object), gate.to_numpy(dtype=object),
                        unit.fillna("").to_numpy(dtype=object),
                        drifted.map(lambda v: "drifted" if v == 1 else "not drifted").to_numpy(dtype=object),
                        ratio.to_numpy(dtype=object)])
    fig = go.Figure(go.Heatmap(
        z=ratio.clip(upper=GATE_SCALE_MAX).to_numpy(dtype=float), x=blocks, y=ratio.index.tolist(), text=marks, texttemplate="%{text}",
        customdata=custom, colorscale=GATE_COLOURS, zmin=0, zmax=GATE_SCALE_MAX, xgap=1, ygap=1,
        colorbar={"title": {"text": "effect / gate"}, "thickness": 12, "tickvals": [0, 1, 2, 4],
                  "ticktext": ["0", "gate", "2x", "4x+"]},
        hovertemplate=("block %{x}<br>%{y}: effect %{customdata[1]:.3f} %{customdata[3]} (gate %{customdata[2]},"
                       " %{customdata[5]:.2f}x)<br>p_adj %{customdata[0]:.2g}: %{customdata[4]}<br>click: the distributions"
                       "<extra></extra>"),
    ))
    title = "Drift effect per feature, as a multiple of its gate (grey: under the gate; ✕ = drifted)"
    if len(strongest) > MAX_FEATURES:
        title += f": the {MAX_FEATURES} strongest of {len(strongest)} features"
    fig.update_layout(title=title, **LAYOUT, height=max(240, 160 + 26 * len(features)), margin=MARGIN,
                      xaxis={"type": "category", "automargin": True}, yaxis={"automargin": True})
    return fig


def _distribution_figure(cell: dict[str, Any], dist: Any) -> go.Figure:
    """The feature's values in the reference and in the block, overlaid, with the gate the check applied.

    Numeric: two density histograms on shared bins, the reference mean, and the band a pure shift of the mean
    must leave to reach the gate (the gate is in reference sd for `wasserstein_sd`). Categorical: the share of
    each category on both sides.
    """
    feature, block_id = plot_text(cell["feature"]), plot_text(cell["block_id"])
    gate = cell.get("min_effect")
    if gate is None:
        gate = DEFAULT_GATES["categorical" if cell.get("kind") == "categorical" else "numeric"]
    effect = cell.get("effect")
    verdict = "drifted" if cell.get("drifted") else "not drifted"
    title = (f"{feature} in {block_id} vs its reference: effect "
             f"{'-' if effect is None else f'{effect:.3f}'} {plot_text(cell.get('effect_name') or '')}, "
             f"gate {gate:g}: {verdict}")
    fig = go.Figure()
    ref, block = dist.reference, dist.block
    numeric = cell.get("kind") != "categorical" and pd.api.types.is_numeric_dtype(ref) \
        and pd.api.types.is_numeric_dtype(block)
    if numeric and len(ref) and len(block):
        both = pd.concat([ref, block]).astype(float)
        edges = np.histogram_bin_edges(both, bins=40)
        n_ref = len(dist.reference_blocks)
        for values, label, colour in ((ref, f"reference ({n_ref} block{'s' * (n_ref != 1)})", "#57606a"),
                                      (block, f"block {block_id}", "#d1242f")):
            density, _ = np.histogram(values.astype(float), bins=edges, density=True)
            fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=density, width=np.diff(edges), name=label,
                                 marker={"color": colour}, opacity=0.55,
                                 hovertemplate="%{x:.3g}: density %{y:.3g}<extra>" + label + "</extra>"))
        mean, sd = float(ref.astype(float).mean()), float(ref.astype(float).std(ddof=1) or 0.0)
        if cell.get("effect_name") == "wasserstein_sd" and sd > 0:
            fig.add_vrect(x0=mean - gate * sd, x1=mean + gate * sd, fillcolor="#fff1a8", opacity=0.6,
                          line_width=0, layer="below")
            fig.add_trace(go.Scatter(x=[mean - gate * sd, mean + gate * sd], y=[0, 0], mode="markers",
                                     marker={"symbol": "line-ns-open", "size": 14, "color": "#9a6700"},
                                     name=f"gate: a mean shift of {gate:g} sd", hoverinfo="skip"))
        fig.add_vline(x=mean, line={"color": "#57606a", "dash": "dash"})
        fig.add_vline(x=float(block.astype(float).mean()), line={"color": "#d1242f", "dash": "dash"})
        fig.update_layout(barmode="overlay", xaxis={"title": feature}, yaxis={"title": "density"})
    elif len(ref) or len(block):
        shares = pd.DataFrame({"reference": ref.astype(str).value_counts(normalize=True),
                               "block": block.astype(str).value_counts(normalize=True)}).fillna(0.0)
        shares = shares.sort_values("reference", ascending=False).head(30)
        for column, colour in (("reference", "#57606a"), ("block", "#d1242f")):
            fig.add_trace(go.Bar(x=plot_texts(shares.index), y=shares[column], name=column,
                                 marker={"color": colour}, opacity=0.75))
        fig.update_layout(barmode="group", xaxis={"title": feature, "type": "category"},
                          yaxis={"title": "share of rows", "tickformat": ".0%"})
    else:
        return _note_figure(f"No values of {feature} could be read: " + "; ".join(dist.notes))
    fig.update_layout(title={"text": title, "font": {"size": 13}}, **LAYOUT, height=340, margin=MARGIN,
                      legend={"orientation": "h", "y": -0.3})
    return fig


def _performance_figure(perf: pd.DataFrame, changes: pd.DataFrame, order: list[str],
                        row: dict[str, Any], blocks: pd.DataFrame | None = None,
                        estimates: pd.DataFrame | None = None) -> go.Figure:
    """The champion's metric on the block axis: every block of the window has its place, so a block without a
    score (unlabelled, or before the first champion) is a gap in the line, not a closer neighbour. The estimate
    (no labels needed) is drawn on the same axis with its interval, so estimate and realised read side by side
    as labels arrive."""
    metric = plot_text(row.get("metric") or "metric")
    estimates = estimates if estimates is not None else pd.DataFrame(columns=["block_id", "value", "low", "high"])
    estimates = estimates.dropna(subset=["value", "low", "high"])
    if perf.empty and estimates.empty:
        return _note_figure("No block has been scored or estimated by a champion in this window yet.")
    if perf.empty:  # only estimates so far (every block unlabelled): the scored line is empty
        perf = pd.DataFrame({c: pd.Series(dtype=object) for c in ("block_id", "model_version", "drifted")}).assign(
            value=pd.Series(dtype=float), at_promotion=pd.Series(dtype=float), tolerance=pd.Series(dtype=float),
            higher_is_better=pd.Series(dtype=float))
    perf, changes, order = plot_frame(perf), plot_frame(changes), plot_texts(order)  # ids, versions, reasons
    estimates = plot_frame(estimates)
    scored = set(perf["block_id"])
    known = list(perf["block_id"]) + [b for b in estimates["block_id"] if b not in scored]
    axis = order + [b for b in known if b not in set(order)] if order else known
    full = pd.DataFrame({"block_id": axis}).merge(perf, on="block_id", how="left")  # NaN: a gap in the line
    fig = go.Figure()
    if not estimates.empty:  # the estimate's interval, then its line: no labels needed
        est = pd.DataFrame({"block_id": axis}).merge(estimates, on="block_id", how="left")
        run = (est["value"].isna() != est["value"].isna().shift()).cumsum()
        xs: list[Any] = []
        ys: list[Any] = []
        for _, part in est[est["value"].notna()].groupby(run[est["value"].notna()]):
            xs += [*part["block_id"], *part["block_id"][::-1], None]
            ys += [*part["high"], *part["low"][::-1], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 0}, fill="toself",
                                 fillcolor="rgba(130,80,223,0.15)", name="estimate's 95% interval",
                                 hoverinfo="skip"))
        est_colours = ["#d1242f" if d == 1 else "#8250df" for d in est["drifted"].fillna(0)]
        fig.add_trace(go.Scatter(
            x=axis, y=est["value"], mode="lines+markers", name=f"estimated {metric} (no labels)",
            connectgaps=False, line={"color": "#8250df", "dash": "dash"},
            marker={"color": est_colours, "size": 6, "symbol": "diamond-open"},
            customdata=est[["low", "high", "model_version"]].fillna(""),
            hovertemplate=("block %{x}<br>estimated " + metric + " %{y:.4f} [%{customdata[0]:.4f}, "
                           "%{customdata[1]:.4f}]<br>model %{customdata[2]}<extra></extra>")))
    band = perf.dropna(subset=["at_promotion", "tolerance"])
    if not band.empty:  # one polygon per run of scored blocks: the band, too, stops at a block without a score
        higher = full["higher_is_better"].fillna(1).astype(bool)  # the bar is crossed downwards, or upwards
        low = full["at_promotion"] - full["tolerance"].where(higher, 0.0)
        high = full["at_promotion"] + full["tolerance"].where(~higher, 0.0)
        run = (low.isna() != low.isna().shift()).cumsum()
        xs: list[Any] = []
        ys: list[Any] = []
        for _, part in full[low.notna()].groupby(run[low.notna()]):
            xs += [*part["block_id"], *part["block_id"][::-1], None]
            ys += [*high[part.index], *low[part.index][::-1], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 0}, fill="toself",
                                 fillcolor="rgba(45,164,78,0.15)", name="tolerance band (value at promotion)",
                                 hoverinfo="skip"))
    colours = ["#d1242f" if d == 1 else "#0b5cad" for d in full["drifted"].fillna(0)]
    fig.add_trace(go.Scatter(
        x=axis, y=full["value"], mode="lines+markers", name=f"champion {metric}", connectgaps=False,
        marker={"color": colours, "size": 8}, line={"color": "#0b5cad"},
        customdata=full[["model_version"]].fillna(""),
        hovertemplate="block %{x}<br>" + metric + " %{y:.4f}<br>model %{customdata[0]}<extra></extra>"))
    visible = changes[changes["block_id"].isin(set(axis))] if not changes.empty else changes
    values = pd.concat([v for v in (perf["value"], estimates["low"], estimates["high"]) if not v.empty]).dropna()
    low_y = float(min(values.min(), (band["at_promotion"] - band["tolerance"]).min() if not band.empty
                      else values.min()))
    high_y = float(max(values.max(), band["at_promotion"].max() if not band.empty else 0))
    pad = max((high_y - low_y) * 0.06, 0.005)
    step = (high_y - low_y + 4 * pad) * 0.2  # one label's height: changes at one block stack upwards
    if not visible.empty:
        visible = visible.assign(level=visible.groupby("block_id").cumcount())
        visible = visible.assign(y=high_y + visible["level"] * step)
    levels = int(visible["level"].max()) + 1 if not visible.empty else 1
    for kind, colour, symbol, label in (("promoted", "#1a7f37", "triangle-up", "promoted"),
                                        ("rolled_back", "#b42318", "x", "rolled back")):
        part = visible[visible["kind"] == kind] if not visible.empty else visible
        if part.empty:
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        for block, top in zip(part["block_id"], part["y"], strict=True):
            xs += [block, block, None]
            ys += [low_y, top, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "dash": "dot", "width": 1},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=part["block_id"], y=part["y"], mode="markers+text", name=label,
            text=part["to_version"], textposition="top center", textfont={"color": colour},
            marker={"symbol": symbol, "size": 12, "color": colour},
            customdata=part[["from_version", "reason"]].fillna("-"),
            hovertemplate=f"{label} %{{text}} (from %{{customdata[0]}})<br>%{{customdata[1]}}<extra></extra>"))
    if blocks is not None and "labelled" in blocks:  # why a block has no score: it came without labels
        unlabelled = plot_frame(blocks[(blocks["labelled"] == 0)][["block_id"]])
        unlabelled = unlabelled[~unlabelled["block_id"].isin(scored)]
        if not unlabelled.empty:
            fig.add_trace(go.Scatter(
                x=unlabelled["block_id"], y=[low_y] * len(unlabelled), mode="markers", name="unlabelled: no score",
                marker={"symbol": "square-open", "size": 9, "color": "#8c959f"},
                hovertemplate="%{x}: no labels, so no score<extra></extra>"))
    points = blocks[blocks["change_point"].notna()] if blocks is not None and "change_point" in blocks else None
    if points is not None and not points.empty:  # where each change began (the rounds adapt to the rows after it)
        points = plot_frame(points[["block_id", "change_point"]])
        fig.add_trace(go.Scatter(
            x=points["block_id"], y=[low_y] * len(points), mode="markers", name="change began",
            marker={"symbol": "diamond", "size": 11, "color": "#bf8700"}, customdata=points[["change_point"]],
            hovertemplate="change began at %{customdata[0]}<extra></extra>"))
    warned = blocks[blocks["drift_warning"] == 1] if blocks is not None and "drift_warning" in blocks else None
    if warned is not None and not warned.empty:  # drift recorded as a warning: no round ([retrain] trigger)
        warned = plot_frame(warned[["block_id", "held_back"]].fillna(""))
        fig.add_trace(go.Scatter(
            x=warned["block_id"], y=[low_y] * len(warned), mode="markers", name="drift warning (no round)",
            marker={"symbol": "circle-open", "size": 10, "color": "#9a6700"}, customdata=warned[["held_back"]],
            hovertemplate="drift warning on %{x}: %{customdata[0]}<extra></extra>"))
    fig.update_layout(title=f"Champion {metric} per block, scored before it learned from the block",
                      **LAYOUT, height=400, margin=MARGIN, legend={"orientation": "h", "y": -0.25},
                      xaxis={"type": "category", "categoryorder": "array", "categoryarray": axis,
                             "automargin": True},
                      yaxis={"automargin": True, "gridcolor": "#eaeef2", "title": metric,
                             "range": [low_y - pad, high_y + (levels - 1) * step + 3 * pad]})
    return fig


def _note_figure(text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=plot_text(text), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(**LAYOUT, height=140, xaxis={"visible": False}, yaxis={"visible": False},
                      margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


# -- HTML and tables --------------------------------------------------------------------------------------


def _badge(word: str | None) -> str:
    word = word or "unknown"
    colour = HEALTH_COLOURS.get(word, "#b42318" if word == "open" else "#1a7f37" if word == "closed" else "#6b7280")
    return f'<span class="badge" data-health="{html.escape(word)}" style="background:{colour}">{html.escape(word)}</span>'


def _summary_html(summary: dict[str, Any], head: int) -> str:
    lag = head - summary["position"]
    behind = f", {lag} events not yet shown" if lag > 0 else ""
    return (f"<div class='cm-muted' id='summary-line'><b data-field='pipelines'>{summary['pipelines']}</b> "
            f"pipelines · <b data-field='blocks'>{summary['blocks']}</b> blocks · "
            f"<b data-field='events'>{summary['events']}</b> events · log position "
            f"<b data-field='position'>{summary['position']}</b>{behind}</div>")


def _overview_html(frame: pd.DataFrame, home: Any) -> str:
    if frame.empty:
        return ("<div class='cm-empty' id='empty-state'><b>No pipelines yet</b>: put a config in "
                f"<code>{html.escape(str(home))}/pipelines</code> (or pass <code>--config-dir</code>) and run "
                "<code>calmops serve</code>, or run <code>calmops serve --demo</code> to watch three demo "
                "pipelines drift and retrain.</div>")
    rows = []
    for r in frame.itertuples(index=False):
        flags = json.loads(r.recent_drift or "[]")
        spark = "".join(f"<span class='d{f}' title='{'drift' if f else 'no drift'}'></span>" for f in flags)
        champion = "-" if r.champion is None else f"{html.escape(r.champion)} <small>{html.escape(r.champion_strategy or '')}</small>"
        metric = "" if r.last_metric is None or pd.isna(r.last_metric) else f"{r.metric} {r.last_metric:.3f}"
        if metric and r.last_metric_version != r.champion:
            metric += f" by {r.last_metric_version}, before {r.champion}"
        elif metric and r.score_blocks_since and r.score_blocks_since > 0:
            metric += f", {int(r.score_blocks_since)} block{'s' * (r.score_blocks_since != 1)} old"
        circuit = _badge(r.circuit) + (f"<br><small>until {html.escape(r.circuit_until)}</small>"
                                       if r.circuit == "open" and r.circuit_until else "")
        alert = ("<span class='cm-muted'>none</span>" if not r.last_alert else
                 f"<small>{html.escape(str(r.last_alert_at or '')[:19])}</small><br>{html.escape(r.last_alert)}")
        rows.append(
            f"<tr data-pipeline='{html.escape(r.pipeline, quote=True)}'>"
            f"<td><b>{html.escape(r.pipeline)}</b></td><td data-field='health'>{_badge(r.health)}"
            f"<br><small data-field='activity' title='idle: its actor is stopped until its next file'>"
            f"{html.escape(getattr(r, 'activity', None) or 'active')}</small></td>"
            f"<td data-field='champion'>{champion}</td>"
            f"<td data-field='last_block'>{html.escape(r.last_block or '-')}</td>"
            f"<td data-field='blocks'>{r.blocks}</td>"
            f"<td data-field='drift'><span class='spark'>{spark}</span> "
            f"<span data-field='drift_count'>{r.recent_drifted}/{r.recent_checked}</span></td>"
            f"<td>{html.escape(metric)}</td><td data-field='circuit'>{circuit}</td>"
            f"<td data-field='alert'>{alert}</td></tr>")
    return ("<table class='cm-table' id='overview-table'><thead><tr><th>Pipeline</th><th>Status</th>"
            "<th>Champion</th><th>Last block</th><th>Blocks</th><th>Drift, last blocks</th><th>Last score</th>"
            "<th>Circuit</th><th>Latest alert</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def score_words(age: dict[str, Any] | None) -> tuple[float | None, str]:
    """The champion's last score and how old it is, in words: which model, which block, what came since.

    The score shown is always the current champion's own (after a promotion or a rollback, the previous
    champion's last score is not this model's); when the champion has none yet the words say so.
    """
    if not age:
        return None, "no labelled block scored yet"
    champion, version = age.get("champion"), age.get("version")
    if champion is not None and version != champion:
        if age.get("champion_value") is not None:
            return age["champion_value"], (f"{champion}'s last score, on {age['champion_block']} (an earlier "
                                           f"term as champion); not scored since it became champion again")
        return None, (f"{champion} not scored yet: no labelled block since it became champion "
                      f"({version} scored {age['value']:.4f} on {age['block_id']})")
    words = f"on {age['block_id']}"
    since = int(age.get("blocks_since") or 0)
    if since:
        words += f", {since} block{'s' * (since != 1)} ago"
    unlabelled = int(age.get("unlabelled_since") or 0)
    if unlabelled:
        first, last = age["unlabelled_first"], age["unlabelled_last"]
        later = "the later block is" if unlabelled == 1 else f"{unlabelled} later blocks are"
        words += f"; {later} unlabelled ({first if first == last else f'{first} to {last}'})"
    return age.get("value"), words


def _pipeline_card(row: dict[str, Any], age: dict[str, Any] | None = None) -> str:
    def kv(field: str, label: str, value: Any) -> str:
        return (f"<div class='kv'><small>{label}</small><b data-field='{field}'>"
                f"{html.escape('-' if value is None else str(value))}</b></div>")

    metric, words = score_words(age)
    score = (f"<div class='kv'><small>last {html.escape(row['metric'])} of the champion</small>"
             f"<b data-field='last_metric'>{'-' if metric is None else f'{metric:.4f}'}</b>"
             f"<small data-field='score_age'>{html.escape(words)}</small></div>")
    return (
        f"<div class='cm-card' data-pipeline='{html.escape(row['pipeline'], quote=True)}'>"
        f"<div class='kv'><small>health</small>{_badge(row['health'])}</div>"
        + kv("champion", "champion", f"{row['champion'] or '-'} ({row['champion_strategy'] or '-'})")
        + score
        + kv("blocks", "blocks", row["blocks"]) + kv("drifts", "drifts", row["drifts"])
        + kv("rounds", "rounds", row["rounds"]) + kv("promotions", "promotions", row["promotions"])
        + kv("challenger_rejections", "challengers rejected", row["challenger_rejections"])
        + kv("failures", "failed strategies", row["failures"]) + kv("rollbacks", "rollbacks", row["rollbacks"])
        + kv("rejected_files", "rejected files", row["rejected_files"]) + "</div>")


def _circuit_html(c: dict[str, Any]) -> str:
    if c.get("circuit") is None:
        return ""
    until = f"<div>retraining paused until <b>{html.escape(c['circuit_until'] or '?')}</b></div>" \
        if c["circuit"] == "open" else ""
    running = f"<div>round in flight: <b>{html.escape(c['current_round'])}</b></div>" if c["current_round"] else ""
    reason = f"<div class='cm-muted'>last closed: {html.escape(c['circuit_reason'])}</div>" \
        if c["circuit_reason"] else ""
    return (f"<div id='circuit-panel'><h4>Retraining circuit</h4><div>{_badge(c['circuit'])}</div>{until}"
            f"<div>failed rounds in a row: <b data-field='consecutive_failures'>{c['consecutive_failures']}</b>"
            f" · openings: <b>{c['openings']}</b></div>{running}{reason}</div>")


def _state_html(state: dict[str, Any], event: dict[str, Any] | None, position: int = 0) -> str:
    c = state["circuit"]
    counters = " · ".join(f"{k.replace('_', ' ')} <b data-field='{k}'>{v}</b>" for k, v in state["counters"].items())
    if event is None:
        at = (f"<div class='cm-muted' id='tt-event'>as of log position {position}: no event of "
              f"{html.escape(state['pipeline'])} yet</div>") if position else ""
    else:
        lead = (f"event {event['position']}" if event["position"] == position else
                f"as of log position {position} (an event of another stream); its last event up to there: "
                f"event {event['position']}")
        at = (f"<div class='cm-muted' id='tt-event' data-position='{event['position']}'>{lead}: "
              f"{html.escape(event['pipeline'] or '')} {html.escape(event['type'])}: "
              f"{html.escape(event['summary'])}</div>")
    circuit = "open until " + html.escape(c["until"] or "?") if c["open"] else "closed"
    return (f"<div id='tt-card'><div class='cm-card'><div class='kv'><small>health</small>{_badge(state['health'])}"
            f"</div><div class='kv'><small>champion</small><b data-field='champion'>{html.escape(state['champion'] or '-')}"
            f"</b></div><div class='kv'><small>last block</small><b>{html.escape(state['last_block'] or '-')}</b></div>"
            f"<div class='kv'><small>circuit</small><b>{circuit}</b></div><div class='kv'><small>events of this "
            f"pipeline</small><b data-field='events'>{state['events']}</b></div></div><p>{counters}</p>{at}</div>")


ALERT_COLUMNS = {"occurred_at": "time", "pipeline": "pipeline", "type": "type", "summary": "what happened",
                 "position": "position"}
EVENT_COLUMNS = {"position": "position", "recorded_at": "recorded at", "pipeline": "pipeline", "type": "type",
                 "summary": "summary"}
HISTORY_COLUMNS = {"position": "position", "occurred_at": "time", "health": "health", "circuit": "circuit",
                   "cause": "event", "detail": "detail"}
REJECTED_COLUMNS = {"occurred_at": "time", "file": "file", "reason_code": "reason", "message": "message",
                    "position": "position"}
MODEL_COLUMNS = {"version": "version", "status": "status", "strategy": "strategy", "lineage": "lineage",
                 "round_id": "round", "score": "holdout score", "champion_score": "champion then",
                 "training": "training data", "rows": "rows", "seconds": "fit s", "artifact": "artifact sha256",
                 "trained_at": "trained at"}
ROUND_COLUMNS = {"round_id": "round", "trigger": "trigger", "change_point": "adapting to the change at",
                 "outcome": "outcome", "seconds": "seconds", "reason": "decision"}
CANDIDATE_COLUMNS = {"version": "candidate", "strategy": "strategy", "score": "holdout score",
                     "champion_score": "champion", "gain": "gain", "status": "status now",
                     "replaced": "ensembles replaced (ipip)"}
LINEAGE_COLUMNS = {"version": "version", "strategy": "strategy", "status": "status", "round": "round",
                   "trained_at": "trained at"}
STATE_MODEL_COLUMNS = {"version": "version", "status": "status", "strategy": "strategy", "parent": "parent"}
TIME_FIELDS = frozenset({"occurred_at", "recorded_at", "trained_at"})

# A click on a heatmap cell fills the block and feature boxes and presses "Show its distributions". Plotly
# draws a new plot on each refresh, so the listener is attached to whichever plot is there.
HEATMAP_CLICK_JS = """
() => {
  const fill = (id, value) => {
    const box = document.querySelector(`#${id} textarea, #${id} input`);
    if (!box) return;
    box.value = String(value);
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };
  const attach = () => {
    const plot = document.querySelector('#drift-heatmap .js-plotly-plot');
    if (!plot || !plot.on || plot.dataset.cmClick) return;
    plot.dataset.cmClick = '1';
    plot.on('plotly_click', (ev) => {
      const point = ev && ev.points && ev.points[0];
      if (!point || point.z === null || point.z === undefined) return;
      fill('dist-block', point.x);
      fill('dist-feature', point.y);
      setTimeout(() => document.querySelector('#dist-show').click(), 50);
    });
  };
  setInterval(attach, 400);
}
"""

# Row clicks in the events table: remember the row's position in the component's value, then `submit`.
SELECT_ROW_JS = """
element.addEventListener('click', (e) => {
  const row = e.target.closest('tr[data-position]');
  if (!row) return;
  props.value = {...props.value, selected: Number(row.dataset.position)};
  trigger('submit');
});
"""


def _html_table(frame: pd.DataFrame, columns: dict[str, str], table_id: str, *, row_key: str | None = None,
                empty: str = "nothing yet", max_height: int = 420) -> str:
    """A scrollable read-only table (Gradio's Dataframe takes seconds to mount; plain HTML does not)."""
    if frame.empty:
        return f"<div class='cm-muted cm-none' id='{table_id}'>{html.escape(empty)}</div>"
    present = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{html.escape(columns[c])}</th>" for c in present)
    body = []
    for record in frame[present + ([row_key] if row_key and row_key not in present else [])].to_dict("records"):
        key = f" data-{row_key}='{html.escape(str(record[row_key]), quote=True)}'" if row_key else ""
        cells = "".join(f"<td data-field='{c}'>{html.escape(_cell(c, record[c]))}</td>" for c in present)
        body.append(f"<tr{key}>{cells}</tr>")
    return (f"<div class='cm-scroll' style='max-height:{max_height}px'><table class='cm-table' id='{table_id}'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if column in TIME_FIELDS and isinstance(value, str):
        return value[:19].replace("T", " ")  # times are UTC
    return str(value)


def _models_table(frame: pd.DataFrame) -> str:
    if not frame.empty:
        frame = frame.assign(artifact=frame["artifact_sha256"].str[:12],
                             training=frame["n_training_blocks"].astype(str) + " blocks")
    return _html_table(frame, MODEL_COLUMNS, "models-table", empty="no model trained yet")


def _rounds_table(candidates: pd.DataFrame, rounds: pd.DataFrame) -> str:
    """The latest rounds, newest first: the round's trigger, outcome and decision once (spanning its rows),
    then one row per candidate with its scores and status. The ipip column appears only when an ipip
    candidate is listed (it is always empty otherwise)."""
    if rounds.empty:
        return _html_table(rounds, ROUND_COLUMNS, "rounds-table", empty="no retraining round yet")
    candidate_columns = dict(CANDIDATE_COLUMNS)
    ipip = not candidates.empty and (candidates["strategy"].eq("ipip").any() or candidates["replaced"].notna().any())
    if not ipip:
        candidate_columns.pop("replaced")
    round_columns = {c: t for c, t in ROUND_COLUMNS.items() if c in rounds.columns}
    if "change_point" in rounds and rounds["change_point"].isna().all():
        round_columns.pop("change_point", None)
    head = "".join(f"<th>{html.escape(t)}</th>" for t in [*round_columns.values(), *candidate_columns.values()])
    body = []
    for r in rounds.sort_values("number", ascending=False).to_dict("records"):
        own = candidates[candidates["round_id"] == r["round_id"]] if not candidates.empty else candidates
        own = own.sort_values("version", key=_version_key) if not own.empty else own
        rows = own.to_dict("records") or [{}]
        if r.get("outcome") == "promoted" and r.get("promoted_version"):
            r = {**r, "outcome": f"promoted {r['promoted_version']}"}
        span = f" rowspan='{len(rows)}'" if len(rows) > 1 else ""
        lead = "".join(f"<td data-field='{c}'{span} class='cm-round'>{html.escape(_cell(c, r.get(c)))}</td>"
                       for c in round_columns)
        for i, c in enumerate(rows):
            cells = "".join(f"<td data-field='{k}'>{html.escape(_cell(k, c.get(k)))}</td>" for k in candidate_columns)
            first = " class='cm-round-first'" if i == 0 else ""
            body.append(f"<tr data-round='{html.escape(str(r['round_id']), quote=True)}'{first}>"
                        f"{lead if i == 0 else ''}{cells}</tr>")
    return (f"<div class='cm-scroll' style='max-height:420px'><table class='cm-table' id='rounds-table'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def _version_key(column: pd.Series) -> pd.Series:
    if column.name == "version":
        return column.fillna("v0").str[1:].astype(int)
    return column
