"""`[[alerts]]`: where a pipeline's news goes (webhook, command, file), as settings only.

A sink names the event types it wants, a minimum severity, its rate limit and its retry rule. Secrets are
written as `${ENV_VAR}` references and stay references here: they are resolved only by the dispatcher when it
sends (`resolve`), so neither the log nor the projections ever see them. The shape of a sink is checked when
the config is read (`AlertSink.__post_init__`); what depends on the machine (a variable that is not set, a
program that is not installed, a reference that resolves to a non-http URL) is checked by `check_machine`,
given the environment and a program lookup, when `serve` or `alerts test` loads the config. Every key and
default is in docs/alerts.md.

>>> sink = AlertSink(sink="webhook", url="http://127.0.0.1:9000/hook")
>>> sink.events[:2], sink.max_per_window, sink.window_seconds
(('DriftDetected', 'ModelPromoted'), 5, 3600.0)
>>> AlertSink(sink="webhook", url="ftp://example.com/x")
Traceback (most recent call last):
...
ValueError: url must start with http:// or https://, got 'ftp://example.com/x'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["ALERT_EVENT_TYPES", "SEVERITY", "AlertSink", "MachineError", "check_machine", "references",
           "resolve", "sink_names"]

# Each alert-worthy event type and its severity. `severity` of DriftDetected falls to "info" when the drift was
# a warning only (`starts_round = false`): see pipelines/alerts/message.py.
SEVERITY: dict[str, str] = {
    "DriftDetected": "warning",
    "ModelPromoted": "info",
    "ChallengerRejected": "info",
    "ModelRolledBack": "warning",
    "CircuitOpened": "critical",
    "CircuitClosed": "info",
    "BlockRejected": "warning",
    "RetrainFailed": "warning",
}
ALERT_EVENT_TYPES: tuple[str, ...] = tuple(SEVERITY)
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
DEFAULT_EVENTS: tuple[str, ...] = ("DriftDetected", "ModelPromoted", "ChallengerRejected", "ModelRolledBack",
                                   "CircuitOpened", "BlockRejected")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, kw_only=True)
class AlertSink:
    """One `[[alerts]]` table: a sink, the events it wants, and how hard to try and how often to speak."""

    sink: Literal["webhook", "command", "file"]
    name: str | None = None  # default: "<sink>-<n>", n counting the tables from 1
    url: str | None = None  # webhook
    headers: dict[str, str] = field(default_factory=dict)  # webhook; values may hold ${ENV_VAR}
    command: tuple[str, ...] | None = None  # command: the program and its arguments (no shell)
    path: str | None = None  # file: JSON lines appended here (relative: to the config file's folder)
    events: tuple[str, ...] = DEFAULT_EVENTS
    min_severity: Literal["info", "warning", "critical"] = "info"
    max_per_window: int = 5  # alerts per pipeline and event type in one window; then one digest
    window_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    max_attempts: int = 6
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.name is not None and not _NAME.fullmatch(self.name):
            raise ValueError(f"name must be 1-64 characters of letters, digits, '_', '.', '-', got {self.name!r}")
        needs = {"webhook": "url", "command": "command", "file": "path"}[self.sink]
        for key in ("url", "command", "path"):
            given = getattr(self, key) is not None
            if key == needs and not given:
                raise ValueError(f"{key} is required for sink = {self.sink!r}")
            if key != needs and given:
                raise ValueError(f"{key} does not apply to sink = {self.sink!r} (it takes {needs})")
        if self.headers and self.sink != "webhook":
            raise ValueError(f"headers does not apply to sink = {self.sink!r}")
        for text in [self.url or "", *self.headers.values()]:
            _check_references(text)
        if self.url is not None and not _REFERENCE.search(self.url):
            check_url(self.url)
        if self.command is not None and (not self.command or not self.command[0].strip()):
            raise ValueError("command must name a program: command = [\"/path/to/program\", \"arg\", ...]")
        if self.path is not None and not self.path.strip():
            raise ValueError("path must name a file")
        for name in self.events:
            if name not in SEVERITY:
                close = difflib.get_close_matches(name, ALERT_EVENT_TYPES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"events: {name!r} is not an alert-worthy event type{hint}; allowed: "
                                 f"{', '.join(ALERT_EVENT_TYPES)}")
        if not self.events:
            raise ValueError("events must list at least one event type")
        for key, low in (("max_per_window", 1), ("max_attempts", 1)):
            if getattr(self, key) < low:
                raise ValueError(f"{key} must be at least {low}, got {getattr(self, key)}")
        for key in ("window_seconds", "timeout_seconds", "backoff_seconds"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("max_backoff_seconds must be at least backoff_seconds")


def check_url(url: str) -> None:
    """A webhook URL must be http(s) with a host: no file://, ftp:// or bare paths.

    >>> check_url("file:///etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: url must start with http:// or https://, got 'file:///etc/passwd'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"url has no host: {url!r}")


def _check_references(text: str) -> None:
    rest = _REFERENCE.sub("", text)
    if "${" in rest:
        raise ValueError(f"{text!r} holds a malformed secret reference; write ${{NAME}} with NAME made of "
                         "letters, digits and '_'")


def references(text: str) -> list[str]:
    """The environment variables `text` refers to.

    >>> references("Bearer ${TOKEN} for ${TEAM_2}")
    ['TOKEN', 'TEAM_2']
    """
    return _REFERENCE.findall(text)


def resolve(text: str, env: Mapping[str, str]) -> str:
    """`text` with each `${NAME}` replaced by `env[NAME]` (a KeyError for a variable that is not set).

    >>> resolve("https://hooks.example/${HOOK}", {"HOOK": "T0/B0/x"})
    'https://hooks.example/T0/B0/x'
    """
    return _REFERENCE.sub(lambda m: env[m.group(1)], text)


def sink_names(sinks: Iterable[AlertSink]) -> list[str]:
    """The sinks' names: `name` when given, else "<sink>-<n>" by position among the tables.

    >>> sink_names([AlertSink(sink="file", path="a.jsonl"), AlertSink(sink="file", path="b", name="ship")])
    ['file-1', 'ship']
    """
    return [s.name or f"{s.sink}-{i}" for i, s in enumerate(sinks, 1)]


def check_names(sinks: tuple[AlertSink, ...]) -> None:
    names = sink_names(sinks)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"two sinks are named {twice[0]!r}; give each [[alerts]] table its own name")


