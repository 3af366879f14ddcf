"""`calmops resume NAME --reason TEXT`: close an open retraining circuit so rounds may run again.

Written through the domain: the state is rebuilt from the log, `decide` answers `CircuitClosed` when the
circuit is open (and nothing when it is not) and the event is appended at the version the state was read
at. A running `serve` actor sees the change on its next append (a concurrency conflict, then a reload).
"""

from __future__ import annotations

import argparse
import json
import sys

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option
from calmops_actors.clock import now_iso
from calmops_actors.commands.rollback import execute
from calmops_actors.errors import UserError

EXAMPLES = """\
examples:
  calmops resume churn --reason "upstream feed fixed"
  calmops resume churn --json

exit codes: 0 resumed or nothing to resume (the message says which), 2 unknown pipeline, no home
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resume", help="close an open retraining circuit (recorded with a reason)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the pipeline")
    p.add_argument("--reason", default=None, metavar="TEXT",
                   help="why (kept in the log for the audit trail); expected, as for rollback (without it, "
                        f"{DEFAULT_REASON!r} is recorded, with a warning)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_home_option(p)
    p.set_defaults(func=run)


DEFAULT_REASON = "resumed from the command line"


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    defaulted = args.reason is None  # accepted for the scripts written when it was optional
    if defaulted:
        args.reason = DEFAULT_REASON
    if not args.reason.strip():
        raise UserError("--reason must not be empty")
    from pipelines.core.decide import ResumeRetraining

    with readlog.store_for(args) as store:
        events, version = execute(store, args.name, ResumeRetraining(reason=args.reason.strip(),
                                                                     occurred_at=now_iso()))
    out = sys.stdout
    if defaulted and events:
        print(f"warning: no --reason given; recorded {DEFAULT_REASON!r}. Give one, as `rollback` requires: the "
              "log keeps it for the audit trail", file=sys.stderr)
    if args.json:
        print(json.dumps({"pipeline": args.name, "version": version, "resumed": bool(events),
                          "recorded": [{"type": type(e).__name__, "reason": e.reason} for e in events]}), file=out)
    elif events:
        print(f"pipeline {args.name}: circuit closed, retraining may run again (recorded as version {version})",
              file=out)
    else:
        print(f"pipeline {args.name}: the circuit is not open, nothing to resume", file=out)
    return 0
