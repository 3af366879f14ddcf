"""Send one alert body to one sink: an HTTP POST (urllib), a program's standard input, or a line in a file.

`send` never raises for a sink's failure: it returns an `Answer` (ok, status, text) that the dispatcher
records or retries. Secrets (`${ENV_VAR}` in a URL or a header) are resolved here, at the moment of sending,
and `scrub` takes their values out of any text that leaves this module, so errors quoting a URL stay safe.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config.alerts import AlertSink, references, resolve

__all__ = ["Answer", "scrub", "send"]

ANSWER_CHARS = 300  # what is kept of a receiver's answer or an error


@dataclass(frozen=True, slots=True)
class Answer:
    """What a sink answered: accepted or not, the HTTP status or exit code, and a short text."""

    ok: bool
    status: int | None
    text: str


def send(sink: AlertSink, body: dict[str, Any], *, base_dir: str = ".",
         env: Mapping[str, str] | None = None) -> Answer:
    """Deliver `body` to `sink` once (no retry here); any failure becomes a not-ok Answer."""
    env = os.environ if env is None else env
    try:
        if sink.sink == "webhook":
            answer = _post(sink, body, env)
        elif sink.sink == "command":
            answer = _run(sink, body)
        else:
            answer = _append(sink, body, base_dir)
    except Exception as err:  # a sink's failure is an outcome to record, never a crash of the dispatcher
        answer = Answer(False, None, f"{type(err).__name__}: {err}")
    return Answer(answer.ok, answer.status, scrub(answer.text, sink, env)[:ANSWER_CHARS])


def scrub(text: str, sink: AlertSink, env: Mapping[str, str]) -> str:
    """`text` with the value of every variable the sink refers to written back as `${NAME}`."""
    for source in [sink.url or "", *sink.headers.values()]:
        for name in references(source):
            value = env.get(name)
            if value:
                text = text.replace(value, f"${{{name}}}")
    return text


def _post(sink: AlertSink, body: dict[str, Any], env: Mapping[str, str]) -> Answer:
    headers = {"Content-Type": "application/json", "User-Agent": "calmops-alerts"}
    headers.update({k: resolve(v, env) for k, v in sink.headers.items()})
    request = urllib.request.Request(resolve(sink.url or "", env), data=json.dumps(body).encode(),
                                     headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=sink.timeout_seconds) as response:
            text = response.read(ANSWER_CHARS).decode("utf-8", "replace")
            return Answer(200 <= response.status < 300, response.status, text)
    except urllib.error.HTTPError as err:
        return Answer(False, err.code, f"HTTP {err.code}: {err.read(ANSWER_CHARS).decode('utf-8', 'replace')}")
    except urllib.error.URLError as err:
        return Answer(False, None, f"cannot reach the webhook: {err.reason}")
    except TimeoutError:
        return Answer(False, None, f"no answer within {sink.timeout_seconds:g} s")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an invitation: an alert (and its headers) goes only where it was told."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy from the environment either: the configured URL is the only place an alert goes.
_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _run(sink: AlertSink, body: dict[str, Any]) -> Answer:
    try:
        done = subprocess.run(list(sink.command or ()), input=json.dumps(body).encode(), capture_output=True,
                              timeout=sink.timeout_seconds, check=False)
    except subprocess.TimeoutExpired:
        return Answer(False, None, f"the command did not finish within {sink.timeout_seconds:g} s")
    out = (done.stdout or done.stderr or b"").decode("utf-8", "replace").strip()
    return Answer(done.returncode == 0, done.returncode, out if done.returncode == 0 else
                  f"exit code {done.returncode}: {(done.stderr or done.stdout or b'').decode('utf-8', 'replace')}")


def _append(sink: AlertSink, body: dict[str, Any], base_dir: str) -> Answer:
    path = Path(base_dir) / (sink.path or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(body, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as handle:  # one write of one line: readers never see half of it
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return Answer(True, None, f"appended to {path}")
