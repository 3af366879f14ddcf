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
import pandas as pd
import plotly.graph_objects as go

from ui.plot_text import plot_frame, plot_text, plot_texts
from ui.queries import Queries

__all__ = ["APP_CSS", "build_app"]

REFRESH_SECONDS = 5.0
MAX_FEATURES = 25  # heatmap rows: the features with the largest effect in the window
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
                if actions is not None:
                    action_outputs = _operator_panel(actions, pick)

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
            event = queries.event(int(position)) if position else None
            lineage = _html_table(pd.DataFrame.from_records(state["lineage"]), LINEAGE_COLUMNS,
                                  "tt-lineage-table", empty="no champion yet")
            models = _html_table(pd.DataFrame.from_records(state["models"]), STATE_MODEL_COLUMNS,
                                 "tt-models-table", empty="no model yet", max_height=360)
            return [_state_html(state, event), lineage, models]

        def tick(last_seen: int, current, tt_current, last_blocks, *filters):
            if queries.position() == last_seen:
                return [gr.skip()] * (len(overview_outputs) + len(pipeline_outputs) + 2)
            top = render_overview(current, tt_current)
            page = render_pipeline(choose(current, queries.pipeline_names()), last_blocks)
            events = render_events(*filters) if not int(filters[-1] or 0) else [gr.skip(), gr.skip()]
            return [*top, *page, *events]

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


def _operator_panel(actions: Any, pick: gr.Dropdown) -> list[Any]:
    """Rollback and resume, recorded in the log with the operator's reason (shown only behind a login)."""
    with gr.Accordion("Operator actions (recorded in the log)", open=False, elem_id="operator"):
        with gr.Row():
            version = gr.Dropdown(label="Roll back to version", choices=[], elem_id="rollback-version")
            reason = gr.Textbox(label="Reason (required)", elem_id="action-reason")
        with gr.Row():
            rollback = gr.Button("Roll back", variant="stop", elem_id="rollback")
            resume = gr.Button("Resume retraining", elem_id="resume")
        result = gr.Markdown(elem_id="action-result")

    def run(kind: str, name: str | None, chosen: str | None, why: str, request: gr.Request) -> str:
        if request is None or not getattr(request, "username", None):
            return "Operator actions need a login."
        if not name:
            return "Pick a pipeline first."
        if not (why or "").strip():
            return "Give a reason: it is recorded in the log with the action."
        try:
            if kind == "rollback":
                if not chosen:
                    return "Pick the version to roll back to."
                outcome = actions.rollback(name, chosen, f"{why.strip()} (by {request.username})")
            else:
                outcome = actions.resume(name, f"{why.strip()} (by {request.username})")
        except Exception as err:  # the actor refused (unknown version, already champion...)
            return f"**{kind} refused:** {html.escape(str(err))}"
        if isinstance(outcome, dict):
            ok, message = outcome.get("ok", True), outcome.get("message") or json.dumps(outcome)
            return f"**{kind} {'done' if ok else 'refused'}:** {html.escape(str(message))}"
        return f"**{kind} done:** {html.escape(str(outcome))}"

    def do_rollback(name, chosen, why, request: gr.Request):
        return run("rollback", name, chosen, why, request)

    def do_resume(name, why, request: gr.Request):
        return run("resume", name, None, why, request)

    rollback.click(do_rollback, [pick, version, reason], result, api_visibility="private")
    resume.click(do_resume, [pick, reason], result, api_visibility="private")
    return [version]


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
        _pipeline_card(row),
        _drift_figure(queries.drift_matrix(name, last_blocks), order),
        _performance_figure(queries.performance(name, last_blocks), queries.champion_changes(name), order, row,
                            blocks),
        _models_table(models),
        _rounds_table(queries.candidates(name), queries.rounds(name)),
        _circuit_html(queries.circuit(name)),
        _html_table(queries.health_history(name), HISTORY_COLUMNS, "history-table", max_height=300),
        _html_table(queries.rejected_files(name), REJECTED_COLUMNS, "rejected-table", empty="no file rejected",
                    max_height=300),
    ]
    if with_actions:
        versions = [v for v in models["version"].tolist() if v != row["champion"]] if not models.empty else []
        page.append(gr.Dropdown(choices=versions, value=None))
    return page


