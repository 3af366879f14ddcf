"""Which sink hears which pipelines: a pipeline's own `[[alerts]]`, else its config folder's `alerts.toml`.

Each route has an id that names its checkpoint: "<pipeline>@<sink name>" for a pipeline's own sink,
"_folder@<sink name>" for a folder default (no pipeline name starts with "_"), which serves every pipeline of
the folder without its own sinks.

>>> from pipelines.config.alerts import AlertSink
>>> hook = AlertSink(sink="webhook", url="http://127.0.0.1:9/h")
>>> [(r.id, sorted(r.pipelines)) for r in routes({"a": (), "b": (hook,)}, (hook,), base_dirs={})]
[('b@webhook-1', ['b']), ('_folder@webhook-1', ['a'])]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.config.alerts import AlertSink, sink_names

__all__ = ["FOLDER", "Route", "routes"]

FOLDER = "_folder"


@dataclass(frozen=True, slots=True)
class Route:
    """One sink and the pipelines whose alerts it gets; `base_dir` anchors a relative `path`."""

    id: str
    name: str
    sink: AlertSink
    pipelines: frozenset[str]
    base_dir: str = "."


def routes(own: Mapping[str, tuple[AlertSink, ...]], folder: tuple[AlertSink, ...],
           base_dirs: Mapping[str, str], folder_dir: str = ".") -> list[Route]:
    """The routes for pipelines with their own sinks (`own`, by pipeline) and the folder's default sinks."""
    found = [Route(f"{p}@{name}", name, sink, frozenset({p}), base_dirs.get(p, folder_dir))
             for p, sinks in own.items() for name, sink in zip(sink_names(sinks), sinks, strict=True)]
    plain = frozenset(p for p, sinks in own.items() if not sinks)  # may be empty: the route waits for them
    found += [Route(f"{FOLDER}@{name}", name, sink, plain, folder_dir)
              for name, sink in zip(sink_names(folder), folder, strict=True)]
    return found
