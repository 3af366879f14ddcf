"""`calmops events`: list recorded events across pipelines, filtered by type, time and pipeline.

Events come in log order (global position), oldest first; `--since` starts at a time and `--limit` stops
after N matches. Human output is one line per event; `--json` prints JSON lines `{position, stream,
version, type, recorded_at, data}` where `data` is the payload as recorded.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from datetime import datetime

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option
from calmops_actors.errors import UserError
from calmops_actors.home import pipeline_name
from eventstore import CorruptLogError
from pipelines.core.events import ALERT_OUTCOMES
from pipelines.read_model import explain
from pipelines.read_model.projection import alert_words

EXAMPLES = """\
examples:
  calmops events --type DriftDetected
  calmops events churn --since 2026-05-01 --limit 20
  calmops events --type ModelPromoted --type ModelRolledBack --json
  calmops events --type AlertDelivered --type AlertFailed

exit codes: 0 done, 2 unknown type or pipeline, bad time, no home
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("events", help="list recorded events, filtered by type, time and pipeline",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--type", action="append", default=[], metavar="T",
                   help="only events of this type (repeat for several), e.g. DriftDetected")
    p.add_argument("--since", metavar="ISO", help="only events recorded at or after this time")
    p.add_argument("name", nargs="?", default=None, metavar="NAME",
                   help="only this pipeline's events (as the other commands take it)")
    p.add_argument("--pipeline", metavar="NAME", help="the same as NAME (the older spelling, still accepted)")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N events")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    add_home_option(p)
    p.set_defaults(func=run)


def check_types(wanted: list[str], known: list[str]) -> set[str]:
    for name in wanted:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"unknown event type {name!r}{hint}; known types: {', '.join(known)}")
    return set(wanted)


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be 1 or more, got {args.limit}")
    if args.name and args.pipeline and args.name != args.pipeline:
        raise UserError(f"two pipelines named: {args.name!r} and --pipeline {args.pipeline!r}; give one")
    pipeline = args.name or args.pipeline
    since = readlog.parse_time(args.since, "--since") if args.since else None
    out = sys.stdout
    shown = 0
    with readlog.store_for(args) as store:
        types = check_types(args.type, store.codec.names())
        stream = readlog.require_pipeline(store, pipeline) if pipeline else None
        try:
            for record in store.iter_all():
                if (stream is not None and record.stream_id != stream) or (types and record.type not in types):
                    continue
                if since is not None and datetime.fromisoformat(record.recorded_at) < since:
                    continue
                if args.json:
                    print(json.dumps(readlog.record_json(record)), file=out)
                else:
                    event = store.codec.decode(record)
                    line = alert_words(event) if isinstance(event, ALERT_OUTCOMES) else explain.event_line(event)
                    print(f"{record.position:>9}  {record.recorded_at}  {pipeline_name(record.stream_id) or '-':<12} "
                          f"#{record.version:<6} {record.type:<20} {line}", file=out)
                shown += 1
                if args.limit is not None and shown >= args.limit:
                    break
        except CorruptLogError as err:
            raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
    if not args.json:
        print(f"{shown} event(s)", file=out)
    return 0
