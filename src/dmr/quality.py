"""Quality targets: route each task to the cheapest tier expected to reach a share of the best
tier's quality (``Router(quality_target=0.95)``).

Two sources of expectations, each giving, per tier, a number in [0, 1] compared with the target:

- an **outcome model** (``outcome_model="model.npz"``, :class:`dmr.ml.outcomes.OutcomeModel`,
  trained by ``dmr train --outcomes`` on the user's own scores): the probability that the tier's
  model reaches the best model's score on this task. Its models are named by tier (``low``…) or by
  model name, which the registry maps to the lowest tier offering that model (the Router's provider
  first). A tier reached by several models takes the highest probability; a tier with no model in
  the outcome model is never chosen by it. The decision's ``difficulty`` is then the model's own:
  1 − P(the cheapest model reaches the best).
- without one, a **prior** on the layers' raw difficulty ``d`` (0..1): the expected share of the
  top tier's quality for tier ``k`` of ``N`` is ``1 − d · MAX_GAP · (N − 1 − k) / (N − 1)``, so the
  top tier always keeps 1 and every cheaper tier loses linearly more as tasks get harder.

``MAX_GAP`` (0.4) is read off the default tier matrix and the capability labels, not fitted to
any outcome data. Layer 3's difficulty is its head's ``needs`` output, the capability label (0 any
small model, 1 a mid-size model, 2 only strong models, 3 even flagship ones struggle) divided by 3;
``quality_target=0.9`` then sends needs 0 to low, 1 to medium and 2–3 to high, the labels' own
meaning. Layers 1 and 2 compute the difficulty as the complexity position times the task type's gap
(:mod:`dmr.difficulty`; 1 for maths), and for maths 0.9 reproduces the tier matrix: the
standard/complex boundary is at position 0.5 on every layer's scale, the simple/standard one at
0.25 on Layer 1's and Layer 2's (1 − 0.25·0.4 = 1 − 0.5·0.2 = 0.9). 0.95 halves the boundaries
(more tasks go up a tier) and 0.8 doubles them. At the hardest task the prior expects the cheapest
tier to keep 60 % of the best tier's quality, about the gap public leaderboards show between economy
and flagship models on their hardest benchmarks. It is a prior: an outcome model trained on your
own scores replaces it.

Either way the choice is the cheapest tier whose expectation reaches the target, else the top tier;
so a higher target (or, with the prior, a higher difficulty) never gives a cheaper tier. Policies
(budget, PII floor, tenant limits, residency) apply to the chosen tier afterwards.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from dmr.difficulty import unit
from dmr.errors import ConfigError, NotAvailableError
from dmr.types import ModelTier

__all__ = ["MAX_GAP", "QualityChoice", "QualityTarget", "load_outcome_model", "prior_shares", "tiers_of_models"]

MAX_GAP = 0.4
# Expectations within this of the target count as reaching it (1 - 0.25 * 0.4 is not exactly 0.9).
_TOLERANCE = 1e-9


class QualityChoice(NamedTuple):
    """The tier a quality target chose, the raw difficulty to record, and why."""

    tier: ModelTier
    difficulty: float
    policy: str
    reason: str


def prior_shares(difficulty: float, levels: Sequence[ModelTier] | None = None) -> tuple[float, ...]:
    """The prior's expected share of the top tier's quality for each tier, cheapest first."""
    levels = ModelTier.levels() if levels is None else tuple(levels)
    d = unit(difficulty)
    top = len(levels) - 1
    return tuple(1.0 - d * MAX_GAP * (top - k) / top for k in range(len(levels)))


def _unfitted(spec: Any) -> bool:
    """Whether ``spec`` is an :class:`~dmr.ml.outcomes.OutcomeModel` not fitted yet."""
    outcomes = sys.modules.get("dmr.ml.outcomes")  # an instance means the module is loaded
    return outcomes is not None and isinstance(spec, outcomes.OutcomeModel) and not hasattr(spec, "models_")


def load_outcome_model(spec: Any) -> Any:
    """An outcome model from a path (``.npz`` written by ``dmr train --outcomes``) or an object
    that already has ``models`` and ``predict(texts)``."""
    if isinstance(spec, (str, Path)):
        if not str(spec).strip():
            raise ConfigError("outcome_model: the path is empty; give the .npz written by dmr train --outcomes",
                              [("outcome_model", "empty path")])
        try:
            from dmr.ml.outcomes import OutcomeModel
        except ImportError as exc:
            raise NotAvailableError(f"outcome_model: needs numpy (pip install 'dynamic-model-router[ml]'): {exc}",
                                    [("outcome_model", "numpy is not installed")]) from None
        try:
            return OutcomeModel.load(spec)
        except NotAvailableError as exc:
            raise NotAvailableError(f"outcome_model: {exc}", [("outcome_model", str(exc))]) from None
        except (ValueError, OSError) as exc:
            raise ConfigError(f"outcome_model: {exc}", [("outcome_model", str(exc))]) from None
    if _unfitted(spec):
        raise ConfigError("outcome_model: this OutcomeModel is not fitted; call fit() or OutcomeModel.load(path) first",
                          [("outcome_model", "not fitted")])
    if callable(getattr(spec, "predict", None)) and getattr(spec, "models", None):
        return spec
    raise ConfigError(f"outcome_model: expected a path or an OutcomeModel, got {type(spec).__name__}",
                      [("outcome_model", "wrong type")])


def _tier_of(name: str, registry: Any, provider: str | None) -> ModelTier | None:
    if name.lower() in ModelTier._levels:
        return ModelTier(name.lower())
    providers = registry.providers()
    if provider in providers:
        providers = [provider] + [p for p in providers if p != provider]
    for candidate in providers:
        tiers = registry.provider(candidate).tiers
        found = [level for level in ModelTier.levels() if tiers.get(level.value) == name]
        if found:
            return found[0]  # the cheapest tier that routes to this model
    return None


def tiers_of_models(models: Sequence[str], registry: Any, provider: str | None) -> tuple[ModelTier, ...]:
    """The tier of each outcome-model column: a tier name, or a model the registry offers at a tier."""
    tiers = [_tier_of(str(name), registry, provider) for name in models]
    unknown = [str(name) for name, tier in zip(models, tiers) if tier is None]
    if unknown:
        why = (f"the outcome model names {', '.join(map(repr, unknown))}, which are neither tiers in force "
               f"({', '.join(ModelTier._levels)}) nor models a registered provider offers at a tier")
        raise ConfigError(f"outcome_model: {why}", [("outcome_model", why)])
    return tuple(tiers)  # type: ignore[arg-type]


class QualityTarget:
    """Chooses tiers for one Router's ``quality_target`` (and ``outcome_model``, when given)."""

    def __init__(self, target: float, outcome_model: Any = None, *, registry: Any = None,
                 provider: str | None = None) -> None:
        if isinstance(target, bool) or not (isinstance(target, (int, float)) and 0 < target <= 1):
            raise ConfigError(f"quality_target: {target!r} is not a number in (0, 1]",
                              [("quality_target", "must be in (0, 1]")])
        self.target = float(target)
        self.model = outcome_model
        self._tiers = tiers_of_models(outcome_model.models, registry, provider) if outcome_model is not None else ()

    @property
    def learned(self) -> bool:
        """True when an outcome model gives the expectations (it needs no layer's verdict)."""
        return self.model is not None

    def choose(self, text: str, difficulty: float) -> QualityChoice:
        """The tier for a task, from the outcome model on ``text`` or the prior on ``difficulty``."""
        if self.model is not None:
            return self._from_model(text)
        return self.from_prior(difficulty)

    def from_prior(self, difficulty: float, note: str = "") -> QualityChoice:
        difficulty = unit(difficulty)  # what the shares are read at, and what the reason says
        levels = ModelTier.levels()
        shares = prior_shares(difficulty, levels)
        k = next((i for i, share in enumerate(shares) if share >= self.target - _TOLERANCE), len(levels) - 1)
        tier = levels[k]
        return QualityChoice(tier, difficulty, f"quality_target:{self.target:g}->{tier}",
                             f"quality target {self.target:g}: {tier} is the cheapest tier expected to reach it "
                             f"(expected share {shares[k]:.2f} of the top tier's quality at difficulty "
                             f"{difficulty:.2f}){note}")

    def _from_model(self, text: str) -> QualityChoice:
        row = [float(p) for p in self.model.predict([text])[0]]
        best: dict[ModelTier, float] = {}
        for tier, p in zip(self._tiers, row):
            best[tier] = max(best.get(tier, 0.0), p if math.isfinite(p) else 0.0)
        difficulty = min(max(1.0 - row[0], 0.0), 1.0) if math.isfinite(row[0]) else 0.5
        reached = [t for t in ModelTier.levels() if t in best and best[t] >= self.target - _TOLERANCE]
        policy = f"quality_target:{self.target:g}->"
        if reached:
            tier = reached[0]
            return QualityChoice(tier, difficulty, policy + str(tier),
                                 f"quality target {self.target:g}: {tier} is the cheapest tier expected to reach "
                                 f"it (P={best[tier]:.2f} of matching the best, from the outcome model)")
        tier = ModelTier.levels()[-1]
        highest = max(best.values(), default=0.0)
        return QualityChoice(tier, difficulty, policy + str(tier),
                             f"quality target {self.target:g}: no tier is expected to reach it (highest "
                             f"P={highest:.2f}, from the outcome model), so the top tier {tier}")


def build_quality(cfg: Any, registry: Any, provider: str | None) -> QualityTarget | None:
    """The Router's quality target from its config, or None without ``quality_target``."""
    if cfg.quality_target is None:
        return None
    model = load_outcome_model(cfg.outcome_model) if cfg.outcome_model is not None else None
    return QualityTarget(cfg.quality_target, model, registry=registry, provider=provider)

