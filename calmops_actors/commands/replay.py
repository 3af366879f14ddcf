"""`calmops replay NAME`: rebuild a pipeline's state from its events, as of now or of an earlier point.

The state is a fold over the log (nothing is re-run: drift tests and training outcomes *are* the events).
Stop at `--until-version N` (the pipeline's Nth event), `--until-position P` (the log's global position) or
`--until-time ISO` (events recorded at or before that time). `--events` prints the timeline instead, one
line per event; with `--json` every event is a JSON line `{position, stream, version, type, recorded_at,
data}`. A snapshot (a cache of the folded state) is used when one fits and `--save-snapshot` writes one;
`--no-snapshot` folds from the first event. `--rebuild-projections` rebuilds the UI's read tables.
"""

from __future__ import annotations

import argparse
import json
import sys

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option, resolve_home
from calmops_actors.errors import UserError
from eventstore import CorruptLogError
from pipelines.read_model import explain

EXAMPLES = """\
examples:
  calmops replay churn                         the state now
  calmops replay churn --until-version 120     the state after the pipeline's 120th event
  calmops replay churn --until-time 2026-03-01T12:00:00+00:00 --json
  calmops replay churn --events                the timeline, one line per event
  calmops replay churn --save-snapshot         fold once and cache the state for faster loads
  calmops replay --rebuild-projections         rebuild the UI's tables from the log

exit codes: 0 done, 2 usage error (unknown pipeline, no home, bad option)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="rebuild a pipeline's state (or timeline) from the log, at any point",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", help="the pipeline (see `calmops status`)")
    bound = p.add_mutually_exclusive_group()
    bound.add_argument("--until-version", type=int, metavar="N", help="stop after the pipeline's Nth event")
    bound.add_argument("--until-position", type=int, metavar="P", help="stop after global log position P")
    bound.add_argument("--until-time", metavar="ISO", help="stop after the last event recorded at or before ISO")
    p.add_argument("--events", action="store_true", help="print the timeline, one line per event")
    p.add_argument("--json", action="store_true", help="machine output (the state as one object; events as lines)")
    snap = p.add_mutually_exclusive_group()
    snap.add_argument("--no-snapshot", action="store_true", help="ignore snapshots: fold from the first event")
    snap.add_argument("--save-snapshot", action="store_true", help="save the folded state as the snapshot")
    p.add_argument("--rebuild-projections", action="store_true",
                   help="drop and rebuild the projection tables (projections.sqlite) from the whole log")
    add_home_option(p)
    p.set_defaults(func=run)


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.rebuild_projections:
        return rebuild(args, out)
    if not args.name:
        raise UserError("replay needs a pipeline name (or --rebuild-projections); `calmops status` lists them")
    if args.save_snapshot and (args.events or args.until_version is not None or args.until_position is not None
                               or args.until_time is not None):
        raise UserError("--save-snapshot saves the current state: use it without --events or --until-*")
    until_time = readlog.parse_time(args.until_time) if args.until_time else None
    if args.events:
        return timeline(args, until_time, out)
    progress = readlog.Progress(f"replaying {args.name}")
    with readlog.store_for(args) as store:
        try:
            loaded = readlog.load_state(
                store, args.name, until_version=args.until_version, until_position=args.until_position,
                until_time=until_time, use_snapshot=not args.no_snapshot, progress=progress)
        finally:
            progress.close()
        if args.save_snapshot:
            readlog.save_snapshot(store, args.name, loaded.state)
    summary = explain.state_summary(loaded.state)
    summary["position"] = loaded.position
    summary["recorded_at"] = loaded.recorded_at
    summary["from_snapshot"] = loaded.snapshot_version
    if args.json:
        print(json.dumps(summary), file=out)
        return 0
    if loaded.state.version == 0:
        print(f"pipeline {args.name} had no events yet at that point", file=out)
        return 0
    for line in explain.state_lines(summary):
        print(line, file=out)
    where = f"  as of      position {loaded.position}, recorded {loaded.recorded_at}"
    if loaded.snapshot_version:
        where += f" (from the snapshot at version {loaded.snapshot_version} plus the events after it)"
    print(where, file=out)
    if args.save_snapshot:
        print(f"snapshot saved at version {loaded.state.version}", file=out)
    return 0


def timeline(args: argparse.Namespace, until_time, out) -> int:
    """One line (or JSON line) per event up to the requested point, printed as the log is read."""
    for label, value in (("--until-version", args.until_version), ("--until-position", args.until_position)):
        if value is not None and value < 0:
            raise UserError(f"{label} must be 0 or more, got {value}")
    past = readlog.bound(args.until_version, args.until_position, until_time)
    progress = readlog.Progress(f"reading {args.name}")
    count = 0
    with readlog.store_for(args) as store:
        stream = readlog.require_pipeline(store, args.name)
        try:
            for record, event in readlog.iter_events(store, stream, past=past, progress=progress):
                if args.json:
                    print(json.dumps(readlog.record_json(record)), file=out)
                else:
                    print(f"{record.version:>7} {record.position:>9}  {record.recorded_at}  {record.type:<20} "
                          f"{explain.event_line(event)}", file=out)
                count += 1
        except CorruptLogError as err:
            raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
        finally:
            progress.close()
    if not args.json:
        print(f"{count} event(s)", file=out)
    return 0


def rebuild(args: argparse.Namespace, out) -> int:
    """Rebuild the projections from the log (the projector owns the tables; this only asks it to)."""
    if args.name or args.events or args.save_snapshot:
        raise UserError("--rebuild-projections takes no pipeline name, --events or --save-snapshot")
    from calmops_actors.projector import rebuild_projections

    home = resolve_home(args)
    readlog.open_log(home).close()  # a missing home is a UserError here too; nothing is created
    result = rebuild_projections(home)
    if args.json:
        print(json.dumps(result, default=str), file=out)
    else:
        print(f"projections rebuilt in {home / 'projections.sqlite'}", file=out)
        for key, value in result.items():
            print(f"  {key}: {value}", file=out)
    return 0
