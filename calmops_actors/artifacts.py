"""Content-addressed artifact store: models and frames as files named by their sha256, verified on every load.

Layout: `<root>/<sha[:2]>/<sha>.<ext>`, written atomically (temp file in the same directory, fsync, os.replace,
fsync of the directory). Events record an `ArtifactRef` (id, sha256, kind, size); the bytes never enter the log.

Loading policy (see docs/retraining.md):
- Every load reads the bytes once, hashes them and compares with the recorded sha256 *before* any
  deserialisation; a mismatch raises `ArtifactTampered`, a missing file `ArtifactMissing`.
- Models are saved in skops' format when every type skops does not already trust belongs to the estimator
  families we save (`TRUSTED_PREFIXES`: scikit-learn, plus `numpy.dtype`). On load, skops' untrusted-type list
  is recomputed from the verified bytes and the same policy applied; anything else raises `ArtifactUntrusted`.
- A model outside those families (a user's own class, xgboost, ...) is saved with pickle. Pickle runs code on
  load, so it is loaded only after the sha256 check: it is then byte-for-byte what this process wrote.
- Frames are Parquet (pyarrow).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from calmops_actors.artifact_refs import KIND_EXT, ArtifactRef, ref_of  # noqa: F401 - ArtifactRef, ref_of re-exported
from calmops_actors.errors import UserError

__all__ = [
    "TRUSTED_PREFIXES",
    "ArtifactError",
    "ArtifactMissing",
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactTampered",
    "ArtifactUntrusted",
    "Blob",
    "decode_model",
    "encode_model",
]

# Types skops flags as untrusted that we still load: the estimator families we save ourselves.
TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.",)
TRUSTED_EXACT: frozenset[str] = frozenset({"numpy.dtype"})

_EXT = KIND_EXT  # artifact kind -> file extension (ArtifactRef.artifact_id is "<sha256>.<ext>")
_NAME = re.compile(r"^[0-9a-f]{64}\.(skops|pkl|parquet)$")


class ArtifactError(UserError):
    """An artifact cannot be used as recorded."""


class ArtifactMissing(ArtifactError):
    """The file an event refers to is not in the store."""


class ArtifactTampered(ArtifactError):
    """The file's bytes do not hash to the sha256 recorded when it was written."""


