"""Layer 3 in the cascade: the bundled head, strategies, thresholds, and failures that pass."""

from __future__ import annotations

import pytest

import dmr
from dmr.errors import ConfigError, NotAvailableError
from dmr.layers.base import Context
from dmr.layers.embedding import DEFAULT_HEAD, EmbeddingLayer, L3Scores, l3_strategies, register_l3_strategy
from dmr.types import TaskComplexity, TaskType, Verdict


def _l3_step(decision):
    return next(step for step in decision.trace if step.layer == "layer3")


def test_the_default_router_has_layer3_after_layer1():
    assert DEFAULT_HEAD.is_file()
    router = dmr.Router()
    assert router.layers[:2] == ("layer1", "layer3")


def test_layer3_decides_a_task_layer1_is_unsure_of():
    task = "Compare the pros and cons of these two vendor proposals and tell me which one fits a small team better."
    decision = dmr.Router().classify(task)
    assert decision.trace[0].layer == "layer1" and decision.trace[0].outcome == "unsure"
    assert decision.layer == "layer3" and decision.task_type == "analyzing"
    assert _l3_step(decision).outcome == "decided"
    assert decision.reasoning.startswith("Layer 3:")
    assert 0.0 <= decision.difficulty <= 1.0


def test_layer3_can_be_turned_off():
    router = dmr.Router(layer3_enabled=False)
    assert "layer3" not in router.layers


def test_the_threshold_is_configurable():
    task = "Could you take a look at our quarterly churn figures and tell me what stands out?"
    assert _l3_step(dmr.Router(layer3_threshold=1.0).classify(task)).outcome == "unsure"
    assert _l3_step(dmr.Router(layer3_threshold=0.0).classify(task)).outcome == "decided"


def test_layer3_runs_when_layer1_is_off():
    decision = dmr.Router(layer1_enabled=False, layer3_threshold=0.0).classify("Translate 'thank you' into Japanese")
    assert decision.layer == "layer3"
    assert decision.task_type == TaskType.TRANSLATION


def test_confirm_or_overrule_is_explained():
    layer = EmbeddingLayer()
    ctx = Context(text="x", length=1)
    dmr.Router()._l1.classify("Write a Python function that parses ISO dates", ctx)
    l1 = Verdict(TaskType.CONVERSATION, TaskComplexity.SIMPLE, 0.3, 0.1, "layer1")
    ctx.verdicts.append(l1)
    verdict = layer.classify("Write a Python function that parses ISO dates", ctx)
    assert verdict.task_type == TaskType.CODE_CREATION
    assert "overrules Layer 1 (conversation, simple)" in verdict.reasoning


def test_predictions_are_deterministic():
    router = dmr.Router(layer3_threshold=0.0, escalation_threshold=1.0)
    tasks = ["Summarise this contract", "証明してください: √2 は無理数", "hola, ¿qué tal?"]
    first = [(d.task_type, d.complexity, d.confidence) for d in map(router.classify, tasks)]
    fresh = dmr.Router(layer3_threshold=0.0, escalation_threshold=1.0)
    again = [(d.task_type, d.complexity, d.confidence) for d in map(fresh.classify, tasks)]
    assert first == again


@pytest.mark.parametrize("damage", ["missing", "corrupt", "bad_metadata"])
def test_a_broken_head_makes_layer3_pass_with_the_reason(tmp_path, damage):
    head = tmp_path / "head.npz"
    if damage != "missing":
        head.write_bytes(DEFAULT_HEAD.read_bytes() if damage == "bad_metadata" else b"\x00garbage")
        head.with_suffix(".json").write_text("{}" if damage == "bad_metadata" else
                                             DEFAULT_HEAD.with_suffix(".json").read_text())
    layer = EmbeddingLayer(head)
    ok, why = layer.available()
    assert not ok and why
    dmr.register_layer(layer, "after:layer1")
    try:
        decision = dmr.Router(layer3_enabled=False, escalation_threshold=1.0).classify("Refactor this module")
    finally:
        dmr.layers.unregister_layer("layer3")
    step = _l3_step(decision)
    assert step.outcome == "passed"
    assert ("not found" in step.detail) if damage == "missing" else ("unusable" in step.detail)
    assert decision.layer == "layer1"


def test_naming_a_broken_head_is_a_clear_config_error(tmp_path):
    with pytest.raises(NotAvailableError, match="layer3"):
        dmr.Router(layer3_head=str(tmp_path / "nope.npz"))


def test_strict_mode_raises_for_a_broken_head(tmp_path):
    layer = EmbeddingLayer(tmp_path / "nope.npz")
    dmr.register_layer(layer, "after:layer1")
    try:
        router = dmr.Router(layer3_enabled=False, escalation_threshold=1.0, strict=True)
        with pytest.raises(dmr.layers.LayerUnavailable, match="not found"):
            router.classify("Refactor this module")
    finally:
        dmr.layers.unregister_layer("layer3")


