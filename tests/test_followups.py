"""Follow-ups: a short turn of a conversation is routed no lower than the recent requests before it."""

from __future__ import annotations

import pytest
from fault_server import FaultServer, Reply

from dmr import ModelTier, Router
from dmr.errors import InputTypeError
from dmr.followups import FOLLOW_UP_CHARS, RECENT_REQUESTS, FollowUpFloor

HARD = ("Implement a lock-free multi-producer multi-consumer queue in Rust, prove its memory orderings "
        "correct, and test it with loom and benchmarks against crossbeam.")
SYSTEM_HARD = ("You are a principal engineer. Design distributed systems with consensus, sharding, "
               "exactly-once delivery and formal verification of every protocol.")


@pytest.fixture(scope="module")
def router():
    return Router()


def _chat(*turns):
    return [{"role": role, "content": text} for role, text in turns]


@pytest.mark.parametrize("follow_up", ["continue", "now add docs", "继续", "¿y en Java?", "what about an empty queue?"])
def test_a_short_follow_up_keeps_the_tier_of_the_request_it_follows(router, follow_up):
    alone = router.classify(follow_up)
    assert alone.tier is ModelTier.LOW
    hard = router.classify(HARD)
    assert hard.tier is ModelTier.HIGH
    history = _chat(("system", "Be concise."), ("user", HARD), ("assistant", "Here is the queue: ..."))
    decision = router.classify(follow_up, history=history)
    assert decision.tier is ModelTier.HIGH
    assert decision.policies_applied == ("follow_up_floor:high",)
    assert "follow-up to history[1]" in decision.reasoning
    # The follow-up's own labels are kept; only the tier is raised, and its difficulty with it.
    assert (decision.task_type, decision.complexity) == (alone.task_type, alone.complexity)
    assert decision.difficulty > alone.difficulty
    # Plain strings count as the client's turns too.
    assert router.classify(follow_up, history=[HARD, "Here is the queue: ..."]).tier is ModelTier.HIGH


def test_a_task_that_describes_itself_is_routed_on_its_own(router):
    task = ("Write a short, warm thank-you note to my neighbour for watering the plants while we were "
            "away on holiday last week, mention the tomatoes they saved, and invite them over for "
            "dinner on Saturday evening.")
    assert len(task) > FOLLOW_UP_CHARS
    decision = router.classify(task, history=[HARD, "Done."])
    assert decision.tier is ModelTier.LOW and decision.policies_applied == ()


def test_the_system_prompt_and_the_models_turns_set_no_floor(router):
    history = _chat(("system", SYSTEM_HARD), ("assistant", HARD), ("tool", HARD), ("user", "hi"))
    decision = router.classify("continue", history=history)
    assert decision.tier is ModelTier.LOW and decision.policies_applied == ()


def test_only_the_recent_requests_count(router):
    easy = ["what's the capital of France?", "and of Spain?", "and of Italy?", "and of Portugal?"]
    older = [HARD, *easy[:RECENT_REQUESTS]]
    assert router.classify("continue", history=older).tier is ModelTier.LOW
    recent = [HARD, *easy[:RECENT_REQUESTS - 1]]
    assert router.classify("continue", history=recent).tier is ModelTier.HIGH


def test_a_chain_of_the_same_follow_up_keeps_the_tier_of_the_request_it_continues(router):
    chain = [("user", HARD)]
    for _ in range(2 * RECENT_REQUESTS):
        chain += [("assistant", "Here is the next part: ..."), ("user", "Continue")]
    decision = router.classify("continue", history=_chat(*chain))
    assert decision.tier is ModelTier.HIGH and "history[0]" in decision.reasoning
    # A different short request in between still counts towards the window.
    mixed = [HARD, "ok", "what's the capital of France?", "ok", "and of Spain?", "ok", "and of Italy?"]
    assert router.classify("continue", history=mixed).tier is ModelTier.LOW


