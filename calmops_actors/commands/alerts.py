"""`calmops alerts test NAME`: send a sample alert to every sink of a pipeline and print what each answered.

The sinks are the pipeline's own `[[alerts]]`, else its config folder's `alerts.toml`. The sample says it is a
test (`event_type` "AlertTest", `dedup_key` "test"); it is sent once per sink, without retries, and nothing is
recorded in the log. Secrets (`${ENV_VAR}`) are resolved from this shell's environment, as `serve` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from calmops_actors.errors import UserError

EXAMPLES = """\
examples:
  calmops alerts test churn --config-dir pipelines/
  calmops alerts test churn --config churn.toml --json

exit codes: 0 every sink accepted, 1 a sink did not, 2 no such pipeline or a config error
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="check a pipeline's alert sinks (`alerts test NAME`)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = actions.add_parser("test", help="send a sample alert to every sink of pipeline NAME",
                           description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("name", metavar="NAME", help="the pipeline's name")
    where = t.add_mutually_exclusive_group()
    where.add_argument("--config-dir", type=Path, default=Path("."),
                       help="folder of pipeline configs (default: the current folder)")
    where.add_argument("--config", type=Path, default=None, help="the pipeline's config file itself")
    t.add_argument("--json", action="store_true", help="one JSON line per sink")
    t.set_defaults(func=run)


def find_config(name: str, config_dir: Path, config: Path | None):
    """(config, file) of pipeline `name`: the given file, or the config in the folder that declares it."""
    from pipelines.config.pipeline import ConfigError, load_config

    candidates = [config] if config is not None else sorted(config_dir.glob("*.toml"))
    for path in candidates:
        if path.name == "alerts.toml" and config is None:
            continue
        try:
            parsed = load_config(path)
        except ConfigError as err:
            if config is not None:
                raise UserError(str(err)) from None
            continue
        if parsed.name == name:
            return parsed, path
    where = config if config is not None else config_dir
    raise UserError(f"no config of a pipeline named {name!r} in {where}")


def run(args: argparse.Namespace) -> int:
    from calmops_actors.alerts.folder import check_sinks, folder_sinks
    from calmops_actors.alerts.sinks import send
    from calmops_actors.clock import now_iso
    from pipelines.alerts.message import sample_body
    from pipelines.config.alerts import sink_names
    from pipelines.config.pipeline import ConfigError

    config, path = find_config(args.name, args.config_dir, args.config)
    try:
        check_sinks(config.alerts, str(path))
        sinks, base = (config.alerts, path.parent) if config.alerts else (folder_sinks(path.parent), path.parent)
    except ConfigError as err:
        raise UserError(str(err)) from None
    if not sinks:
        raise UserError(f"pipeline {args.name!r} has no alert sinks: add [[alerts]] to {path} or an alerts.toml "
                        f"beside it (docs/alerts.md)")
    body = sample_body(config.name, recorded_at=now_iso(), ui_url=None)
    failed = 0
    for name, sink in zip(sink_names(sinks), sinks, strict=True):
        answer = send(sink, body, base_dir=str(base))
        failed += not answer.ok
        if args.json:
            print(json.dumps({"sink": name, "kind": sink.sink, "ok": answer.ok, "status": answer.status,
                              "answer": answer.text}))
        else:
            status = "" if answer.status is None else f" ({answer.status})"
            print(f"{name:<16} {sink.sink:<8} {'ok' if answer.ok else 'FAILED'}{status}  {answer.text}")
    if failed and not args.json:
        print(f"{failed} of {len(sinks)} sink(s) did not accept the alert", file=sys.stderr)
    return 1 if failed else 0