class MachineError(ValueError):
    """A sink that is well formed but cannot work on this machine; `key` is its dotted config key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.reason = key, message


def check_machine(sinks: Iterable[AlertSink], env: Mapping[str, str], which: Callable[[str], str | None],
                  prefix: str = "alerts") -> None:
    """Raise MachineError naming the key when a referenced variable is unset, a resolved URL is not http(s)
    or a command's program cannot be found (`which`: e.g. `shutil.which`)."""
    for i, sink in enumerate(sinks):
        key = f"{prefix}[{i}]"
        texts = [("url", sink.url or "")] + [(f"headers.{h}", v) for h, v in sink.headers.items()]
        for where, text in texts:
            for name in references(text):
                if name not in env:
                    raise MachineError(f"{key}.{where}", f"refers to ${{{name}}}, which is not set in the "
                                                        f"environment; export {name} before starting calmops")
        if sink.url is not None and references(sink.url):
            try:
                check_url(resolve(sink.url, env))
            except ValueError as err:  # the resolved URL is a secret: name the variable, never the value
                raise MachineError(f"{key}.url", f"${{{references(sink.url)[0]}}} does not hold an http(s) "
                                                 "URL with a host") from err
        if sink.command is not None and which(sink.command[0]) is None:
            raise MachineError(f"{key}.command", f"program {sink.command[0]!r} not found (not on PATH, or not "
                                                 "executable)")
