"""How an event refers to an artifact, and back: the one translation between the log's `Artifact` records and
the artifact store's `ArtifactRef`s.

Light on purpose (no pandas, no skops): the actor, the commands and the readers of the log all need it, and
only some of them load files.

>>> ref = ref_for(Artifact(sha256="ab" * 32, kind="model-skops", size=10, format="skops"))
>>> ref.artifact_id.endswith(".skops"), artifact_for(ref).format
(True, 'skops')
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.events import Artifact

__all__ = ["KIND_EXT", "ArtifactRef", "artifact_for", "ref_for", "ref_of"]

KIND_EXT = {"model-skops": "skops", "model-pickle": "pkl", "frame-parquet": "parquet"}  # kind -> file extension


@dataclass(frozen=True, kw_only=True, slots=True)
class ArtifactRef:
    """How an event refers to an artifact: `artifact_id` is `<sha256>.<ext>`, unique per content and kind."""

    artifact_id: str
    sha256: str
    kind: str
    size: int


def ref_of(sha256: str, kind: str, size: int) -> ArtifactRef:
    """The store reference of an artifact recorded in an event (its id follows from its hash and kind)."""
    return ArtifactRef(artifact_id=f"{sha256}.{KIND_EXT.get(kind, '')}", sha256=sha256, kind=kind, size=size)


def ref_for(artifact: Artifact) -> ArtifactRef:
    """The store reference of an event's artifact."""
    return ref_of(artifact.sha256, artifact.kind, artifact.size)


def artifact_for(ref: ArtifactRef) -> Artifact:
    """The record an event carries for a stored artifact."""
    return Artifact(sha256=ref.sha256, kind=ref.kind, size=ref.size, format=KIND_EXT.get(ref.kind, ""))
