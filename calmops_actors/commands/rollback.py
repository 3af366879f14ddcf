"""`calmops rollback NAME --to V --reason TEXT`: make an earlier model version the champion again.

Written through the domain, like every change: the state is rebuilt from the log, `decide` checks the
request (the version must exist and differ from the champion) and `ModelRolledBack` is appended at the
version the state was read at. If `serve` owns the pipeline, its actor meets a concurrency conflict on its
next append, reloads the stream and carries on with the restored champion; if it appended first, this
command stops with a message: run it again.
"""

from __future__ import annotations

import argparse
import json
import sys

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option
from calmops_actors.clock import now_iso
from calmops_actors.errors import UserError
from calmops_actors.home import stream_id
from eventstore import ConcurrencyError, SQLiteEventStore
from pipelines.core.events import Event

EXAMPLES = """\
examples:
  calmops rollback churn --to v3 --reason "v5 misroutes premium customers"
  calmops rollback churn --to v3 --reason "incident 42" --json
  calmops rollback churn --to v11 --reason "r4's holdout was wrong" --force   # a version never promoted

exit codes: 0 recorded, 2 refused (unknown pipeline or version, already the champion, never the champion
without --force, no reason, no home)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollback", help="make an earlier model version the champion again (recorded with a reason)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the pipeline")
    p.add_argument("--to", required=True, metavar="V", help="the model version to restore, e.g. v3")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the log for the audit trail)")
    p.add_argument("--force", action="store_true",
                   help="allow a version that was never the champion (a rejected or unranked candidate)")
    p.add_argument("--json", action="store_true", help="print the recorded event(s) as JSON")
    add_home_option(p)
    p.set_defaults(func=run)


def execute(store: SQLiteEventStore, name: str, command) -> tuple[tuple[Event, ...], int]:
    """Load the state, then the one write path (`writes.record`); returns the events and the new version."""
    from calmops_actors.writes import record  # decide reads the config: only when run
    from pipelines.core.decide import CommandRejected

    state = readlog.load_state(store, name).state
    try:
        events = record(store, stream_id(name), state, command)
    except CommandRejected as err:
        raise UserError(str(err)) from None
    except ConcurrencyError:
        raise UserError(f"pipeline {name!r} changed while this command was deciding (another writer appended "
                        "first); nothing was recorded: run the command again") from None
    return events, state.version + len(events)


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise UserError("--reason must say why (it is kept in the log)")
    from pipelines.core.decide import Rollback

    with readlog.store_for(args) as store:
        events, version = execute(store, args.name, Rollback(to_version=args.to, reason=args.reason.strip(),
                                                              force=args.force, occurred_at=now_iso()))
    out = sys.stdout
    if args.json:
        print(json.dumps({"pipeline": args.name, "version": version,
                          "recorded": [{"type": type(e).__name__, "from_version": e.from_version,
                                        "to_version": e.to_version, "reason": e.reason, "forced": e.forced}
                                       for e in events]}),
              file=out)
    else:
        e = events[0]
        print(f"pipeline {args.name}: rolled back from {e.from_version} to {e.to_version} "
              f"(recorded as version {version}): {e.reason}", file=out)
        print("a running `serve` picks this up on its next append (it reloads the stream)", file=out)
    return 0
