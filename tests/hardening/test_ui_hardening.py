"""The UI against a hostile user or page: markup in the data, password guessing, routes without a login,
and DNS rebinding.

Charts are checked on the figures the app builds (their JSON is what the browser's Plotly draws); the server
rules on a real server on 127.0.0.1 and a free port, over HTTP. The servers serve an empty home: these rules
do not depend on what the log holds (the browser tests in tests/ui/test_browser.py use the scenario home).
"""

from __future__ import annotations

import concurrent.futures
import html
import http.client
import json
import re
import socket
import urllib.parse
from pathlib import Path

import pandas as pd
import pytest
import requests

USER, PASSWORD = "operator", "correct horse"
FEATURE = '<a href="https://evil.example/login">Session expired</a>'
BLOCK = '<b style="font-size:60px">b2</b>'
REASON = "<a href='https://evil.example'>canary</a> & co"
METRIC = "<i>f1</i>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(tmp_path: Path):
    """`serve(**launch_kwargs)`: the UI of an empty home on 127.0.0.1 and a free port; stopped after the test."""
    from ui.server import launch

    handles = []

    def start(**kwargs):
        home = tmp_path / f"home{len(handles)}"
        home.mkdir()
        handles.append(launch(home, port=free_port(), block=False, **kwargs))
        return handles[-1]

    yield start
    for handle in handles:
        handle.close()