def test_an_acknowledgement_keeps_its_own_tier_unless_the_model_asked(router):
    told = _chat(("user", HARD), ("assistant", "Here is the queue. Let me know if anything is unclear."))
    asked = _chat(("user", HARD), ("assistant", "Here is a sketch. Shall I write the whole module?"))
    for ack in ("thanks!", "yes", "ok"):
        assert router.classify(ack, history=told).tier is ModelTier.LOW
        assert router.classify(ack, history=asked).tier is ModelTier.HIGH
    # Something that is not a bare acknowledgement follows up either way.
    assert router.classify("continue", history=told).tier is ModelTier.HIGH
    # Questions in other scripts count; code that ends in a semicolon is not a question.
    for asking in ("هل أكتب الوحدة كاملة؟", "Γράφω όλο το module\u037e", "全部写出来吗？"):
        assert router.classify("ok", history=_chat(("user", HARD), ("assistant", asking))).tier is ModelTier.HIGH
    code = _chat(("user", HARD), ("assistant", "let queue = Queue::new();"))
    assert router.classify("thanks!", history=code).tier is ModelTier.LOW


def test_the_floor_can_be_switched_off_and_policies_still_apply_after_it(tmp_path):
    assert Router(follow_up_floor=False).classify("continue", history=[HARD]).tier is ModelTier.LOW
    config = tmp_path / "dmr.yaml"
    config.write_text("follow_up_floor: false\n")
    assert Router.from_yaml(config).classify("continue", history=[HARD]).tier is ModelTier.LOW
    # A tenant's cap is applied to the raised tier.
    capped = Router().classify("continue", history=[HARD], tenant_config={"max_tier": "medium"})
    assert capped.tier is ModelTier.MEDIUM
    assert capped.policies_applied[0] == "follow_up_floor:high"


def test_earlier_requests_never_reach_layer2():
    """Layer 2 classifies the task itself when the cheaper layers are unsure, but never the
    conversation's earlier turns: that would be one LLM call per turn per request."""
    with FaultServer() as server:
        server.script(Reply.openai({"task_type": "conversation", "complexity": "simple", "confidence": 0.9}))
        router = Router(layer2_provider="openai", layer2_model="fake-model", layer2_base_url=server.url + "/v1",
                        escalation_threshold=1.0, layer3_threshold=1.0, l2_retry_policy={"max_attempts": 1})
        decision = router.classify("continue", history=[HARD, "Sure.", "Now make it wait-free."])
        assert decision.layer == "layer2"
        assert server.count == 1
        assert decision.tier is ModelTier.HIGH and "follow_up_floor:high" in decision.policies_applied


def test_each_earlier_request_is_classified_once_per_conversation():
    calls = []

    def level(text):
        calls.append(text)
        return (ModelTier.HIGH, 0.9) if text == HARD else (ModelTier.LOW, 0.1)

    floor = FollowUpFloor(level)
    history = [HARD, "Done.", "shorter please"]
    for _ in range(3):
        found = floor.floor("continue", history)
        assert (found.tier, found.index) == (ModelTier.HIGH, 0)
    assert sorted(calls) == sorted([HARD, "Done.", "shorter please"])
    assert floor.floor("x" * (FOLLOW_UP_CHARS + 1), history) is None
    assert floor.floor("continue", None) is None and floor.floor("continue", []) is None
    assert floor.floor("continue", HARD).index == 0  # a lone string is one turn


class _Message:
    """A framework's message object: role and content, and iterable over its fields as pydantic
    models are (which must not make it a list of turns)."""

    def __init__(self, role, content):
        self.role, self.content = role, content

    def __iter__(self):
        return iter([("role", self.role), ("content", self.content)])


def test_the_history_is_read_once_whatever_its_shape_and_a_bad_one_is_a_clear_error(router):
    with pytest.raises(InputTypeError, match="history must be a list of turns"):
        router.classify("continue", history=42)
    # An iterator is read once, so the PII policy and the floor both see every turn of it.
    flagged = Router(pii_policy={"min_tier": "medium"}).classify(
        "continue", history=(turn for turn in ["mail jane@example.com", HARD]))
    assert flagged.tier is ModelTier.HIGH
    assert flagged.policies_applied == ("follow_up_floor:high", "pii_detected:email")
    # One message object, not a list, is one turn.
    assert router.classify("continue", history=_Message("user", HARD)).tier is ModelTier.HIGH
    assert router.classify("continue", history=[_Message("assistant", HARD)]).tier is ModelTier.LOW
