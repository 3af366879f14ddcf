"""`calmops head`: the log's last position and hash, to keep somewhere this machine cannot change.

The hash of the last record covers every record before it (the hash chain), so `POSITION:HASH` written down
elsewhere (a ticket, a git commit, another machine) is an anchor: `calmops verify --expect-head POSITION:HASH`
later proves the log still holds exactly those records, even against someone who could rewrite both the log
and its trusted head file. `--trust-log` makes the log as it is now the trusted head, after checking its
whole chain: for an operator who restored a backup, never a way around a warning you do not understand.
"""

from __future__ import annotations

import argparse
import json
import sys

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option, resolve_home
from calmops_actors.errors import UserError

EXAMPLES = """\
examples:
  calmops head                      # 1234:9f2c...  (position:hash of the last record)
  calmops head --json
  calmops head --trust-log          # after restoring log.sqlite from a backup

exit codes: 0 printed (the log matches its trusted head), 1 the log does not match it (the reason is printed),
2 no home or log there
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("head", help="print the log's last position:hash (an anchor for verify --expect-head)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trust-log", action="store_true",
                   help="check the whole chain, then make the log's last record the trusted head")
    add_home_option(p)
    p.set_defaults(func=run)


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    with readlog.open_log(resolve_home(args), check_head=False) as store:
        trusted_before = store.trusted_head()
        if args.trust_log:
            result = store.verify(against_head=False)
            if not result.ok:
                raise UserError(f"the log's chain itself is broken, so it cannot be trusted: {result.message}")
            store.trust_log()
        last = store.last_link()
        problem = store.head_problem()
        trusted = store.trusted_head()
    report = {"position": last.position, "hash": last.hash, "anchor": f"{last.position}:{last.hash}",
              "trusted": None if trusted is None else {"position": trusted.position, "hash": trusted.hash},
              "matches_trusted_head": problem is None, "problem": problem,
              "trusted_log": bool(args.trust_log)}
    if args.json:
        print(json.dumps(report), file=out)
    else:
        print(report["anchor"], file=out)
        if args.trust_log:
            before = f"{trusted_before.position}:{trusted_before.hash[:12]}..." if trusted_before else "none"
            print(f"trusted head set to the log as it is now (was {before})", file=out)
        if problem is not None:
            print(f"WARNING: {problem}; see `calmops verify`", file=out)
    return 0 if problem is None else 1
