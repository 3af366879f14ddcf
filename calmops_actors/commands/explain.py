"""`calmops explain NAME --block ID | --version V`: why things happened, read back from the events.

`--block ID`: the block's arrival, the champion's score on it, its drift check (the top features by effect,
the multivariate and concept signals), the decision that followed and the round it led to (candidates,
promotion or rejection). `--version V`: the model's lineage: parent, strategy, training blocks, its
holdout metrics against the champion it was meant to replace, the drift that triggered its round, and what
became of it (promoted, retired, rejected, rolled back). Nothing is recomputed: this is what was recorded.
"""

from __future__ import annotations

import argparse
import json
import sys

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option
from calmops_actors.errors import UserError
from pipelines.read_model import explain

EXAMPLES = """\
examples:
  calmops explain churn --block 2026-05-03
  calmops explain churn --version v7
  calmops explain churn --version v7 --json

exit codes: 0 done, 2 unknown pipeline, block or version (the message lists the known ones)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain a block's drift check and its aftermath, or a model's lineage",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the pipeline")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--block", metavar="ID", help="a block id (as in `calmops replay NAME --events`)")
    what.add_argument("--version", metavar="V", help="a model version, e.g. v3")
    p.add_argument("--top", type=int, default=5, metavar="N", help="features to show for a block (default 5)")
    p.add_argument("--json", action="store_true", help="print the explanation as one JSON object")
    add_home_option(p)
    p.set_defaults(func=run)


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise UserError(f"--top must be 1 or more, got {args.top}")
    progress = readlog.Progress(f"reading {args.name}")
    with readlog.store_for(args) as store:
        try:
            loaded = readlog.load_state(store, args.name, keep_events=True, progress=progress)
        finally:
            progress.close()
    events = [event for _, event in loaded.events]
    try:
        if args.block is not None:
            story = explain.explain_block(events, args.block, top=args.top)
            lines = explain.block_lines(story)
        else:
            story = explain.explain_version(events, args.version)
            lines = explain.version_lines(story)
    except explain.UnknownSubject as err:
        raise UserError(str(err)) from None
    out = sys.stdout
    if args.json:
        print(json.dumps(story), file=out)
    else:
        for line in lines:
            print(line, file=out)
    return 0
