"""`calmops verify`: check that the log and the artifacts are exactly what was written.

Two checks. The log: every record's hash must chain from the one before (a changed byte anywhere, a
removed or reordered record, breaks it); the first bad position is named; and the log must reach the
trusted head kept outside it (`<home>/log.sqlite.head`), with the same hash there, or records were deleted
from its end or its chain was recomputed. `--expect-head POSITION:HASH` also checks an anchor you kept
elsewhere (`calmops head` prints one). The artifacts: every file an
event refers to (a block's rows in `BlockArrived`, a model in `CandidateTrained`) must exist and hash to the
sha256 recorded with it. Exit 0 when both are intact, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from calmops_actors import readlog
from calmops_actors.artifact_refs import ref_for
from calmops_actors.cli_common import add_home_option, resolve_home
from calmops_actors.home import Home, pipeline_name
from eventstore import SQLiteEventStore, StoreError
from pipelines.core.events import Artifact

if TYPE_CHECKING:
    from calmops_actors.artifacts import ArtifactStore

EXAMPLES = """\
examples:
  calmops verify
  calmops verify --home /srv/calmops --json
  calmops verify --expect-head 1234:9f2c...   # the head printed by `calmops head` last week

exit codes: 0 log and artifacts intact, 1 tampering or damage found (named), 2 usage error
"""

# event types that refer to an artifact, and the payload field naming what it is for people
ARTIFACT_EVENTS = {"BlockArrived": ("block", "block_id"), "CandidateTrained": ("model", "model_version")}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check the log's hash chain and every artifact's sha256",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    p.add_argument("--skip-artifacts", action="store_true", help="check only the log's hash chain")
    p.add_argument("--expect-head", metavar="POSITION:HASH", type=anchor,
                   help="also check that the log's record at POSITION has this hash (an anchor kept elsewhere)")
    add_home_option(p)
    p.set_defaults(func=run)


@dataclass
class ArtifactUse:
    """The first event that refers to an artifact."""

    artifact: Artifact
    position: int
    pipeline: str | None
    what: str  # "block block_0001" | "model v3"


def referenced_artifacts(store: SQLiteEventStore) -> tuple[dict[tuple[str, str], ArtifactUse], str | None]:
    """Every artifact referred to by an event, keyed by (sha256, kind), with the first event that did.

    Reads payloads as recorded (no decoding). Returns also a note when the log could not be read to the end.
    """
    found: dict[tuple[str, str], ArtifactUse] = {}
    last = 0
    try:
        for record in store.iter_all():
            last = record.position
            if record.type == "ArtifactsPruned":  # deleted on purpose by retention: no longer expected
                for sha in record.payload.get("sha256s", ()):
                    for key in [k for k in found if k[0] == sha and found[k].what.startswith("model")]:
                        del found[key]
                continue
            kind = ARTIFACT_EVENTS.get(record.type)
            if kind is None:
                continue
            data: Any = record.payload.get("artifact")
            try:
                artifact = Artifact(sha256=data["sha256"], kind=data["kind"], size=data["size"],
                                    format=data.get("format", ""))
            except (TypeError, KeyError):
                raise StoreError(f"position {record.position}: {record.type} has no readable artifact") from None
            key = (artifact.sha256, artifact.kind)
            if key not in found:
                found[key] = ArtifactUse(artifact, record.position, pipeline_name(record.stream_id),
                                         f"{kind[0]} {record.payload.get(kind[1])}")
    except StoreError as err:
        return found, f"the artifact scan stopped after position {last}: {err}"
    return found, None


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    from calmops_actors.artifacts import ArtifactStore  # pandas and skops: only when run

    out = sys.stdout
    home = Home(resolve_home(args))
    progress = readlog.Progress("verifying the log")
    report: dict[str, Any] = {"home": str(home.root), "ok": True}
    with readlog.open_log(home.root, check_head=False) as store:
        try:
            result = store.verify(progress=progress)
        finally:
            progress.close()
        report["log"] = {"ok": result.ok, "checked": result.checked,
                         "first_bad_position": result.first_bad_position, "message": result.message}
        if args.expect_head is not None and result.ok:
            result = check_anchor(store, result, *args.expect_head)
            report["log"].update(ok=result.ok, first_bad_position=result.first_bad_position,
                                 message=result.message)
        if not args.skip_artifacts:
            uses, note = referenced_artifacts(store)
            report["artifacts"] = check_artifacts(ArtifactStore(home.artifacts), uses, note)
    report["ok"] = result.ok and (args.skip_artifacts or report["artifacts"]["ok"])
    if args.json:
        print(json.dumps(report), file=out)
    else:
        print_report(report, out)
    return 0 if report["ok"] else 1


def anchor(text: str) -> tuple[int, str]:
    """`POSITION:HASH` as given to --expect-head."""
    position, sep, hash_ = text.strip().partition(":")
    if not sep or not position.isdigit() or int(position) < 1 or len(hash_) != 64 or not all(
            c in "0123456789abcdef" for c in hash_):
        raise argparse.ArgumentTypeError(f"expected POSITION:HASH as `calmops head` prints it, got {text!r}")
    return int(position), hash_


def check_anchor(store: SQLiteEventStore, result, position: int, hash_: str):
    """The verified log against an anchor kept outside this machine: the record at `position` has `hash_`."""
    from eventstore import VerifyResult
    from eventstore.trusted_head import Head, head_problem

    problem = head_problem(Head(position, hash_), store.head(), store.hash_at(position))
    if problem is None:
        return VerifyResult(True, result.checked, None, f"{result.message}; anchor {position}:{hash_[:12]}... "
                                                        "matches")
    return VerifyResult(False, result.checked, min(position, result.checked + 1),
                        problem.replace("trusted head", "anchor you gave"))


def check_artifacts(artifacts: ArtifactStore, uses: dict[tuple[str, str], ArtifactUse],
                    note: str | None) -> dict[str, Any]:
    from calmops_actors.artifacts import ArtifactError

    progress = readlog.Progress("verifying artifacts")
    problems = []
    try:
        for i, use in enumerate(uses.values(), 1):
            try:
                artifacts.read_verified(ref_for(use.artifact))
            except ArtifactError as err:
                ref = ref_for(use.artifact)
                problems.append({"artifact": ref.artifact_id, "kind": use.artifact.kind,
                                 "pipeline": use.pipeline, "what": use.what, "position": use.position,
                                 "problem": type(err).__name__, "message": str(err)})
            progress(i, len(uses))
    finally:
        progress.close()
    return {"ok": not problems and note is None, "checked": len(uses), "bad": problems, "note": note}


def print_report(report: dict[str, Any], out) -> None:
    log = report["log"]
    if log["ok"]:
        print(f"log: OK, {log['message']}", file=out)
    else:
        print(f"log: BROKEN at position {log['first_bad_position']} ({log['checked']} records before it check "
              f"out): {log['message']}", file=out)
    arts = report.get("artifacts")
    if arts is not None:
        if arts["ok"]:
            print(f"artifacts: OK, {arts['checked']} checked, each matches its recorded sha256", file=out)
        elif arts["bad"]:
            print(f"artifacts: {len(arts['bad'])} of {arts['checked']} BAD", file=out)
            for bad in arts["bad"]:
                print(f"  {bad['artifact']} ({bad['what']} of pipeline {bad['pipeline']}, recorded at position "
                      f"{bad['position']}): {bad['message']}", file=out)
            if arts["note"]:
                print(f"  {arts['note']}", file=out)
        else:
            print(f"artifacts: INCOMPLETE, {arts['checked']} checked and intact, but {arts['note']}", file=out)
    if report["ok"]:
        print("verify: intact", file=out)
    else:
        first = ([f"log position {log['first_bad_position']}"] if not log["ok"] else []) + (
            [f"artifact {arts['bad'][0]['artifact']}"] if arts and arts["bad"] else [])
        print(f"verify: FAILED (first problem: {', '.join(first) or 'see above'})", file=out)