class ArtifactUntrusted(ArtifactError):
    """A skops file holds types outside the loading policy."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Blob:
    """An artifact's bytes in flight (through Ray's object store, between nodes), with their kind and hash.

    Ray tasks get and return blobs, never paths: on a cluster a task's node need not see the home folder.
    """

    kind: str
    sha256: str
    data: bytes

    @staticmethod
    def of(data: bytes, kind: str) -> Blob:
        return Blob(kind=kind, sha256=hashlib.sha256(data).hexdigest(), data=data)


def encode_model(model: Any, trusted_prefixes: tuple[str, ...] = TRUSTED_PREFIXES) -> Blob:
    """A fitted model as bytes: skops when the loading policy can read it back, pickle otherwise."""
    sio = skops_io()
    try:
        data = sio.dumps(model)
        untrusted = sio.get_untrusted_types(data=data)
        skops_ok = all(_trusted(t, trusted_prefixes) for t in untrusted)
    except Exception:  # skops cannot represent some objects at all; pickle is the documented fallback
        skops_ok = False
    if skops_ok:
        return Blob.of(data, "model-skops")
    return Blob.of(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), "model-pickle")


def decode_model(blob: Blob, trusted_prefixes: tuple[str, ...] = TRUSTED_PREFIXES, name: str = "") -> Any:
    """Load a model blob: its bytes must hash to its sha256, and a skops file may hold only trusted types."""
    name = name or f"{blob.sha256}"
    actual = hashlib.sha256(blob.data).hexdigest()
    if actual != blob.sha256:
        raise ArtifactTampered(f"model {name}: bytes hash to {actual}, not the recorded {blob.sha256}; not loaded")
    if blob.kind == "model-pickle":
        return pickle.loads(blob.data)  # noqa: S301 - bytes verified against the recorded sha256 above
    if blob.kind != "model-skops":
        raise ArtifactError(f"artifact {name} is a {blob.kind}, not a model")
    sio = skops_io()
    untrusted = sio.get_untrusted_types(data=blob.data)
    refused = [t for t in untrusted if not _trusted(t, trusted_prefixes)]
    if refused:
        raise ArtifactUntrusted(
            f"artifact {name} holds types outside the loading policy: {refused}. "
            "Inspect the file with skops.io.get_untrusted_types before trusting it."
        )
    return sio.loads(blob.data, trusted=untrusted)


def skops_io() -> Any:
    """`skops.io`, imported on the first model saved or loaded: importing it imports every scikit-learn estimator
    (skops lists them as trusted types), seconds a process that never touches a model should not pay."""
    import skops.io

    return skops.io


def _trusted(type_name: str, prefixes: tuple[str, ...]) -> bool:
    return type_name in TRUSTED_EXACT or type_name.startswith(prefixes)


class ArtifactStore:
    """Files under `root`, named by content; safe for several processes writing at once."""

    def __init__(self, root: Path | str, *, trusted_prefixes: tuple[str, ...] = TRUSTED_PREFIXES) -> None:
        self.root = Path(root)
        self.trusted_prefixes = tuple(trusted_prefixes)

    # -- paths ------------------------------------------------------------------------------------------
    def path(self, ref: ArtifactRef) -> Path:
        """Where `ref`'s file lives; checks the ref is well-formed (its id matches its hash and kind)."""
        ext = _EXT.get(ref.kind)
        if ext is None:
            raise ArtifactError(
                f"artifact {ref.artifact_id}: unknown kind {ref.kind!r}; allowed: {', '.join(_EXT)}"
            )
        if ref.artifact_id != f"{ref.sha256}.{ext}" or not _NAME.match(ref.artifact_id):
            raise ArtifactError(
                f"artifact reference {ref.artifact_id!r} does not match its sha256/kind "
                f"({ref.sha256!r}, {ref.kind!r}); the recorded reference is corrupt"
            )
        return self.root / ref.sha256[:2] / ref.artifact_id

    # -- writing ----------------------------------------------------------------------------------------
    def _put(self, data: bytes, kind: str) -> ArtifactRef:
        sha = hashlib.sha256(data).hexdigest()
        ref = ArtifactRef(artifact_id=f"{sha}.{_EXT[kind]}", sha256=sha, kind=kind, size=len(data))
        path = self.path(ref)
        if path.exists() and _sha_of_file(path) == sha:
            return ref
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f".{_EXT[kind]}")
        except OSError as err:
            raise self._write_error(ref, err) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise self._write_error(ref, err) from None
            raise
        _fsync_dir(path.parent)
        return ref

    def _write_error(self, ref: ArtifactRef, err: OSError) -> ArtifactError:
        """A clear error for a write the disk refused (full, read-only, no permission); nothing was stored."""
        return ArtifactError(
            f"cannot store artifact {ref.artifact_id} ({ref.kind}, {ref.size} bytes) in {self.root}: "
            f"{err.strerror or err}. Free some space or fix the folder's permissions and retry; nothing was "
            "stored and nothing was recorded"
        )

    def put_model(self, model: Any) -> ArtifactRef:
        """Save a fitted model: skops when the policy can load it back, pickle otherwise."""
        return self.put_blob(encode_model(model, self.trusted_prefixes))

    def put_blob(self, blob: Blob) -> ArtifactRef:
        """Store bytes that arrived from elsewhere (a Ray task), after checking they match their hash."""
        if hashlib.sha256(blob.data).hexdigest() != blob.sha256:
            raise ArtifactTampered(f"a {blob.kind} blob does not hash to its sha256 {blob.sha256}; not stored")
        return self._put(blob.data, blob.kind)

    def put_frame(self, frame: pd.DataFrame) -> ArtifactRef:
        """Save a DataFrame as Parquet."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow")
        return self._put(buffer.getvalue(), "frame-parquet")

    # -- reading ----------------------------------------------------------------------------------------
    def read_verified(self, ref: ArtifactRef) -> bytes:
        """The artifact's bytes, after checking they hash to the recorded sha256."""
        path = self.path(ref)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactMissing(
                f"artifact {ref.artifact_id} ({ref.kind}) is missing: no file at {path}. Restore the store from a "
                "backup, or retrain; if it was pruned it belonged to a rejected candidate."
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.sha256:
            raise ArtifactTampered(
                f"artifact {ref.artifact_id} ({ref.kind}) at {path} was changed after it was written: "
                f"expected sha256 {ref.sha256}, found {actual}. It was not loaded. Restore the file from a "
                "backup or retrain the model; investigate who can write to the artifact directory."
            )
        return data

    def get_model(self, ref: ArtifactRef) -> Any:
        """Load a model, refusing files whose hash or types do not match the policy."""
        return decode_model(self.read_blob(ref), self.trusted_prefixes, ref.artifact_id)

    def read_blob(self, ref: ArtifactRef) -> Blob:
        """The artifact's verified bytes, ready to travel to a Ray task."""
        return Blob(kind=ref.kind, sha256=ref.sha256, data=self.read_verified(ref))

    def get_frame(self, ref: ArtifactRef) -> pd.DataFrame:
        """Load a Parquet frame after the hash check."""
        if ref.kind != "frame-parquet":
            raise ArtifactError(f"artifact {ref.artifact_id} is a {ref.kind}, not a frame")
        return pd.read_parquet(io.BytesIO(self.read_verified(ref)), engine="pyarrow")

    # -- maintenance ------------------------------------------------------------------------------------
    def delete(self, ref: ArtifactRef) -> bool:
        """Remove one artifact's file (retention); True when a file was removed."""
        path = self.path(ref)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def verify_all(self, refs: Iterable[ArtifactRef]) -> list[ArtifactError]:
        """Check every ref's file; returns the problems found (empty when all are intact)."""
        problems: list[ArtifactError] = []
        for ref in refs:
            try:
                self.read_verified(ref)
            except ArtifactError as exc:
                problems.append(exc)
        return problems

    def prune(self, keep: set[str]) -> list[str]:
        """Delete stored artifacts whose id is not in `keep`; returns the ids removed.

        Only files named like artifacts are touched (in-flight `.tmp-*` files and anything else are left).
        Events are never touched: a pruned artifact stays described in the log.
        """
        removed = []
        if not self.root.exists():
            return removed
        for shard in sorted(p for p in self.root.iterdir() if p.is_dir() and len(p.name) == 2):
            for path in sorted(shard.iterdir()):
                if _NAME.match(path.name) and path.name not in keep:
                    path.unlink(missing_ok=True)
                    removed.append(path.name)
        # Shard directories stay: removing one could race with a writer that just created it.
        return removed


def _sha_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