def test_register_and_choose_a_strategy_by_name():
    seen: list[L3Scores] = []

    def always_math(task: str, history, scores: L3Scores) -> Verdict:
        seen.append(scores)
        return Verdict(TaskType.MATH, TaskComplexity.COMPLEX, 0.99, 0.9, "layer3", "always math")

    assert register_l3_strategy("always-math", always_math) is always_math
    assert "always-math" in l3_strategies() and "tier" in l3_strategies()
    decision = dmr.Router(layer3_strategy="always-math", escalation_threshold=1.0).classify("hello there, friend")
    assert (decision.task_type, decision.layer) == (TaskType.MATH, "layer3")
    scores = seen[0]
    assert abs(sum(scores.type_probs.values()) - 1) < 1e-6 and abs(sum(scores.complexity_probs.values()) - 1) < 1e-6
    assert scores.l1 is not None and scores.l1.layer == "layer1"


def test_a_strategy_may_pass():
    register_l3_strategy("never", lambda task, history: None)
    decision = dmr.Router(layer3_strategy="never", escalation_threshold=1.0).classify("hello there, friend")
    assert _l3_step(decision).outcome == "passed"


def test_a_seed_style_strategy_gets_the_task_and_history_and_may_return_a_mapping():
    calls = []

    def by_length(task, history):
        calls.append((task, history))
        return {"task_type": "analyzing", "complexity": "complex", "confidence": 0.9}

    register_l3_strategy("by-length", by_length)
    router = dmr.Router(layer3_strategy="by-length", escalation_threshold=1.0)
    decision = router.classify("look at these numbers", history=["earlier turn"])
    # The task with its history; then the earlier request alone, for the follow-up floor (dmr.followups).
    assert calls == [("look at these numbers", ["earlier turn"]), ("earlier turn", None)]
    assert (decision.task_type, decision.complexity, decision.layer) == ("analyzing", "complex", "layer3")


def test_a_strategy_with_a_bad_answer_is_recorded_as_an_error():
    register_l3_strategy("bad", lambda task, history, **kw: "high")
    decision = dmr.Router(layer3_strategy="bad", escalation_threshold=1.0).classify("hello there")
    step = _l3_step(decision)
    assert step.outcome == "error" and "expected Verdict, mapping or None" in step.detail
    register_l3_strategy("bad-map", lambda task, history: {"task_type": "nope", "complexity": "simple",
                                                          "confidence": 1})
    assert _l3_step(dmr.Router(layer3_strategy="bad-map", escalation_threshold=1.0).classify("hi")).outcome == "error"


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown strategy"):
        dmr.Router(layer3_strategy="no-such-strategy")
    with pytest.raises(ConfigError):
        register_l3_strategy("", lambda task, history: None)
    with pytest.raises(ConfigError):
        register_l3_strategy("x", "not callable")  # type: ignore[arg-type]


def test_min_strategy_reports_the_smaller_probability():
    router = dmr.Router(layer3_strategy="min", escalation_threshold=1.0, layer3_threshold=0.0)
    decision = router.classify("Write a SQL query that lists customers without orders")
    assert decision.layer == "layer3" and 0 < decision.confidence <= 1


def test_tier_confidence_is_the_probability_of_the_tier():
    layer = EmbeddingLayer()
    ctx = Context(text="", length=0)
    task = "Explain why the sky is blue"
    scores = layer.scores(task, ctx)
    verdict = layer.classify(task, ctx)
    slow = L3Scores(scores.type_probs, scores.complexity_probs, scores.tier_of, None)
    assert abs(slow.tier_probability(verdict.task_type, verdict.complexity) - verdict.confidence) < 1e-3
    assert verdict.confidence >= max(scores.type_probs.values()) * max(scores.complexity_probs.values()) - 1e-9


def test_classify_batch_gives_the_same_decisions_as_classify():
    router = dmr.Router(escalation_threshold=1.0)
    tasks = ["Summarise this contract", "hola, ¿qué tal?", "Summarise this contract", "x" * 20_000,
             "証明してください: √2 は無理数", b"bytes task"]
    batch = router.classify_batch(tasks)
    one_by_one = [router.classify(t) for t in tasks]
    assert [(d.task_type, d.complexity, d.confidence, d.layer) for d in batch] == \
        [(d.task_type, d.complexity, d.confidence, d.layer) for d in one_by_one]
    layer = router._layers[router.layers.index("layer3")]
    assert getattr(layer._local, "primed", None) is None  # nothing kept after the batch
    results = router.classify_batch(["fine", "   "], return_exceptions=True)
    assert isinstance(results[1], dmr.InputError) and results[0].layer in ("layer1", "layer3")


def _head_alone(layer, task, signals, sparse):
    """Layer 3's probabilities and needs for one task, computed row by row."""
    head = layer._load()
    z = head.logits_one(task, signals, sparse)
    p_type, p_cx = head.proba_from_logits(z)
    return p_type[0].tobytes(), p_cx[0].tobytes(), float(head.needs_from_logits(z)[0])


def _l1_signals_alone(task):
    ctx = Context(text=task, length=len(task))
    dmr.Router(layer3_enabled=False)._l1.classify(task, ctx)
    return ctx.signals["l1"]


