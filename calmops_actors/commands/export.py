"""`calmops export NAME --format jsonl|parquet --out PATH`: one pipeline's events as a file for other tools.

Every event of the pipeline, in order, with its envelope: `position, stream, version, type, recorded_at,
data` (the payload as recorded). JSON lines hold `data` as an object; Parquet holds it as JSON text in a
string column, plus `schema_version` and `hash`. The file is written whole or not at all (a temporary
file renamed into place); an existing file is only replaced with `--force`. It gets the mode any new file of
yours gets (0666 less your umask, e.g. 0644): the events hold no secret the log itself does not.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from calmops_actors import readlog
from calmops_actors.cli_common import add_home_option
from calmops_actors.errors import UserError
from eventstore import CorruptLogError, Recorded

EXAMPLES = """\
examples:
  calmops export churn --format jsonl --out churn-events.jsonl
  calmops export churn --format parquet --out churn-events.parquet --force

exit codes: 0 written, 2 unknown pipeline, existing file without --force, unwritable path, no home
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a pipeline's events to a JSON-lines or Parquet file",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the pipeline")
    p.add_argument("--format", required=True, choices=("jsonl", "parquet"), help="the file format")
    p.add_argument("--out", required=True, type=Path, help="the file to write")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    add_home_option(p)
    p.set_defaults(func=run)


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    out_path: Path = args.out
    if out_path.exists() and not args.force:
        raise UserError(f"{out_path} exists; pass --force to replace it, or choose another --out")
    if out_path.is_dir():
        raise UserError(f"{out_path} is a folder; give a file path for --out")
    if not out_path.parent.is_dir():
        raise UserError(f"the folder {out_path.parent} does not exist; create it first")
    with readlog.store_for(args) as store:
        stream = readlog.require_pipeline(store, args.name)
        total = store.stream_version(stream)
        try:
            fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
        except OSError as err:
            raise UserError(f"cannot write in {out_path.parent}: {err.strerror}") from None
        progress = readlog.Progress(f"exporting {args.name}")
        try:
            with os.fdopen(fd, "wb") as handle:
                records = (r for r in store.iter_all() if r.stream_id == stream)
                write = write_jsonl if args.format == "jsonl" else write_parquet
                count = write(records, handle, lambda done: progress(done, total))
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it 0600; an export is for other tools
            os.replace(tmp, out_path)
        except CorruptLogError as err:
            Path(tmp).unlink(missing_ok=True)
            raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            progress.close()
    print(f"wrote {count} event(s) of {args.name} to {out_path} ({args.format})", file=sys.stdout)
    return 0


def current_umask() -> int:
    """The process's umask (reading it means setting it: set back at once; the CLI runs no other thread)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


BATCH = 50_000


def write_jsonl(records: Iterator[Recorded], handle: BinaryIO, progress: Callable[[int], None]) -> int:
    count = 0
    for count, record in enumerate(records, 1):
        handle.write(json.dumps(readlog.record_json(record), ensure_ascii=False).encode("utf-8"))
        handle.write(b"\n")
        if count % BATCH == 0:
            progress(count)
    return count


def write_parquet(records: Iterator[Recorded], handle: BinaryIO, progress: Callable[[int], None]) -> int:
    """Row groups of BATCH events, so memory stays bounded on long logs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("position", pa.int64()), ("stream", pa.string()), ("version", pa.int64()),
                        ("type", pa.string()), ("schema_version", pa.int32()), ("recorded_at", pa.string()),
                        ("hash", pa.string()), ("data", pa.string())])
    count = 0
    with pq.ParquetWriter(handle, schema) as writer:
        while True:
            batch = list(itertools.islice(records, BATCH))
            if not batch and count:
                break
            writer.write_table(pa.table({
                "position": [r.position for r in batch], "stream": [r.stream_id for r in batch],
                "version": [r.version for r in batch], "type": [r.type for r in batch],
                "schema_version": [r.schema_version for r in batch],
                "recorded_at": [r.recorded_at for r in batch], "hash": [r.hash for r in batch],
                "data": [json.dumps(r.payload, ensure_ascii=False) for r in batch],
            }, schema=schema))
            count += len(batch)
            progress(count)
            if len(batch) < BATCH:
                break
    return count
