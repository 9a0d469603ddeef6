"""The Router: the cascade, hooks, plug-in layers, bad input, threads, tenants, registry and policies."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dmr
from dmr.errors import ConfigError, InputError, InputTypeError, PIIBlockedError
from dmr.layers import Context, LayerUnavailable, register_layer, unregister_layer
from dmr.packs import KeywordPack
from dmr.registry import ModelRegistry, register_provider, reset_default_registry
from dmr.router import Router
from dmr.types import Decision, ModelTier, TaskComplexity, TaskType, Verdict

EASY = "What is 2+2?"
HARD = "Design a CQRS architecture for an order system that is distributed across regions, with event sourcing"
ACME = {"version": "1", "providers": {"acme": {"tiers": {"low": "acme-s", "medium": "acme-m", "high": "acme-l"}}}}


def outcome(decision: Decision) -> tuple:
    """What a decision says, without its id and timing (which differ on every call)."""
    return (decision.tier, decision.model_name, decision.provider, decision.task_type, decision.complexity,
            decision.confidence, decision.difficulty, decision.layer, decision.reasoning,
            decision.estimated_cost_usd, decision.policies_applied)


def verdict(task_type=TaskType.MATH, complexity=TaskComplexity.SIMPLE, *, layer="custom") -> Verdict:
    return Verdict(task_type, complexity, 0.9, 0.3, layer, f"{layer} says so")


def broken_classifier(task, ctx):
    raise RuntimeError("classifier down")


class FixedLayer:
    """A plug-in layer that always answers the same (or raises)."""

    def __init__(self, name: str, answer: Verdict | None = None, error: Exception | None = None) -> None:
        self.name, self.answer, self.error = name, answer, error
        self.seen: list[str] = []

    def classify(self, task: str, ctx: Context) -> Verdict | None:
        self.seen.append(task)
        if self.error is not None:
            raise self.error
        return self.answer


@pytest.fixture
def plugin():
    """Register plug-in layers for one test; they are always unregistered afterwards."""
    names: list[str] = []

    def add(layer, position="last"):
        names.append(layer.name)
        return register_layer(layer, position)

    yield add
    for name in names:
        unregister_layer(name)


# -- the SEED examples and the defaults ----------------------------------------------------------

def test_a_simple_sum_goes_to_the_low_tier():
    decision = Router().classify(EASY)
    assert decision.tier is ModelTier.LOW
    assert (decision.task_type, decision.complexity, decision.layer) == (TaskType.MATH, TaskComplexity.SIMPLE, "layer1")


def test_a_distributed_design_goes_to_the_high_tier():
    decision = Router().classify("Design a CQRS architecture for…")
    assert decision.tier is ModelTier.HIGH
    assert Router().classify(HARD).tier is ModelTier.HIGH


def test_the_module_level_classify_uses_a_shared_default_router():
    assert dmr.classify(EASY).tier is ModelTier.LOW
    from dmr.router import default_router
    assert default_router() is default_router()


def test_without_layers_the_default_tier_applies():
    decision = Router(layer3_enabled=False, layer1_enabled=False).classify(HARD)
    assert (decision.tier, decision.layer, decision.confidence) == (ModelTier.MEDIUM, "default", 0.0)
    assert "default tier medium" in decision.reasoning
    assert decision.trace == ()
    assert Router(layer3_enabled=False, layer1_enabled=False, default_tier="high").classify(EASY).tier is ModelTier.HIGH
    assert Router(layer3_enabled=False, layer1_enabled=False).layers == ()


def test_an_unknown_default_tier_is_a_config_error():
    with pytest.raises(ConfigError, match="default_tier"):
        Router(default_tier="ultra")


def test_escalation_threshold_decides_whether_layer1_is_confident():
    task = "Explain the design of this system"  # Layer 1 confidence 0.6
    sure = Router(layer3_enabled=False, escalation_threshold=0.5).classify(task)
    unsure = Router(layer3_enabled=False, escalation_threshold=0.9).classify(task)
    assert [s.outcome for s in sure.trace] == ["decided"]
    assert [s.outcome for s in unsure.trace] == ["unsure"]
    assert "no layer was confident" in unsure.reasoning and "no layer was confident" not in sure.reasoning
    assert unsure.tier is sure.tier  # with no other layer, its answer is still used


def test_with_no_layer_confident_the_last_one_consulted_answers():
    """Layer 1 at 0.6 and a Layer 3 at 0.3: Layer 3's answer stands, although its confidence is lower,
    because it is the later, more capable layer (their confidences are not on one scale)."""
    from dmr.layers.embedding import register_l3_strategy
    from dmr.types import TaskComplexity, TaskType, Verdict

    register_l3_strategy("unsure-math", lambda task, history: Verdict(
        TaskType.MATH, TaskComplexity.COMPLEX, 0.3, 0.8, "layer3", "Layer 3: unsure math"))
    task = "Explain the design of this system"  # Layer 1: reasoning at 0.6
    decision = Router(layer3_strategy="unsure-math", escalation_threshold=0.9).classify(task)
    assert [(s.layer, s.outcome) for s in decision.trace] == [("layer1", "unsure"), ("layer3", "unsure")]
    assert decision.trace[0].confidence > decision.trace[1].confidence
    assert (decision.task_type, decision.layer) == (TaskType.MATH, "layer3")
    assert "no layer was confident, so the last one consulted answered" in decision.reasoning


def test_a_decision_has_a_cost_with_the_bundled_registry():
    decision = Router().classify(HARD)
    assert decision.provider == "google" and decision.model_name == "gemini-2.5-pro"
    assert decision.estimated_cost_usd > 0
    assert decision.estimated_cost_usd > Router().classify(EASY).estimated_cost_usd


# -- hooks -------------------------------------------------------------------------------------

def test_a_pre_hook_can_rewrite_the_task():
    decision = Router(pre_classify_hooks=[lambda task: HARD]).classify(EASY)
    assert outcome(decision)[:7] == outcome(Router().classify(HARD))[:7]


def test_a_pre_hook_returning_none_leaves_the_task_alone():
    seen = []
    decision = Router(pre_classify_hooks=[seen.append]).classify(EASY)
    assert seen == [EASY] and decision.tier is ModelTier.LOW


def test_a_pre_hook_that_empties_the_task_is_an_input_error():
    with pytest.raises(InputError):
        Router(pre_classify_hooks=[lambda task: "  "]).classify(EASY)


def test_a_post_hook_can_replace_the_decision():
    def upgrade(decision):
        return dataclasses.replace(decision, tier=ModelTier.HIGH, policies_applied=("upgraded",))

    decision = Router(post_classify_hooks=[upgrade, lambda d: None]).classify(EASY)
    assert decision.tier is ModelTier.HIGH and decision.policies_applied == ("upgraded",)


def test_an_on_error_hook_can_supply_a_fallback_decision():
    fallback = Router(layer1_enabled=False).classify(EASY)
    rescued = Router(custom_classifier=broken_classifier, on_error_hooks=[lambda exc: fallback])
    assert rescued.classify(EASY) is fallback
    with pytest.raises(RuntimeError, match="classifier down"):
        Router(custom_classifier=broken_classifier, on_error_hooks=[lambda exc: None]).classify(EASY)


def test_an_on_error_hook_can_turn_a_pii_block_into_a_decision():
    fallback = Router(layer1_enabled=False, default_tier="high").classify(EASY)
    router = Router(pii_policy={"block": True}, on_error_hooks=[
        lambda exc: fallback if isinstance(exc, PIIBlockedError) else None])
    assert router.classify("mail jane@example.com the answer") is fallback


def test_hooks_may_take_one_or_two_parameters():
    calls = []

    def pre_one(task):
        calls.append(("pre", task))

    def pre_two(task, ctx):
        calls.append(("pre-ctx", type(ctx).__name__, ctx.length))

    def post_one(decision):
        calls.append(("post", decision.tier))

    def post_two(decision, ctx):
        calls.append(("post-ctx", type(ctx).__name__))

    def on_error_two(exc, ctx):
        calls.append(("error-ctx", str(exc), type(ctx).__name__))

    def on_error_one(exc):
        calls.append(("error", str(exc)))

    Router(pre_classify_hooks=[pre_one, pre_two], post_classify_hooks=[post_one, post_two]).classify(EASY)
    with pytest.raises(RuntimeError):
        Router(custom_classifier=broken_classifier, on_error_hooks=[on_error_two, on_error_one]).classify(EASY)
    assert calls == [("pre", EASY), ("pre-ctx", "Context", len(EASY)), ("post", ModelTier.LOW),
                     ("post-ctx", "Context"), ("error-ctx", "classifier down", "Context"),
                     ("error", "classifier down")]


def test_a_hook_that_is_not_callable_is_a_config_error():
    with pytest.raises(ConfigError, match="post_classify_hooks"):
        Router(post_classify_hooks=["not.imported:hook"])


# -- custom classifier -----------------------------------------------------------------------

def test_a_custom_classifier_returning_a_decision_is_final():
    fixed = Router(layer1_enabled=False).classify(EASY)
    assert Router(custom_classifier=lambda task, ctx: fixed).classify(HARD) is fixed


def test_a_custom_classifier_returning_a_verdict_goes_through_the_matrix():
    decision = Router(custom_classifier=lambda task, ctx: verdict(TaskType.MATH, TaskComplexity.RESEARCH)).classify(EASY)
    assert (decision.tier, decision.task_type, decision.layer) == (ModelTier.HIGH, TaskType.MATH, "custom")
    assert [(s.layer, s.outcome) for s in decision.trace] == [("custom", "decided")]
    assert decision.reasoning == "custom says so"


def test_a_custom_classifier_returning_none_falls_through_to_the_layers():
    seen = []

    def decline(task, ctx):
        seen.append((task, ctx.text))

    decision = Router(custom_classifier=decline).classify(EASY)
    assert seen == [(EASY, EASY)]
    assert outcome(decision)[:8] == outcome(Router().classify(EASY))[:8]


def test_a_custom_classifier_returning_something_else_is_a_config_error():
    with pytest.raises(ConfigError, match="custom_classifier returned str"):
        Router(custom_classifier=lambda task, ctx: "high").classify(EASY)


# -- plug-in layers ----------------------------------------------------------------------------

def test_a_layer_registered_first_decides_before_layer1(plugin):
    layer = plugin(FixedLayer("oracle", verdict(TaskType.TRANSLATION, TaskComplexity.COMPLEX, layer="oracle")), "first")
    router = Router(layer3_enabled=False)
    assert router.layers == ("oracle", "layer1")
    decision = router.classify(EASY)
    assert (decision.layer, decision.task_type, decision.tier) == ("oracle", TaskType.TRANSLATION, ModelTier.MEDIUM)
    assert layer.seen == [EASY]


def test_a_layer_after_layer1_runs_only_when_layer1_is_unsure(plugin):
    layer = plugin(FixedLayer("second", verdict(layer="second")), "after:layer1")
    assert Router(layer3_enabled=False).layers == ("layer1", "second")
    assert Router(layer3_enabled=False, escalation_threshold=0.1).classify(EASY).layer == "layer1"
    assert layer.seen == []
    decision = Router(layer3_enabled=False, escalation_threshold=1.0).classify(EASY)
    assert decision.layer == "second"
    assert [s.outcome for s in decision.trace] == ["unsure", "decided"]


@pytest.mark.parametrize("position, order", [
    (0, ("idx", "layer1")), (1, ("layer1", "idx")), (-1, ("layer1", "idx")), ("last", ("layer1", "idx")),
    ("before:layer1", ("idx", "layer1")),
])
def test_layer_positions(plugin, position, order):
    plugin(FixedLayer("idx"), position)
    assert Router(layer3_enabled=False).layers == order


def test_a_router_keeps_the_cascade_it_was_built_with(plugin):
    before = Router(layer3_enabled=False)
    plugin(FixedLayer("late"), "first")
    assert before.layers == ("layer1",) and Router(layer3_enabled=False).layers == ("late", "layer1")
    unregister_layer("late")
    assert Router(layer3_enabled=False).layers == ("layer1",)


def test_a_layer_that_passes_is_traced(plugin):
    plugin(FixedLayer("shy"), "first")
    decision = Router().classify(EASY)
    assert [(s.layer, s.outcome) for s in decision.trace] == [("shy", "passed"), ("layer1", "decided")]


def test_a_layer_that_raises_is_traced_and_skipped(plugin):
    plugin(FixedLayer("flaky", error=RuntimeError("model file corrupt")), "first")
    seen = []
    decision = Router(on_error_hooks=[seen.append]).classify(EASY)
    assert decision.tier is ModelTier.LOW and decision.layer == "layer1"
    step = decision.trace[0]
    assert (step.layer, step.outcome, step.detail) == ("flaky", "error", "RuntimeError: model file corrupt")
    assert [str(e) for e in seen] == ["model file corrupt"]


def test_a_layer_that_raises_stops_a_strict_router(plugin):
    plugin(FixedLayer("flaky", error=RuntimeError("model file corrupt")), "first")
    with pytest.raises(RuntimeError, match="model file corrupt"):
        Router(strict=True).classify(EASY)


def test_an_unavailable_layer_passes_unless_strict(plugin):
    plugin(FixedLayer("needs-gpu", error=LayerUnavailable("no GPU here")), "first")
    decision = Router().classify(EASY)
    assert (decision.trace[0].outcome, decision.trace[0].detail) == ("passed", "no GPU here")
    with pytest.raises(LayerUnavailable):
        Router(strict=True).classify(EASY)


def test_register_layer_validates_its_arguments():
    with pytest.raises(ConfigError, match="classify"):
        register_layer(object())
    with pytest.raises(ConfigError, match="position"):
        register_layer(FixedLayer("x"), "middle")


def test_a_position_naming_no_layer_is_a_config_error(plugin):
    plugin(FixedLayer("lost"), "after:layer9")
    with pytest.raises(ConfigError, match="layer9"):
        Router()


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["", "   ", "\n\t "])
def test_an_empty_task_is_an_input_error(task):
    with pytest.raises(InputError, match="empty"):
        Router().classify(task)


@pytest.mark.parametrize("task", [42, None, ["list"], 3.5])
def test_a_task_that_is_not_text_is_an_input_type_error(task):
    with pytest.raises(InputTypeError, match=type(task).__name__):
        Router().classify(task)
    with pytest.raises(TypeError):
        Router().classify(task)


def test_utf8_bytes_are_classified_like_the_text():
    router = Router()
    assert outcome(router.classify(HARD.encode()))[:8] == outcome(router.classify(HARD))[:8]
    assert router.classify(bytearray(EASY.encode())).tier is ModelTier.LOW


def test_invalid_bytes_give_a_decision_that_says_so():
    decision = Router().classify(b"Design a scalable \xff\xfe system \x80")
    assert isinstance(decision, Decision)
    assert "not valid UTF-8" in decision.reasoning


def test_lone_surrogates_are_replaced_and_every_layer_still_reads_the_task():
    task = "Prove that the square root of 2 \ud800is irrational, step by step\udfff"
    router = Router()
    clean = outcome(router.classify(task.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd")))
    for decision in (router.classify(task), router.classify_batch([task, EASY])[0]):
        assert "lone surrogates" in decision.reasoning
        assert [step.outcome for step in decision.trace if step.outcome == "error"] == []
        assert outcome(decision)[:8] == clean[:8]


def test_a_very_long_task_is_truncated_for_analysis():
    task = "Please review the following service logs carefully. " * 200_000  # about 10 MB
    assert len(task) >= 10_000_000
    decision = Router().classify(task)
    assert "truncated" in decision.reasoning
    assert f"{len(task):,}" in decision.reasoning


router_for_fuzzing = Router()
# With a quality target, Layer 3's difficulty output decides the tier even when Layer 1 decided.
targeted_for_fuzzing = Router(quality_target=0.9)
for _router in (router_for_fuzzing, targeted_for_fuzzing):
    _router.classify("load the layers before Hypothesis times the examples")


@given(st.one_of(st.text(), st.text(st.characters(exclude_categories=())), st.binary()))
def test_any_text_or_bytes_gives_a_decision_or_an_input_error(task):
    for router in (router_for_fuzzing, targeted_for_fuzzing):
        try:
            decision = router.classify(task)
        except InputError:
            assert not (task.decode("utf-8", "replace") if isinstance(task, bytes) else task).strip()
        else:
            assert isinstance(decision, Decision) and 0 <= decision.difficulty < 1


_odd_text = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from(["\ud800", "\udfff", "\x00"])))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_odd_text, st.text(), st.binary()), min_size=1, max_size=5))
def test_any_batch_gives_a_decision_or_an_input_error_per_task(batch):
    for router in (router_for_fuzzing, targeted_for_fuzzing):
        out = router.classify_batch(batch, return_exceptions=True)
        assert len(out) == len(batch)
        for task, answer in zip(batch, out):
            if isinstance(answer, Exception):
                assert isinstance(answer, InputError), (task, answer)
            else:
                assert isinstance(answer, Decision) and 0 <= answer.difficulty < 1


# -- threads -----------------------------------------------------------------------------------

def test_two_routers_used_from_eight_threads_answer_as_they_do_alone():
    legal = (KeywordPack.builder("legal").add(TaskType.REASONING, ["tort"])
             .escalator("multi-jurisdiction", weight=2).build())
    tuned = Router(extra_keyword_packs=[legal], l1_weights={"escalator": 2.0})
    plain = Router()
    tasks = ["What about the tort here?", "Is a multi-jurisdiction tort claim viable?", EASY, HARD,
             "Explain the design of this system", "hi", "Translate this into French: good morning",
             "Write a haiku about routers", "Briefly summarize this report"]
    expected = {(name, task): outcome(router.classify(task))
                for name, router in (("tuned", tuned), ("plain", plain)) for task in tasks}
    assert any(expected["tuned", t] != expected["plain", t] for t in tasks)  # the settings differ

    start = threading.Barrier(8)

    def worker(seed: int) -> list[tuple]:
        start.wait()
        answers = []
        for round_ in range(25):
            for i, task in enumerate(tasks):
                name, router = (("tuned", tuned), ("plain", plain))[(seed + round_ + i) % 2]
                answers.append((name, task, outcome(router.classify(task))))
        return answers

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [answer for answers in pool.map(worker, range(8)) for answer in answers]
    assert len(results) == 8 * 25 * len(tasks)
    for name, task, answer in results:
        assert answer == expected[name, task], (name, task)


# -- batch and async -------------------------------------------------------------------------

def test_classify_batch_keeps_the_order():
    decisions = Router().classify_batch([EASY, HARD])
    assert [d.tier for d in decisions] == [ModelTier.LOW, ModelTier.HIGH]


def test_classify_batch_stops_on_a_bad_task_unless_asked_not_to():
    router = Router()
    with pytest.raises(InputError):
        router.classify_batch([EASY, "", HARD])
    out = router.classify_batch([EASY, "", 42, HARD], return_exceptions=True)
    assert isinstance(out[0], Decision) and isinstance(out[3], Decision)
    assert type(out[1]) is InputError and type(out[2]) is InputTypeError


def test_classify_batch_returns_any_exception_a_task_raises_when_asked():
    def custom(text, ctx):
        if "boom" in text:
            raise ValueError(f"custom classifier failed on {text!r}")
        return None

    router = Router(custom_classifier=custom)
    with pytest.raises(ValueError, match="boom"):
        router.classify_batch([EASY, "boom", HARD])
    out = router.classify_batch([EASY, "boom", HARD], return_exceptions=True)
    assert isinstance(out[0], Decision) and isinstance(out[2], Decision)
    assert type(out[1]) is ValueError and "boom" in str(out[1])


def test_aclassify():
    router = Router()
    decision = asyncio.run(router.aclassify(HARD))
    assert outcome(decision)[:8] == outcome(router.classify(HARD))[:8]
    with pytest.raises(InputError):
        asyncio.run(router.aclassify(""))


def test_aclassify_runs_blocking_layers_off_the_event_loop(plugin):
    class Blocking(FixedLayer):
        blocking = True

        def classify(self, task, ctx):
            self.seen.append(threading.current_thread() is threading.main_thread())
            return None

    layer = plugin(Blocking("slow-io"), "first")
    asyncio.run(Router().aclassify(EASY))
    assert layer.seen == [False]


# -- tenants -----------------------------------------------------------------------------------

def test_tenant_providers_and_provider():
    router = Router(provider="google")
    allowed = router.classify(EASY, tenant_config={"providers": ["anthropic", "openai"]})
    assert (allowed.provider, allowed.model_name) == ("anthropic", "claude-haiku-4-5-20251001")
    assert "tenant_provider:anthropic" in allowed.policies_applied
    kept = router.classify(EASY, tenant_config={"providers": ["openai", "google"]})
    assert kept.provider == "google" and kept.policies_applied == ()
    chosen = router.classify(EASY, tenant_config={"provider": "openai"})
    assert (chosen.provider, chosen.policies_applied) == ("openai", ("tenant_provider:openai",))


def test_tenant_min_and_max_tier():
    router = Router()
    floor = router.classify(EASY, tenant_config={"min_tier": "high"})
    assert floor.tier is ModelTier.HIGH and floor.policies_applied == ("tenant_min_tier:high",)
    cap = router.classify(HARD, tenant_config={"max_tier": "medium"})
    assert cap.tier is ModelTier.MEDIUM and cap.policies_applied == ("tenant_max_tier:medium",)
    assert "tenant caps the tier at medium" in cap.reasoning


def test_an_unknown_tenant_key_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        Router().classify(EASY, tenant_config={"min_tier": "low", "budget": 3})
    assert [p for p, _ in caught.value.problems] == ["tenant_config.budget"]


def test_bad_tenant_values_are_all_reported_as_config_errors():
    with pytest.raises(ConfigError) as caught:
        Router().classify(EASY, tenant_config={"min_tier": "ultra", "providers": "anthropic", "provider": 3})
    assert sorted(p for p, _ in caught.value.problems) == [
        "tenant_config.min_tier", "tenant_config.provider", "tenant_config.providers"]
    with pytest.raises(ConfigError, match="above max_tier"):
        Router().classify(EASY, tenant_config={"min_tier": "high", "max_tier": "low"})


# -- registry ----------------------------------------------------------------------------------

def test_a_router_with_its_own_registry_is_isolated_from_the_default_one():
    own = Router(model_registry=ACME)
    register_provider("zeta", {"low": "zeta-s", "medium": "zeta-m", "high": "zeta-l"})
    assert own.registry.providers() == ["acme"]
    assert "zeta" in Router().registry.providers()
    assert Router(provider="zeta").classify(EASY).model_name == "zeta-s"
    decision = own.classify(HARD)
    assert (decision.provider, decision.model_name) == ("acme", "acme-l")
    assert decision.estimated_cost_usd is None  # acme has no prices


def test_a_router_accepts_a_registry_object():
    registry = ModelRegistry.from_dict(ACME)
    assert Router(model_registry=registry).registry is registry


def test_model_registry_and_registry_together_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="either model_registry= or registry="):
        Router(model_registry=ACME, registry=str(tmp_path / "models.yaml"))


def test_without_a_default_registry_a_decision_has_a_tier_but_no_model(monkeypatch):
    monkeypatch.setenv("DMR_NO_DEFAULT_REGISTRY", "1")
    reset_default_registry()
    decision = Router().classify(HARD)
    assert decision.tier is ModelTier.HIGH
    assert (decision.model_name, decision.provider, decision.estimated_cost_usd) == (None, None, None)


def test_an_unknown_provider_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        Router(provider="nope")
    assert "known: google, openai, anthropic, mistral" in str(caught.value)
    assert caught.value.problems == [("provider", "unknown provider 'nope'")]


def test_a_missing_tier_is_substituted_upwards():
    registry = {"version": "1", "providers": {"duo": {"tiers": {"medium": "duo-m", "high": "duo-l"}}}}
    decision = Router(model_registry=registry).classify(EASY)
    assert (decision.tier, decision.model_name) == (ModelTier.MEDIUM, "duo-m")
    assert "tier_substituted:low->medium" in decision.policies_applied


def test_a_tier_held_by_a_cost_cap_is_substituted_downwards():
    # A provider without a medium model once answered a tenant capped at medium with its high one.
    registry = {"version": "1", "providers": {"duo": {"tiers": {"low": "duo-s", "high": "duo-l"}}}}
    router = Router(model_registry=registry)
    hard = "Prove that there are infinitely many primes, then formalise the proof in Lean 4."
    assert router.classify(hard).tier == ModelTier.HIGH
    capped = router.classify(hard, tenant_config={"max_tier": "medium"})
    assert (capped.tier, capped.model_name) == (ModelTier.LOW, "duo-s")
    assert "tier_substituted:medium->low" in capped.policies_applied
    assert not any(p.startswith("above_cost_cap") for p in capped.policies_applied)


def test_a_floor_that_lifts_a_decision_past_a_spent_budget_says_so(tmp_path):
    # The PII floor wins over the budget (personal data goes where the floor says), but the decision
    # once said nothing of the budget it went past.
    router = Router.from_preset("healthcare", budget_usd=1, budget_store=str(tmp_path / "spend.sqlite3"))
    router.budget.record_usd(5)
    router.budget._read_at = float("-inf")  # read the store now, not after the refresh interval
    decision = router.classify("Patient MRN 123456: summarise the discharge notes and flag drug interactions.")
    assert decision.tier == ModelTier.HIGH
    assert "above_cost_cap:medium->high" in decision.policies_applied
    assert "above the cost cap (medium) because of pii_floor:high" in decision.reasoning


def test_decision_ids_are_unique():
    router, other = Router(), Router()
    ids = [d.decision_id for d in router.classify_batch([EASY] * 10_000)]
    assert len(set(ids)) == 10_000
    assert not set(ids) & {d.decision_id for d in other.classify_batch([EASY] * 100)}


# -- PII policy --------------------------------------------------------------------------------

def test_the_pii_policy_can_block():
    with pytest.raises(PIIBlockedError) as caught:
        Router(pii_policy={"block": True}).classify("Reply to jane@example.com about card 4111 1111 1111 1111")
    assert caught.value.kinds == ("email", "credit_card")
    assert Router(pii_policy={"block": True}).classify(EASY).tier is ModelTier.LOW


def test_the_pii_policy_floor_raises_the_tier():
    decision = Router(pii_policy={"min_tier": "high"}).classify("Say hi to jane@example.com")
    assert decision.tier is ModelTier.HIGH
    assert decision.policies_applied == ("pii_detected:email", "pii_floor:high")
    assert Router(pii_policy={"min_tier": "high"}).classify(EASY).tier is ModelTier.LOW


def test_the_pii_policy_covers_the_history_the_model_is_sent_too():
    floor = Router(pii_policy={"min_tier": "high"})
    earlier = ["My card is 4111 1111 1111 1111, the email jane@example.com.", "Noted."]
    decision = floor.classify(EASY, history=earlier)
    assert decision.tier is ModelTier.HIGH
    assert decision.policies_applied == ("pii_detected:email,credit_card", "pii_floor:high")
    with pytest.raises(PIIBlockedError, match=r"history\[1\] contains personal data \(email\)") as caught:
        Router(pii_policy={"block": True}).classify(EASY, history=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "mail jane@example.com"}]}])
    assert caught.value.kinds == ("email",)
    for lone in ("jane@example.com", {"role": "user", "content": "jane@example.com"}):  # not a list
        assert floor.classify(EASY, history=lone).tier is ModelTier.HIGH


def _nested(depth, text):
    content = [text]
    for _ in range(depth):
        content = [content]
    return content


class _Turn:
    def __init__(self, role, content):
        self.role, self.content = role, content


@pytest.mark.parametrize("turn", [{"role": "assistant", "content": "Write to jane@example.com"},
                                  {"type": "ai", "content": "Write to jane@example.com"},
                                  _Turn("tool", "jane@example.com"), _Turn("user", ""), 42, None,
                                  {"role": "user", "content": _nested(5000, "jane@example.com")}])
def test_the_models_own_turns_and_turns_without_text_are_not_scanned(turn):
    decision = Router(pii_policy={"block": True}).classify(EASY, history=[turn])
    assert decision.tier is ModelTier.LOW and decision.policies_applied == ()
    assert Router(pii_policy={"min_tier": "high"}).classify(
        EASY, history=[turn, _Turn("human", b"jane@example.com")]).tier is ModelTier.HIGH


def test_pii_is_recorded_without_a_floor():
    decision = Router(pii_policy={}).classify("Say hi to jane@example.com")
    assert decision.tier is ModelTier.LOW and decision.policies_applied == ("pii_detected:email",)
    assert Router().classify("Say hi to jane@example.com").policies_applied == ()


def test_extra_pii_patterns_alone_record_pii():
    decision = Router(extra_pii_patterns={"employee_id": r"(?i)emp-\d{5}"}).classify("Ask emp-12345 about it")
    assert decision.policies_applied == ("pii_detected:employee_id",)


def test_a_bad_pii_policy_is_a_config_error():
    with pytest.raises(ConfigError, match="pii_policy.min_tier"):
        Router(pii_policy={"min_tier": "ultra"})
    with pytest.raises(ConfigError, match="extra_pii_patterns.bad"):
        Router(extra_pii_patterns={"bad": "(unclosed"})