def test_a_batch_runs_the_head_with_layer1s_signals_to_the_same_bits():
    router = dmr.Router()
    layer = router._l3
    tasks = ["Summarise this contract", "hola, ¿qué tal?", "証明してください: √2 は無理数", "x" * 5000]
    answers = router._l1.prime(tasks)
    ours = {task: signals for task, (_, signals) in answers.items()}
    other = {task: _l1_signals_alone(task) for task in tasks}  # equal to Layer 1's, but not the same objects
    sparse = dict(zip(tasks, layer._load().sparse_logits(tasks)))
    layer.prime(tasks, ours)
    try:
        for task in tasks:
            for signals in (ours[task], other[task]):  # primed with these signals, or not: the same bits
                ctx = Context(text=task, length=len(task))
                ctx.signals["l1"] = signals
                scores = layer.scores(task, ctx)
                assert (scores.type_array.tobytes(), scores.complexity_array.tobytes(), scores.needs) == \
                    _head_alone(layer, task, signals, sparse[task])
    finally:
        layer.unprime()
        router._l1.unprime()


def test_a_batch_leaves_out_of_layer3_only_what_layer1_decides(monkeypatch):
    easy, unsure = "hi", "Could you take a look at our quarterly churn figures and tell me what stands out?"
    for options, expected in (({}, [unsure]), ({"quality_target": 0.9}, [easy, unsure]),
                              ({"latency_budget_ms": 1000}, [easy, unsure])):
        router = dmr.Router(**options)
        primed = []
        real = router._l3.prime
        monkeypatch.setattr(router._l3, "prime", lambda tasks, signals=None: (primed.extend(tasks), real(tasks, signals)))
        batch = router.classify_batch([easy, unsure])
        assert primed == expected
        assert [d.to_dict() | {"decision_id": 0, "latency_ms": 0, "trace": 0} for d in batch] == \
            [router.classify(t).to_dict() | {"decision_id": 0, "latency_ms": 0, "trace": 0} for t in (easy, unsure)]


def test_without_the_bundled_head_default_passes_and_true_insists(tmp_path, monkeypatch):
    import dmr.layers.embedding as embedding

    monkeypatch.setattr(embedding, "DEFAULT_HEAD", tmp_path / "gone.npz")
    decision = dmr.Router(escalation_threshold=1.0).classify("Refactor this module")
    assert _l3_step(decision).outcome == "passed" and "not found" in _l3_step(decision).detail
    with pytest.raises(NotAvailableError, match="not found"):
        dmr.Router(layer3_enabled=True)


def test_without_numpy_layer3_is_unavailable_with_the_reason(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` now raises ImportError
    ok, why = EmbeddingLayer().available()
    assert not ok and "numpy is not installed" in why


def test_layer3_keeps_layer1_complexity_when_layer1_found_several_escalators():
    from dmr import Router

    assert Router().classify("Design a distributed lock…").tier.value == "high"
    # A Layer 3 that calls everything simple: Layer 1's two escalators ("design", "distributed")
    # keep the complexity, the type stays Layer 3's.
    register_l3_strategy("all-simple", lambda task, history: Verdict(
        TaskType.REASONING, TaskComplexity.SIMPLE, 0.99, 0.1, "layer3", "simple"))
    router = Router(layer3_strategy="all-simple")
    kept = router.classify("Design a distributed lock…")
    assert kept.layer == "layer3" and kept.task_type is TaskType.REASONING
    assert kept.complexity.rank > TaskComplexity.SIMPLE.rank and "escalators" in kept.reasoning
    # a single, negated or absent escalator leaves Layer 3 free to call the task simple
    for task in ("No need for a full design, just give me the command to list files", "Design a logo"):
        free = router.classify(task)
        assert free.layer == "layer3" and free.complexity is TaskComplexity.SIMPLE, task
    assert Router().classify("No need for a full design, just give me the command to list files").tier.value == "low"


def test_a_pasted_table_does_not_turn_a_hard_ask_into_a_simple_one():
    """Sixty rows of numbers under a regression request used to outweigh the request in every
    feature and route it low; the head reads the table's first rows only, so the ask decides."""
    from dmr import Router

    ask = ("Fit a multiple regression of yield on temperature and fertiliser for the plots below, give the "
           "coefficient estimates, standard errors, t and p values, and check multicollinearity with VIF.\n")
    rows = ["\n".join(f"{i},{20 + i % 7}.4,{1 + i % 3}.2,{70 + i}.5" for i in range(n)) for n in (60, 200)]
    router = Router()
    decisions = router.classify_batch([ask + r for r in rows]) + [router.classify(ask + rows[0])]
    assert {str(d.tier) for d in decisions} == {str(decisions[0].tier)}
    # the ask decides: the regression goes above a sum over the same table
    order = ["low", "medium", "high"]
    simple = router.classify("Add up the last column:\n" + rows[0])
    assert order.index(str(decisions[0].tier)) > order.index(str(simple.tier))
    assert str(router.classify("Add up the last column:\n" + rows[0][:200]).tier) == "low"
    # Layer 1's word count is scaled to the cut text too: 60 rows are not 60 words of ask
    assert str(simple.tier) == "low"
