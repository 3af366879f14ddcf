"""Small builders for domain tests: configs, artifacts, commands and a decide-then-evolve driver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.config.pipeline import config_from_dict, config_sha256, config_to_dict
from pipelines.core.decide import (
    AcceptFile,
    NewBlock,
    RecordRoundOutcome,
    RegisterPipeline,
    RequestRetrain,
    StrategyOutcome,
    decide,
)
from pipelines.core.events import Artifact
from pipelines.core.schema import ColumnSchema
from pipelines.core.state import PipelineState, evolve

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCHEMA = ColumnSchema(features=("x1", "x2"), categorical=(), target="y", source="first_block")


def at(seconds: float = 0) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def artifact(text: str, kind: str = "frame") -> Artifact:
    return Artifact(sha256=sha(text), kind=kind, size=len(text), format="parquet" if kind == "frame" else "skops")


def config(**overrides):
    data = {"name": "p", "target": "y", **overrides}
    return config_from_dict(data, "test.toml")


def register(cfg=None, t: float = 0) -> RegisterPipeline:
    cfg = cfg or config()
    return RegisterPipeline(name=cfg.name, config=config_to_dict(cfg), config_sha256=config_sha256(cfg),
                            occurred_at=at(t))


def accept(block_id: str, content: str | None = None, labelled: bool = True, t: float = 0,
           file: str | None = None) -> AcceptFile:
    content = content or block_id
    return AcceptFile(file=file or f"{block_id}.csv", sha256=sha("file:" + content),
                      blocks=(NewBlock(block_id=block_id, rows=10, labelled=labelled,
                                       artifact=artifact("rows:" + content)),),
                      schema=SCHEMA, occurred_at=at(t))


def request(round_id: str, t: float = 0, strategies=("full", "windowed")) -> RequestRetrain:
    return RequestRetrain(round_id=round_id, block_id="b1", strategies=strategies, training_blocks=("b1",),
                          holdout_blocks=("b1",), holdout="last 20% of rows of b1", seed=0, occurred_at=at(t))


def success(strategy: str, accuracy: float) -> StrategyOutcome:
    return StrategyOutcome(strategy=strategy, artifact=artifact(f"model:{strategy}:{accuracy}", "model"),
                           metrics={"accuracy": accuracy}, training_blocks=("b1",), rows=8, seconds=0.1)


def failure(strategy: str, error: str = "ValueError: boom") -> StrategyOutcome:
    return StrategyOutcome(strategy=strategy, error=error)


def outcome(round_id: str, *outcomes: StrategyOutcome, champion: float | None = None,
            t: float = 0) -> RecordRoundOutcome:
    return RecordRoundOutcome(round_id=round_id, outcomes=outcomes,
                              champion_metrics={} if champion is None else {"accuracy": champion},
                              code_version="test", occurred_at=at(t))


class Driver:
    """Runs commands through decide and evolve, keeping every recorded event (the log of a test)."""

    def __init__(self) -> None:
        self.state = PipelineState.initial()
        self.log: list = []

    def __call__(self, cmd) -> tuple:
        events = decide(self.state, cmd)
        for e in events:
            self.state = evolve(self.state, e)
        self.log.extend(events)
        return events
