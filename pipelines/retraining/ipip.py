"""IPIP retraining for rare events: an ensemble of ensembles grown on balanced resamples, kept across blocks.

IPIP ("Identical Partitions for Imbalance Problems", Guillén-Teruel et al., FILM, arXiv:2503.04370, 2025;
formulas as in the authors' reference R package EIPIP) draws `p` balanced partitions of the training rows and
grows one ensemble per partition greedily: a base model fit on a bootstrap of the partition joins the ensemble
only when it raises the ensemble's balanced accuracy, and growth stops at `b` members or after
`max_attempts` candidates in a row that did not. The model is the average of the ensembles' probabilities.

What differs from the system we replace (docs/retraining.md, "IPIP"):
- every partition and every base model gets its own seed, derived from the round's seed (`SeedSequence.spawn`);
- an ensemble grows on the training rows left out of its own partition, never on holdout rows;
- across rounds the champion's ensembles are pooled with the new ones and the best `p` are kept by balanced
  accuracy on a validation split of the new blocks that no new ensemble trained or grew on and that is never
  part of the promotion holdout (strategies never see the holdout);
- labels may be any two values (strings too); the minority class is the rarer one in the training rows.

`IPIPClassifier` is a scikit-learn classifier (fit/predict/predict_proba/classes_) whose base models are each
the shared `make_model` Pipeline, so evaluation, serialisation and `calmops predict` treat it like any model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from pipelines.config.retrain import RetrainSettings
from pipelines.retraining.material import LabelledBlock, StrategySkipped, TrainedCandidate, TrainingMaterial
from pipelines.retraining.models import ModelSpec, final_estimator, make_model

__all__ = ["EnsembleInfo", "IPIPClassifier", "ipip", "ipip_sizes", "prune", "validation_split"]


def ipip_sizes(
    n_minority: int, *, alpha: float = 0.01, minority_fraction: float = 0.75
) -> tuple[int, int, int]:
    """(np, p, b): minority rows per partition, number of ensembles, most base models per ensemble.

    As in the IPIP reference implementation: np = round(minority_fraction * n_min), kept below n_min so every
    partition leaves at least one minority row out to grow on; p = ceil(log(alpha) / (np * log(1 - 1/np)));
    b = ceil(log(alpha) / (np * log(1 - 1/n_min))). Each is at least 1.

    >>> ipip_sizes(100)
    (75, 5, 7)
    >>> ipip_sizes(40, alpha=0.05)
    (30, 3, 4)
    """
    if n_minority < 2:
        raise ValueError(f"n_minority = {n_minority}; allowed: at least 2 minority rows")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha = {alpha!r}; allowed: 0 < alpha < 1")
    n_p = min(max(1, round(minority_fraction * n_minority)), n_minority - 1)
    p = 1 if n_p == 1 else math.ceil(math.log(alpha) / (n_p * math.log(1.0 - 1.0 / n_p)))
    b = math.ceil(math.log(alpha) / (n_p * math.log(1.0 - 1.0 / n_minority)))
    return n_p, max(1, p), max(1, b)


def majority_rows(n_p: int, majority_share: float) -> int:
    """Majority rows in a resample so that they make up `majority_share` of it: round(np * s / (1 - s)).

    >>> majority_rows(75, 0.55)
    92
    """
    return max(1, round(n_p * majority_share / (1.0 - majority_share)))


def balanced_accuracy(y_index: np.ndarray, pred_index: np.ndarray) -> float:
    """Mean recall of the two classes, labels given as 0/1 class indices (fast for string labels).

    >>> round(balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])), 4)  # (2/3 + 1) / 2
    0.8333
    """
    return float(np.mean([np.mean(pred_index[y_index == c] == c) for c in (0, 1)]))


@dataclass(frozen=True, slots=True)
class EnsembleInfo:
    """Where one ensemble came from: its seed, the round seed that grew it, its size and growth score."""

    seed: int
    round_seed: int
    members: int
    growth_score: float


class IPIPClassifier(ClassifierMixin, BaseEstimator):
    """An ensemble of `p` ensembles, each grown greedily on a balanced partition of a binary training set.

    `estimator` is the unfitted base model (in calmops: `make_model(spec, ...)`, preprocessing included); each
    base model is a clone with its own `random_state` (unless `seed_members` is False, e.g. when the user fixed
    it). `p`, `b` left as None come from `ipip_sizes`; `max_attempts` None is the reference rule
    ceil((b - size) / 3). Fitted: `classes_`, `minority_`, `ensembles_` (lists of fitted base models),
    `ensemble_info_` (one `EnsembleInfo` each), `p_`, `b_`, `np_`, `majority_rows_`.
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        p: int | None = None,
        b: int | None = None,
        alpha: float = 0.01,
        max_attempts: int | None = None,
        majority_share: float = 0.55,
        minority_fraction: float = 0.75,
        seed_members: bool = True,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.p = p
        self.b = b
        self.alpha = alpha
        self.max_attempts = max_attempts
        self.majority_share = majority_share
        self.minority_fraction = minority_fraction
        self.seed_members = seed_members
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: Any) -> IPIPClassifier:
        """Grow `p` ensembles on balanced partitions of (X, y); y must hold exactly two labels."""
        if self.estimator is None:
            raise ValueError(
                "IPIPClassifier needs an estimator; allowed: an unfitted scikit-learn classifier"
            )
        y = np.asarray(y)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) != 2:
            raise ValueError(
                f"IPIP is for binary classification; y holds {len(classes)} classes {list(classes)}"
            )
        minority = classes[np.argmin(counts)] if counts[0] != counts[1] else classes[1]
        min_idx = np.flatnonzero(y == minority)
        maj_idx = np.flatnonzero(y != minority)
        if len(min_idx) < 2 or len(maj_idx) < 2:
            raise ValueError(
                f"IPIP needs at least 2 rows of each class; got {len(min_idx)} of {minority!r} and "
                f"{len(maj_idx)} of the other"
            )
        n_p, p, b = ipip_sizes(len(min_idx), alpha=self.alpha, minority_fraction=self.minority_fraction)
        p = self.p if self.p is not None else p
        b = self.b if self.b is not None else b
        m = min(majority_rows(n_p, self.majority_share), len(maj_idx) - 1)

        self.classes_ = classes
        self.minority_ = minority
        self.np_, self.p_, self.b_, self.majority_rows_ = n_p, p, b, m
        ensembles, infos = [], []
        for child in np.random.SeedSequence(self.random_state).spawn(p):
            ens_seed = int(child.generate_state(1)[0])
            members, score = self._grow(X, y, min_idx, maj_idx, ens_seed)
            ensembles.append(members)
            infos.append(EnsembleInfo(ens_seed, int(self.random_state), len(members), score))
        self.ensembles_ = ensembles
        self.ensemble_info_ = infos
        return self

    def _attempts(self, size: int) -> int:
        if self.max_attempts is not None:
            return self.max_attempts
        return max(1, math.ceil((self.b_ - size) / 3))

    def _grow(
        self, X: pd.DataFrame, y: np.ndarray, min_idx: np.ndarray, maj_idx: np.ndarray, ens_seed: int
    ) -> tuple[list[Any], float]:
        """One ensemble: a partition without replacement, members on bootstraps of it, kept if they help."""
        rng = np.random.default_rng(ens_seed)
        part_min = rng.choice(min_idx, size=self.np_, replace=False)
        part_maj = rng.choice(maj_idx, size=self.majority_rows_, replace=False)
        outside = np.setdiff1d(np.arange(len(y)), np.concatenate([part_min, part_maj]))
        X_out = X.iloc[outside]
        y_out = (y[outside] == self.classes_[1]).astype(int)
        members: list[Any] = []
        summed = np.zeros((len(outside), 2))
        best, fails = -math.inf, 0
        while len(members) < self.b_ and fails < self._attempts(len(members)):
            rows = np.concatenate(
                [
                    rng.choice(part_min, size=self.np_, replace=True),
                    rng.choice(part_maj, size=self.majority_rows_, replace=True),
                ]
            )
            member = clone(self.estimator)
            if self.seed_members:
                final = final_estimator(member)
                if "random_state" in final.get_params(deep=False):
                    final.set_params(random_state=int(rng.integers(2**31 - 1)))
            member.fit(X.iloc[rows], y[rows])
            proba = self._member_proba(member, X_out)
            trial = summed + proba
            score = balanced_accuracy(y_out, np.argmax(trial, axis=1))
            if score > best:
                members.append(member)
                summed, best, fails = trial, score, 0
            else:
                fails += 1
        return members, float(best)

    # -- prediction ---------------------------------------------------------------------------------------

    def _member_proba(self, member: Any, X: pd.DataFrame) -> np.ndarray:
        """A base model's probabilities in `classes_` order (one-hot of its votes if it has none)."""
        out = np.zeros((len(X), 2))
        member_classes = list(getattr(member, "classes_", self.classes_))
        if callable(getattr(member, "predict_proba", None)):
            proba = np.asarray(member.predict_proba(X), dtype=float)
            for j, cls in enumerate(member_classes):
                out[:, int(np.flatnonzero(self.classes_ == cls)[0])] = proba[:, j]
        else:
            votes = np.asarray(member.predict(X))
            for i, cls in enumerate(self.classes_):
                out[:, i] = votes == cls
        return out

    def ensemble_proba(self, k: int, X: pd.DataFrame) -> np.ndarray:
        """Ensemble k's probabilities: the mean over its base models."""
        check_is_fitted(self, "ensembles_")
        members = self.ensembles_[k]
        return sum(self._member_proba(m, X) for m in members) / len(members)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The mean of the ensembles' probabilities, columns in `classes_` order."""
        check_is_fitted(self, "ensembles_")
        return sum(self.ensemble_proba(k, X) for k in range(len(self.ensembles_))) / len(self.ensembles_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- keeping ensembles across rounds ------------------------------------------------------------------

    def with_ensembles(self, ensembles: Sequence[list[Any]], infos: Sequence[EnsembleInfo]) -> IPIPClassifier:
        """A fitted copy holding these ensembles (same params, classes and sizes); self is left unchanged."""
        check_is_fitted(self, "ensembles_")
        if not ensembles or len(ensembles) != len(infos):
            raise ValueError("with_ensembles needs one info per ensemble and at least one ensemble")
        copy = clone(self)
        for name in ("classes_", "minority_", "np_", "p_", "b_", "majority_rows_"):
            setattr(copy, name, getattr(self, name))
        copy.ensembles_ = list(ensembles)
        copy.ensemble_info_ = list(infos)
        return copy


def prune(
    pool: Sequence[tuple[IPIPClassifier, int, bool]], X_val: pd.DataFrame, y_val: Any, keep: int
) -> tuple[list[tuple[IPIPClassifier, int, bool]], list[float]]:
    """The best `keep` of the pooled ensembles by balanced accuracy on (X_val, y_val), best first.

    `pool` holds (model, ensemble index, is_new). Ties go to new ensembles, then to pool order.
    """
    y_val = np.asarray(y_val)
    scored = []
    for order, (model, k, is_new) in enumerate(pool):
        y_index = (y_val == model.classes_[1]).astype(int)
        pred = np.argmax(model.ensemble_proba(k, X_val), axis=1)
        scored.append((balanced_accuracy(y_index, pred), is_new, order))
    ranked = sorted(scored, key=lambda t: (-t[0], not t[1], t[2]))[:keep]
    return [pool[order] for _, _, order in ranked], [float(s) for s, _, _ in ranked]


def validation_split(
    frame: pd.DataFrame, target: str, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a stratified, seeded validation split of `frame` and of the rest.

    Each class gives ceil(fraction * its rows), at least one and never all of them.

    >>> f = pd.DataFrame({"y": ["a"] * 8 + ["b"] * 2})
    >>> val, rest = validation_split(f, "y", 0.25, seed=0)
    >>> sorted(f["y"].iloc[val]), len(rest)
    (['a', 'a', 'b'], 7)
    """
    rng = np.random.default_rng(seed)
    y = frame[target].to_numpy()
    chosen = []
    for cls in sorted(pd.unique(y), key=str):
        rows = np.flatnonzero(y == cls)
        take = min(len(rows) - 1, max(1, math.ceil(fraction * len(rows))))
        chosen.append(rng.choice(rows, size=take, replace=False))
    val = np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=int)
    return val, np.setdiff1d(np.arange(len(frame)), val)


def _keyed(material: TrainingMaterial, blocks: Sequence[LabelledBlock]) -> pd.DataFrame:
    """The blocks' rows with their block id and position, so a row can be told apart across frames."""
    cols = [*material.features, material.target]
    parts = [
        b.frame[cols].assign(_block=b.block_id, _pos=np.arange(len(b.frame))) for b in blocks if len(b.frame)
    ]
    if not parts:
        return pd.DataFrame(columns=[*cols, "_block", "_pos"])
    return pd.concat(parts, ignore_index=True)


def _window(material: TrainingMaterial, settings: RetrainSettings) -> tuple[LabelledBlock, ...]:
    """The last `window_blocks` blocks, then the most recent `row_budget` rows of them."""
    window = material.blocks[-settings.window_blocks :]
    if settings.row_budget is None:
        return tuple(window)
    kept, left = [], settings.row_budget
    for block in reversed(window):
        if left <= 0:
            break
        part = block.frame.iloc[-left:] if len(block.frame) > left else block.frame
        kept.insert(0, LabelledBlock(block.block_id, part))
        left -= len(part)
    return tuple(kept)


def ipip(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """New IPIP ensembles on the recent blocks, pooled with an IPIP champion's, the best `p` kept.

    Validation (for pruning) is a stratified `ipip_validation_fraction` of the new blocks' rows; new ensembles
    train and grow on the rest of the last `window_blocks` blocks. Skipped for regression and non-binary data.
    """
    start = time.perf_counter()
    if material.task != "classification":
        raise StrategySkipped("ipip applies to binary classification only; this pipeline is regression")
    target = material.target
    labels = pd.unique(pd.concat([b.frame[target] for b in material.blocks], ignore_index=True))
    if len(labels) != 2:
        raise StrategySkipped(
            f"ipip applies to binary classification only; the training rows hold {len(labels)} classes "
            f"{sorted(map(str, labels))}"
        )
    new = [b for b in material.blocks if b.block_id in material.new_block_ids]
    new_rows = _keyed(material, new)
    counts = new_rows[target].value_counts()
    if len(new_rows) == 0 or len(counts) < 2 or counts.min() < 2:
        have = ", ".join(f"{k!r}: {v}" for k, v in counts.items()) or "none"
        raise StrategySkipped(
            f"ipip needs at least 2 rows of each class in the new blocks to validate on; found {have}"
        )
    val_pos, _ = validation_split(new_rows, target, settings.ipip_validation_fraction, seed)
    val = new_rows.iloc[val_pos]
    val_keys = set(zip(val["_block"], val["_pos"], strict=True))

    used = _window(material, settings)
    window_rows = _keyed(material, used)
    in_val = np.array([k in val_keys for k in zip(window_rows["_block"], window_rows["_pos"], strict=True)])
    train = window_rows[~in_val] if len(window_rows) else window_rows
    train_counts = train[target].value_counts()
    if len(train_counts) < 2 or train_counts.min() < 2:
        raise StrategySkipped(
            "ipip needs at least 2 training rows of each class in the window (after the validation split); "
            f"found {dict(train_counts)}"
        )
    features = list(material.features)
    model = IPIPClassifier(
        make_model(spec, material.features, material.categorical),
        p=settings.ipip_p,
        b=settings.ipip_b,
        alpha=settings.ipip_alpha,
        max_attempts=settings.ipip_max_attempts,
        majority_share=settings.ipip_majority_share,
        minority_fraction=settings.ipip_minority_fraction,
        seed_members="random_state" not in spec.params,
        random_state=seed,
    ).fit(train[features], train[target].to_numpy())

    notes = []
    pool: list[tuple[IPIPClassifier, int, bool]] = [(model, k, True) for k in range(len(model.ensembles_))]
    if isinstance(champion, IPIPClassifier):
        if set(champion.classes_) == set(model.classes_):
            pool += [(champion, k, False) for k in range(len(champion.ensembles_))]
        else:
            notes.append(
                f"champion's classes {list(champion.classes_)} differ from {list(model.classes_)}: not pooled"
            )
    kept, scores = prune(pool, val[features], val[target].to_numpy(), model.p_)
    final = model.with_ensembles(
        [m.ensembles_[k] for m, k, _ in kept], [m.ensemble_info_[k] for m, k, _ in kept]
    )
    n_new = sum(is_new for _, _, is_new in kept)
    share = n_new / len(kept)
    carried = len(pool) - len(model.ensembles_)
    notes.insert(
        0,
        f"ipip: kept {len(kept)} of {len(pool)} ensembles ({carried} from the champion), {n_new} new: "
        f"replacement share {share:.2f}; ranked by balanced accuracy on {len(val)} validation rows of the "
        f"new blocks ({min(scores):.3f} to {max(scores):.3f}), not on the holdout",
    )
    blocks_used = {b.block_id for b in used if len(b.frame)} | set(val["_block"])
    return TrainedCandidate(
        model=final,
        strategy="ipip",
        training_blocks=tuple(b.block_id for b in material.blocks if b.block_id in blocks_used),
        rows=len(train),
        seed=seed,
        params={
            "p": model.p_,
            "b": model.b_,
            "np": model.np_,
            "majority_rows": model.majority_rows_,
            "alpha": settings.ipip_alpha,
            "majority_share": settings.ipip_majority_share,
            "minority_label": str(model.minority_),
            "ensembles_pooled": len(pool),
            "ensembles_carried": carried,
            "ensembles_new_kept": n_new,
            "replacement_share": share,
            "base_models": sum(len(e) for e in final.ensembles_),
            "validation_rows": len(val),
            "window_blocks": settings.window_blocks,
        },
        seconds=time.perf_counter() - start,
        notes="; ".join(notes),
    )