def strings(node) -> list[str]:
    """Every string in a figure's JSON."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


# -- markup in chart labels ---------------------------------------------------------------------------


def test_plot_text_escapes_what_plotly_reads_as_markup_and_nothing_else() -> None:
    from ui.plot_text import plot_frame, plot_text, plot_texts

    assert plot_text(FEATURE) == '&lt;a href="https://evil.example/login"&gt;Session expired&lt;/a&gt;'
    assert plot_text("a & b") == "a &amp; b" and plot_text("&lt;") == "&amp;lt;"  # typed entities stay typed
    assert plot_texts(["b1", None, 3, float("nan")])[:3] == ["b1", None, 3]
    frame = pd.DataFrame({"feature": [FEATURE, "x"], "effect": [0.5, None], "drifted": [1, 0]})
    out = plot_frame(frame)
    assert out["feature"].tolist() == [plot_text(FEATURE), "x"]
    assert out["effect"].iloc[0] == 0.5 and out["drifted"].dtype == frame["drifted"].dtype
    assert frame["feature"].iloc[0] == FEATURE  # a copy: the frames the HTML tables escape stay raw


def test_user_text_in_the_charts_is_drawn_as_text_never_as_markup() -> None:
    from ui.app import _drift_figure, _note_figure, _performance_figure

    cells = pd.DataFrame({"seq": [1, 1, 2, 2], "block_id": ["b1", "b1", BLOCK, BLOCK],
                          "feature": [FEATURE, "age", FEATURE, "age"], "rank": [1, 2, 1, 2],
                          "effect": [0.9, 0.1, 0.8, 0.2], "effect_name": ["d"] * 4,
                          "p_adjusted": [0.001, 0.5, 0.002, 0.6], "drifted": [1, 0, 1, 0],
                          "kind": ["numeric"] * 4, "min_effect": [0.1] * 4})
    perf = pd.DataFrame({"seq": [1, 2], "block_id": ["b1", BLOCK], "model_version": ["v1", "v2"],
                         "metric": [METRIC] * 2, "value": [0.9, 0.8], "at_promotion": [0.91, 0.91],
                         "tolerance": [0.05, 0.05], "higher_is_better": [1, 1], "drifted": [0, 1]})
    changes = pd.DataFrame({"position": [7], "kind": ["rolled_back"], "from_version": ["v2"],
                            "to_version": ["v1"], "block_seq": [2], "block_id": [BLOCK], "reason": [REASON],
                            "occurred_at": ["2026-03-01T00:00:00"]})
    drift = json.loads(_drift_figure(cells, ["b1", BLOCK]).to_json())
    performance = json.loads(_performance_figure(perf, changes, ["b1", BLOCK], {"metric": METRIC}).to_json())
    note = json.loads(_note_figure(FEATURE).to_json())
    for figure in (drift, performance, note):
        for raw in (FEATURE, BLOCK, REASON, METRIC):
            assert not [s for s in strings(figure) if raw in s], f"{raw} reaches Plotly as markup"
    # escaped once, where the user reads it: axes, hover data, titles, legend, annotations
    heatmap = drift["data"][0]
    assert heatmap["y"] == ["age", html.escape(FEATURE, quote=False)]
    assert heatmap["x"] == ["b1", html.escape(BLOCK, quote=False)]
    assert performance["layout"]["xaxis"]["categoryarray"] == ["b1", html.escape(BLOCK, quote=False)]
    assert "&lt;i&gt;f1&lt;/i&gt;" in performance["layout"]["title"]["text"]
    assert any(t.get("name") == "champion &lt;i&gt;f1&lt;/i&gt;" for t in performance["data"])
    assert [html.escape(REASON, quote=False)] in [row[1:] for t in performance["data"]
                                                   for row in t.get("customdata") or [] if len(row) > 1]
    assert note["layout"]["annotations"][0]["text"] == html.escape(FEATURE, quote=False)
    assert cells["feature"].iloc[0] == FEATURE and changes["reason"].iloc[0] == REASON  # inputs untouched


# -- password guessing --------------------------------------------------------------------------------


def test_failed_logins_lock_an_address_out_for_twice_as_long_each_time() -> None:
    from ui.login import BASE_DELAY_S, FORGET_AFTER_S, FREE_FAILURES, MAX_DELAY_S, LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    assert (FREE_FAILURES, BASE_DELAY_S, MAX_DELAY_S) == (5, 1.0, 300.0)  # the numbers docs/SECURITY.md states
    assert [throttle.failed("a") for _ in range(4)] == [0, 0, 0, 0] and throttle.wait("a") == 0
    delays = []
    for _ in range(12):
        delays.append(throttle.failed("a"))
        assert throttle.wait("a") == delays[-1] and throttle.wait("b") == 0  # one address, not everyone
        now[0] += delays[-1]
        assert throttle.wait("a") == 0
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    throttle.succeeded("a")
    assert throttle.failed("a") == 0  # a login clears the count
    for _ in range(10):
        throttle.failed("c")
    now[0] += FORGET_AFTER_S + 1
    assert throttle.wait("c") == 0 and throttle.failed("c") == 0  # an hour without a failure: a fresh start


def login(port: int, password: str, source: str = "127.0.0.1") -> tuple[int, str | None]:
    """POST the login form from the loopback address `source` (127.0.0.0/8 is all this machine)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", "/login", urllib.parse.urlencode({"username": USER, "password": password}),
                     {"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        conn.close()


def test_a_hundred_wrong_passwords_get_five_checks_then_a_lock_out(serve) -> None:
    url = serve(auth=(USER, PASSWORD))
    port = int(urllib.parse.urlsplit(url).port)
    assert [login(port, f"guess {i}")[0] for i in range(5)] == [400] * 5
    assert login(port, PASSWORD) == (429, "1")  # locked out for 1 s: not even the right password is checked
    rest = [login(port, f"guess {i}")[0] for i in range(5, 100)]
    # refused, but for a guess that arrives after a lock-out ran out (1 s, then 2 s...): none on a quick machine
    assert set(rest) <= {400, 429} and rest.count(400) <= 2, rest
    # parallel guesses from another address cannot slip past the count; a third address is not locked out
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        burst = list(pool.map(lambda i: login(port, f"parallel {i}", "127.0.0.2")[0], range(20)))
    assert burst.count(400) in (5, 6) and burst.count(429) == 20 - burst.count(400), burst
    assert login(port, PASSWORD, "127.0.0.3") == (200, None)


# -- routes behind the login --------------------------------------------------------------------------


def routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route of the running app, Gradio's API router included."""
    found = []
    for route in app.routes:
        inner = getattr(route, "original_router", None)  # an included router
        found += routes(inner) if inner is not None else [(m, route.path) for m in getattr(route, "methods", ())]
    return found


# All a visitor without the login may reach: the login page, the files it loads, the form it posts to.
PUBLIC_PATHS = {"/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/gradio_api/theme.css",
                "/robots.txt", "/manifest.json", "/pwa_icon"}
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon/")


def test_with_a_login_every_route_but_the_login_page_answers_401(serve) -> None:
    url = serve(auth=(USER, PASSWORD))
    found = routes(url.app.server_app)
    assert len(found) > 60
    anonymous = requests.Session()
    for method, path in [*found, ("GET", "/openapi.json"), ("GET", "/docs")]:
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            continue
        concrete = re.sub(r"\{[^}]*\}", "x", path).lstrip("/")
        answer = anonymous.request(method, url + concrete, timeout=10, allow_redirects=False)
        assert answer.status_code == 401, (method, path, answer.status_code, answer.text[:200])
    # the login page itself, and what it loads, need no login
    page = anonymous.get(url, timeout=10)
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    script = re.search(r'src="\.?/?(assets/[^"]+\.js)"', page.text).group(1)
    assert anonymous.get(url + script, timeout=10).status_code == 200
    # after the login, Gradio's routes answer as before
    user = requests.Session()
    assert user.post(url + "login", data={"username": USER, "password": PASSWORD}, timeout=10).status_code == 200
    assert user.get(url + "gradio_api/app_id", timeout=10).status_code == 200
    assert user.get(url + "gradio_api/info", timeout=10).status_code == 200


# -- DNS rebinding ------------------------------------------------------------------------------------


def test_a_request_for_a_foreign_host_name_is_refused(serve) -> None:
    def status(url: str, host: str, path: str = "") -> int:
        return requests.get(url + path, headers={"Host": host}, timeout=10).status_code

    url = serve()  # no login: only the Host header stands between a rebound name and the data
    port = urllib.parse.urlsplit(url).port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", f"10.0.0.5:{port}",
                 f"calmops.example.org:{port}"):
        assert status(url, host) == 400, host
        assert status(url, host, "gradio_api/info") == 400, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost:9000", "LOCALHOST."):
        assert status(url, host) == 200, host
    assert status(url, f"localhost:{port}", "gradio_api/info") == 200
    # a name of the operator's choosing (a reverse proxy's, a machine's) is allowed by configuration
    named = serve(allowed_hosts=["calmops.example.org"])
    port = urllib.parse.urlsplit(named).port
    assert status(named, f"calmops.example.org:{port}") == status(named, "CALMOPS.example.org.") == 200
    assert status(named, f"evil.example:{port}") == 400


def test_the_host_rules_for_each_binding() -> None:
    from ui.hosts import allowed_names, host_allowed

    local = allowed_names("127.0.0.1")
    assert not host_allowed("192.168.1.20:7860", local) and not host_allowed("", local)
    everywhere = allowed_names("0.0.0.0", "ui.example.org, proxy.example.org:443")
    assert host_allowed("192.168.1.20:7860", everywhere) and host_allowed("[fe80::1]:7860", everywhere)
    assert host_allowed("proxy.example.org", everywhere) and host_allowed("ui.example.org:8080", everywhere)
    assert not host_allowed("evil.example:7860", everywhere)  # a name must be allowed, even on 0.0.0.0
    assert host_allowed("myhost:7860", allowed_names("myhost"))  # the bound name itself
    assert host_allowed("anything", allowed_names("127.0.0.1", ["*"]))
