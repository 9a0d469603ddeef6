"""A decision's model must hold the input and the planned answer in its context window
(:mod:`dmr.context_fit`): the decision moves up its provider's tiers until one does, within what
the tenant and the budgets allow."""

from __future__ import annotations

import pytest

from dmr import Router, TaskComplexity, TaskType, Verdict
from dmr.errors import InputError
from dmr.tokens import tokenizer_for

WINDOWS = {"small": 1_000, "mid": 8_000, "large": 100_000}


def _registry(windows=WINDOWS, regions=None) -> dict:
    models = {name: {"provider": "p", "capabilities": {"context_window": window},
                     "cost": {"input_per_1m": price, "output_per_1m": price}}
              for (name, window), price in zip(windows.items(), (1.0, 2.0, 3.0))}
    for name, where in (regions or {}).items():
        models[name]["regions"] = where
    return {"version": "t", "models": models,
            "providers": {"p": {"base_url": "http://127.0.0.1:9/v1", "regions": ["EU", "US"],
                                "tiers": dict(zip(("low", "medium", "high"), windows))}}}


def easy(task, ctx):  # every task a simple conversation: the tier matrix says low
    return Verdict(TaskType.CONVERSATION, TaskComplexity.SIMPLE, 0.99, 0.05, "custom", "easy")


def _router(**options) -> Router:
    options.setdefault("model_registry", _registry())
    return Router(provider="p", custom_classifier=easy, layer2_enabled=False, **options)


def _words(n: int) -> str:
    return "Please read this: " + "word " * n


def test_an_input_too_long_for_the_chosen_model_goes_to_the_lowest_tier_that_holds_it():
    router = _router()
    short, medium, long, huge = (router.classify(_words(n)) for n in (100, 3_000, 30_000, 300_000))
    assert (short.model_name, short.policies_applied) == ("small", ())
    assert (medium.tier, medium.model_name, medium.policies_applied) == ("medium", "mid", ("context_window:low->medium",))
    assert "does not fit small's context window (1,000): raised to medium (mid)" in medium.reasoning
    tokens = tokenizer_for("mid")(_words(3_000))
    assert medium.estimated_cost_usd == pytest.approx((tokens + 150) * 2.0 / 1e6)  # priced as mid
    assert (long.model_name, long.policies_applied) == ("large", ("context_window:low->high",))
    # Held by no window: the largest one, said so.
    assert (huge.model_name, huge.policies_applied) == ("large", ("context_window_exceeded:high",))
    assert "fits no model in reach; large has the largest context window (100,000)" in huge.reasoning


def test_the_conversation_so_far_counts_too():
    router = _router()
    alone = router.classify("thanks")
    # A long system prompt and a long earlier answer are in the context the model must hold.
    followed = router.classify("thanks", history=[{"role": "system", "content": "word " * 2_000},
                                                  {"role": "assistant", "content": "word " * 2_000}])
    assert alone.model_name == "small"
    assert (followed.model_name, followed.policies_applied) == ("mid", ("context_window:low->medium",))


def test_the_tenants_ceiling_and_the_budgets_cap_hold(tmp_path):
    router = _router()
    capped = router.classify(_words(30_000), tenant_config={"max_tier": "medium"})
    assert (capped.model_name, capped.policies_applied) == ("mid", ("context_window_exceeded:medium",))
    tight = _router(budget_usd=1.0, budget_store=str(tmp_path / "b.sqlite3"))
    tight.budget.record_usd(0.85)  # past cap_at: from here no decision above medium
    assert tight.classify(_words(30_000)).model_name == "mid"
    tight.budget.reset()
    assert tight.classify(_words(30_000)).model_name == "large"
    poor = router.classify(_words(30_000), tenant_config={"tenant_id": "t", "budget_usd": 1.0})
    assert poor.model_name == "large"
    router.tenant_budget("t").record_usd(1.0)  # the tenant's own budget spent: held at medium
    assert router.classify(_words(30_000), tenant_config={"tenant_id": "t", "budget_usd": 1.0}).model_name == "mid"


def test_models_outside_the_residency_and_unknown_windows():
    resident = _router(residency="EU", model_registry=_registry(regions={"large": ["US"]}))
    assert resident.classify(_words(30_000)).model_name == "mid"  # large is not in the EU
    unknown = _router(model_registry=_registry({"small": None, "mid": 8_000, "large": 100_000}))
    assert unknown.classify(_words(30_000)).model_name == "small"  # no window known: nothing to check


def _capable(**lacks) -> dict:
    registry = _registry()
    for name, capability in lacks.items():
        registry["models"][name]["capabilities"][f"supports_{capability}"] = False
    return registry


def test_a_model_that_lacks_what_the_call_needs_is_passed_over():
    router = _router(model_registry=_capable(small="vision", mid="vision"))
    plain = router.classify("What is in this picture?")
    seeing = router.classify("What is in this picture?", needs=["vision"])
    tools = router.classify("What is in this picture?", needs={"function_calling", "supports_vision"})
    assert (plain.model_name, plain.policies_applied) == ("small", ())
    assert (seeing.model_name, seeing.policies_applied) == ("large", ("needs_vision:low->high",))
    assert "small cannot do vision" in seeing.reasoning
    assert tools.model_name == "large"  # unknown means able: only vision counted against them
    capped = router.classify("What is in this picture?", needs=["vision"], tenant_config={"max_tier": "medium"})
    assert (capped.model_name, capped.policies_applied) == ("small", ("needs_unmet:vision",))


def test_needs_and_the_context_window_together_and_bad_needs():
    router = _router(model_registry=_capable(mid="function_calling"))
    both = router.classify(_words(3_000), needs=["function_calling"])  # mid holds it but cannot call tools
    assert (both.model_name, set(both.policies_applied)) == ("large", {"context_window:low->high"})
    for bad in (["Vision!"], [3], ["x" * 80]):
        with pytest.raises(InputError, match="capability names"):
            router.classify("hi", needs=bad)


def test_needs_are_part_of_the_cache_key():
    router = _router(model_registry=_capable(small="vision"), cache_enabled=True)
    assert router.classify("Describe it.").model_name == "small"
    assert router.classify("Describe it.", needs=["vision"]).model_name == "mid"
    assert router.classify("Describe it.").policies_applied == ("cache_hit",)


def test_fallbacks_leave_out_models_whose_window_cannot_hold_the_task():
    registry = _registry()
    registry["models"].update({name: {"provider": "q", "capabilities": {"context_window": window},
                                      "cost": {"input_per_1m": 1.0, "output_per_1m": 1.0}}
                               for name, window in (("q-tiny", 1_000), ("q-mid", 2_000), ("q-roomy", 200_000))})
    registry["providers"]["q"] = {"base_url": "http://127.0.0.1:9/v1",
                                  "tiers": {"low": "q-tiny", "medium": "q-mid", "high": "q-roomy"}}
    router = Router(providers=["p", "q"], custom_classifier=easy, layer2_enabled=False, model_registry=registry)
    task = _words(3_000)
    decision = router.classify(task)
    assert (decision.provider, decision.model_name) == ("p", "mid")  # raised from low to hold it
    assert router.fallbacks(decision) == [("q", "q-mid")]
    assert router.fallbacks(decision, text=task) == []  # q-mid holds 2,000 tokens
    assert router.fallbacks(decision, higher_tiers=True, text=task) == [("p", "large")]
    assert router.fallbacks(decision, text="thanks") == [("q", "q-mid")]
    # The conversation so far counts too.
    assert router.fallbacks(decision, text="thanks", history=[{"role": "user", "content": task}]) == []