def _drift_figure(cells: pd.DataFrame, order: list[str]) -> go.Figure | None:
    if cells.empty:
        return _note_figure("No drift checks in this window yet (they start once a champion exists).")
    cells, order = plot_frame(cells), plot_texts(order)  # feature names and block ids are the user's text
    strongest = cells.groupby("feature")["effect"].max().sort_values(ascending=False)
    features = strongest.index[:MAX_FEATURES].tolist()
    cells = cells[cells["feature"].isin(features)]
    blocks = order or sorted(set(cells["block_id"]))  # every block of the window: unchecked ones stay blank
    grid = cells.pivot(index="feature", columns="block_id", values=["effect", "drifted", "p_adjusted"])
    effect, drifted, p_adj = (grid[v].reindex(index=features[::-1], columns=blocks)
                              for v in ("effect", "drifted", "p_adjusted"))
    marks = [["✕" if v == 1 else "" for v in row] for row in drifted.to_numpy()]
    fig = go.Figure(go.Heatmap(
        z=effect.to_numpy(), x=blocks, y=effect.index.tolist(), text=marks, texttemplate="%{text}",
        customdata=p_adj.to_numpy(), colorscale="YlOrRd", colorbar={"title": "effect", "thickness": 12, "nticks": 4}, xgap=1, ygap=1,
        hovertemplate="block %{x}<br>%{y}: effect %{z:.3f}, p_adj %{customdata:.2g} %{text}<extra></extra>",
    ))
    title = "Drift effect per feature (✕ = drifted)"
    if len(strongest) > MAX_FEATURES:
        title += f": the {MAX_FEATURES} strongest of {len(strongest)} features"
    fig.update_layout(title=title, **LAYOUT, height=max(240, 160 + 26 * len(features)), margin=MARGIN,
                      xaxis={"type": "category", "automargin": True}, yaxis={"automargin": True})
    return fig


def _performance_figure(perf: pd.DataFrame, changes: pd.DataFrame, order: list[str],
                        row: dict[str, Any], blocks: pd.DataFrame | None = None) -> go.Figure:
    metric = plot_text(row.get("metric") or "metric")
    if perf.empty:
        return _note_figure("No labelled block has been scored by a champion in this window yet.")
    perf, changes, order = plot_frame(perf), plot_frame(changes), plot_texts(order)  # ids, versions, reasons
    x = perf["block_id"].tolist()
    fig = go.Figure()
    band = perf.dropna(subset=["at_promotion", "tolerance"])
    if not band.empty:
        higher = band["higher_is_better"].fillna(1).astype(bool)  # the bar is crossed downwards, or upwards
        low = band["at_promotion"] - band["tolerance"].where(higher, 0.0)
        high = band["at_promotion"] + band["tolerance"].where(~higher, 0.0)
        fig.add_trace(go.Scatter(x=band["block_id"], y=high, mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=band["block_id"], y=low, mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor="rgba(45,164,78,0.15)", name="tolerance band (value at promotion)",
                                 hoverinfo="skip"))
    colours = ["#d1242f" if d == 1 else "#0b5cad" for d in perf["drifted"].fillna(0)]
    fig.add_trace(go.Scatter(
        x=x, y=perf["value"], mode="lines+markers", name=f"champion {metric}",
        marker={"color": colours, "size": 8}, line={"color": "#0b5cad"}, customdata=perf[["model_version"]],
        hovertemplate="block %{x}<br>" + metric + " %{y:.4f}<br>model %{customdata[0]}<extra></extra>"))
    visible = changes[changes["block_id"].isin(set(x) | set(order))] if not changes.empty else changes
    low_y = float(min(perf["value"].min(), (band["at_promotion"] - band["tolerance"]).min() if not band.empty
                      else perf["value"].min()))
    high_y = float(max(perf["value"].max(), band["at_promotion"].max() if not band.empty else 0))
    pad = max((high_y - low_y) * 0.06, 0.005)
    for kind, colour, symbol, label in (("promoted", "#1a7f37", "triangle-up", "promoted"),
                                        ("rolled_back", "#b42318", "x", "rolled back")):
        part = visible[visible["kind"] == kind] if not visible.empty else visible
        if part.empty:
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        for block in part["block_id"]:
            xs += [block, block, None]
            ys += [low_y, high_y, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "dash": "dot", "width": 1},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=part["block_id"], y=[high_y] * len(part), mode="markers+text", name=label,
            text=part["to_version"], textposition="top center",
            marker={"symbol": symbol, "size": 12, "color": colour},
            customdata=part[["from_version", "reason"]].fillna("-"),
            hovertemplate=f"{label} %{{text}} (from %{{customdata[0]}})<br>%{{customdata[1]}}<extra></extra>"))
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
    categories = [b for b in order if b in set(x) | set(visible["block_id"] if not visible.empty else [])]
    fig.update_layout(title=f"Champion {metric} per block, scored before it learned from the block",
                      **LAYOUT, height=400, margin=MARGIN, legend={"orientation": "h", "y": -0.25},
                      xaxis={"type": "category", "categoryorder": "array", "categoryarray": categories or x,
                             "automargin": True},
                      yaxis={"automargin": True, "gridcolor": "#eaeef2", "title": metric,
                             "range": [low_y - pad, high_y + 3 * pad]})
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
        circuit = _badge(r.circuit) + (f"<br><small>until {html.escape(r.circuit_until)}</small>"
                                       if r.circuit == "open" and r.circuit_until else "")
        alert = ("<span class='cm-muted'>none</span>" if not r.last_alert else
                 f"<small>{html.escape(str(r.last_alert_at or '')[:19])}</small><br>{html.escape(r.last_alert)}")
        rows.append(
            f"<tr data-pipeline='{html.escape(r.pipeline, quote=True)}'>"
            f"<td><b>{html.escape(r.pipeline)}</b></td><td data-field='health'>{_badge(r.health)}</td>"
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


def _pipeline_card(row: dict[str, Any]) -> str:
    def kv(field: str, label: str, value: Any) -> str:
        return (f"<div class='kv'><small>{label}</small><b data-field='{field}'>"
                f"{html.escape('-' if value is None else str(value))}</b></div>")

    metric = row.get("last_metric")
    return (
        f"<div class='cm-card' data-pipeline='{html.escape(row['pipeline'], quote=True)}'>"
        f"<div class='kv'><small>health</small>{_badge(row['health'])}</div>"
        + kv("champion", "champion", f"{row['champion'] or '-'} ({row['champion_strategy'] or '-'})")
        + kv("last_metric", f"last {row['metric']}", None if metric is None else f"{metric:.4f}")
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


def _state_html(state: dict[str, Any], event: dict[str, Any] | None) -> str:
    c = state["circuit"]
    counters = " · ".join(f"{k.replace('_', ' ')} <b data-field='{k}'>{v}</b>" for k, v in state["counters"].items())
    at = (f"<div class='cm-muted'>event {event['position']}: {html.escape(event['pipeline'] or '')} "
          f"{html.escape(event['type'])}: {html.escape(event['summary'])}</div>") if event else ""
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
                 "outcome": "outcome", "seconds": "seconds", "version": "candidate",
                 "strategy": "strategy", "score": "holdout score", "champion_score": "champion", "gain": "gain",
                 "status": "status", "replaced": "ensembles replaced (ipip)", "reason": "decision"}
LINEAGE_COLUMNS = {"version": "version", "strategy": "strategy", "status": "status", "round": "round",
                   "trained_at": "trained at"}
STATE_MODEL_COLUMNS = {"version": "version", "status": "status", "strategy": "strategy", "parent": "parent"}
TIME_FIELDS = frozenset({"occurred_at", "recorded_at", "trained_at"})

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
    """One row per candidate of the latest rounds; a round without any candidate shows as one row."""
    if rounds.empty:
        return _html_table(rounds, ROUND_COLUMNS, "rounds-table", empty="no retraining round yet")
    if candidates.empty:
        merged = rounds.assign(version=None, strategy=None, score=None, champion_score=None, gain=None,
                               status=None, replaced=None)
    else:
        merged = rounds.merge(candidates[["round_id", "version", "strategy", "score", "champion_score", "gain",
                                          "status", "replaced"]], on="round_id", how="left")
    merged = merged.sort_values(["number", "version"], ascending=[False, True], key=_version_key)
    return _html_table(merged, ROUND_COLUMNS, "rounds-table")


def _version_key(column: pd.Series) -> pd.Series:
    if column.name == "version":
        return column.fillna("v0").str[1:].astype(int)
    return column
