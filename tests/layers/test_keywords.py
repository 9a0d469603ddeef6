"""Layer 1 (keyword heuristics) on English: what raises or lowers complexity, and what decides the type."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmr.config import RouterConfig
from dmr.errors import ConfigError
from dmr.layers import keywords, register_layer, unregister_layer
from dmr.layers.base import Context
from dmr.difficulty import type_gap
from dmr.layers.keywords import DEFAULT_WEIGHTS, KeywordLayer, complexity_for, difficulty_for
from dmr.packs import WORD_SEPARATORS, KeywordPack, bundled_packs
from dmr.router import Router
from dmr.types import TaskComplexity, TaskType


@pytest.fixture(scope="module")
def layer() -> KeywordLayer:
    return KeywordLayer(bundled_packs())


def run(layer: KeywordLayer, task: str):
    """The verdict and the signals Layer 1 left in the context."""
    ctx = Context(text=task, length=len(task))
    verdict = layer.classify(task, ctx)
    return verdict, ctx.signals["l1"]


# -- trivial inputs ----------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["hi", "thanks!", "ok", "Hi", "OK.", "thank you so much", "good morning!"])
def test_greetings_and_acknowledgements_are_simple_conversation(layer, task):
    verdict, signals = run(layer, task)
    assert signals.trivial is True
    assert (verdict.task_type, verdict.complexity) == (TaskType.CONVERSATION, TaskComplexity.SIMPLE)
    assert verdict.confidence >= 0.9
    assert verdict.layer == "layer1"
    assert "greeting or acknowledgement" in verdict.reasoning


def test_the_trivial_guard_needs_the_whole_input(layer):
    verdict, signals = run(layer, "ok, now design a fault-tolerant distributed architecture for payments")
    assert signals.trivial is False
    assert verdict.complexity.rank >= TaskComplexity.COMPLEX.rank


# -- escalators, negation and de-escalators -------------------------------------------------------

def test_escalators_raise_complexity(layer):
    plain, plain_signals = run(layer, "Write an article about databases")
    hard, hard_signals = run(layer, "Write a comprehensive, in-depth article about scalable distributed databases")
    assert plain_signals.escalators == ()
    assert {"comprehensive", "in-depth", "scalable", "distributed"} <= set(hard_signals.escalators)
    assert hard_signals.score > plain_signals.score
    assert hard.complexity.rank > plain.complexity.rank
    assert hard.difficulty > plain.difficulty


def test_a_novel_the_book_is_not_novel_the_adjective(layer):
    book, book_signals = run(layer, "Summarize the plot of the novel Pride and Prejudice in three sentences.")
    new, new_signals = run(layer, "Propose a novel approach to caching query plans in a database.")
    assert book_signals.escalators == () and book.complexity.rank <= TaskComplexity.STANDARD.rank
    assert "novel approach" in new_signals.escalators and new_signals.score > book_signals.score


@pytest.mark.parametrize("task", ["Design a weekly meal plan for a family of four.",
                                  "Diseña un plan de comidas semanal para una familia de cuatro.",
                                  "私の部屋のレイアウトを最適化するアイデアをください。6畳です。"])
def test_one_escalator_word_alone_leaves_a_complex_call_to_the_next_layer(layer, task):
    verdict, signals = run(layer, task)
    assert len(signals.escalators) == 1 and verdict.complexity.rank >= TaskComplexity.COMPLEX.rank
    assert verdict.confidence < RouterConfig().escalation_threshold
    backed, backed_signals = run(layer, "Prove rigorously that the square root of 2 is irrational.")
    assert len(backed_signals.escalators) > 1 and backed.confidence >= RouterConfig().escalation_threshold


def test_seed_design_task_is_research_grade(layer):
    verdict, signals = run(layer, "Design a CQRS architecture for a distributed order system with event sourcing")
    assert verdict.complexity is TaskComplexity.RESEARCH
    assert {"design", "cqrs", "architecture", "distributed", "event sourcing"} <= set(signals.escalators)
    assert "escalators" in verdict.reasoning


def test_a_negated_escalator_does_not_make_the_task_complex(layer):
    verdict, signals = run(layer, "No need for a full design, just give me the command to list files")
    assert signals.negated == ("design",)
    assert "design" not in signals.escalators
    assert verdict.complexity is TaskComplexity.SIMPLE
    assert "negated design" in verdict.reasoning
    # The same escalator without the negation counts.
    _, plain = run(layer, "Give me a full design for the command to list files")
    assert plain.escalators == ("design",) and plain.score > signals.score


def test_negation_stops_at_the_end_of_the_clause(layer):
    _, signals = run(layer, "No rush. Design a scalable system for the shop")
    assert signals.negated == ()
    assert {"design", "scalable"} <= set(signals.escalators)


def test_deescalators_lower_complexity(layer):
    plain, plain_signals = run(layer, "Explain the design of this system")
    quick, quick_signals = run(layer, "Briefly explain the design of this system, quickly")
    assert plain_signals.deescalation == 0 and quick_signals.deescalation > 0
    assert quick_signals.score < plain_signals.score
    assert quick.complexity.rank < plain.complexity.rank


def test_an_explanation_asked_for_a_child_is_not_the_heavy_topic_it_names(layer):
    """"To a child", "like I'm five", "in simple terms": the topic may be relativity, the answer
    is a simple one; through the whole default Router too (Layer 3 reads the signal)."""
    from dmr import Router

    router = Router()
    for task in ("Explain the theory of relativity to a child.", "Explain inflation in economics to a 10 year old.",
                 "Can you explain inflation in economics in simple terms?", "Explain black holes like I'm five."):
        _, signals = run(layer, task)
        assert signals.deescalation > 0, task
        assert str(router.classify(task).tier) == "low", task
    _, heavy = run(layer, "Explain the theory of relativity, with the derivation of time dilation.")
    assert heavy.deescalation == 0
    for task in ("Explica la selección natural a un niño de 10 años.", "Explique les trous noirs en termes simples.",
                 "Erkläre Inflation, als wäre ich fünf.", "Explique a teoria da relatividade para uma criança.",
                 "Объясни ребёнку, что такое теория относительности.", "给小孩解释一下相对论。", "相対性理論を子どもに説明して。",
                 "상대성 이론을 아이에게 설명해 줘.", "اشرح الثقوب السوداء كأنني طفل.", "Kara delikleri bir çocuğa açıkla.",
                 "सापेक्षता के सिद्धांत को एक बच्चे को समझाओ।", "Eleza nadharia ya uhusiano kwa mtoto.",
                 "อธิบายหลุมดำให้เด็กฟัง", "Leg zwarte gaten uit alsof ik vijf ben."):
        assert run(layer, task)[1].deescalation > 0, task
    # an age or children named as the topic is not a request for a simple answer
    for task in ("อยากจัดวันเกิดลูกสาวครบ 10 ขวบ มีไอเดียอะไรบ้าง",
                 "کیا میٹرک کے بعد ہی بچوں کو ہنر سکھانا شروع کر دینا چاہیے؟",
                 "Ребёнку 4 года, температура 38,7. Какая доза ибупрофена допустима?",
                 "אנחנו מחפשים קייטנה לילד בן 7 לחודש יולי באזור תל אביב."):
        assert run(layer, task)[1].deescalation == 0, task


# -- structure ---------------------------------------------------------------------------------

def test_a_code_block_raises_complexity_and_points_to_code(layer):
    task = "Write a Python function that parses the log file and returns the errors"
    plain, plain_signals = run(layer, task)
    block, block_signals = run(layer, task + ":\n```python\ndef parse(path):\n    return []\n```")
    assert plain_signals.has_code is False and block_signals.has_code is True
    assert block_signals.score > plain_signals.score
    assert block.difficulty > plain.difficulty
    assert block.task_type is TaskType.CODE_CREATION


def test_code_without_a_fence_is_recognised(layer):
    _, signals = run(layer, "Fix this: const x = 1; let y = 2; function f() { return x + y; }")
    assert signals.has_code is True


def test_a_numbered_multi_step_ask_raises_complexity(layer):
    inline, inline_signals = run(
        layer, "Build the app: set up the database, write the API, add the tests, deploy to production")
    numbered, numbered_signals = run(
        layer, "Build the app:\n1. Set up the database\n2. Write the API\n3. Add the tests\n4. Deploy to production")
    assert inline_signals.list_items == 0 and numbered_signals.list_items == 4
    assert numbered.complexity.rank > inline.complexity.rank


# -- task type -------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["What is 2+2?", "What is 17 * 23?", "How much is 12 + 30", "Compute 3^4",
                                  "What is 15% of 80?"])
def test_arithmetic_is_math(layer, task):
    verdict, _ = run(layer, task)
    assert verdict.task_type is TaskType.MATH
    assert verdict.complexity is TaskComplexity.SIMPLE


@pytest.mark.parametrize("task", ["Book a table for two on 12/05/2024", "Meet me at 10:30 on 2024-05-01",
                                  "Which Python 3.12.1 features matter?"])
def test_dates_times_and_versions_are_not_arithmetic(layer, task):
    verdict, signals = run(layer, task)
    assert verdict.task_type is not TaskType.MATH
    assert TaskType.MATH not in signals.type_scores


@pytest.mark.parametrize("task, expected", [
    ("Translate this paragraph into Spanish", TaskType.TRANSLATION),
    ("Write a Python function to reverse a linked list", TaskType.CODE_CREATION),
    ("Summarize the key points of this report", TaskType.ANALYZING),
    ("Write a cover letter for a nursing job", TaskType.DOC_CREATION),
    ("Brainstorm ideas for a team offsite", TaskType.THINKING),
    ("Describe this image of a cat", TaskType.MULTIMODAL),
])
def test_type_keywords_decide_the_type(layer, task, expected):
    verdict, signals = run(layer, task)
    assert verdict.task_type is expected
    assert max(signals.type_scores, key=signals.type_scores.__getitem__) is expected


@pytest.mark.parametrize("task", [
    "Design the architecture for a video streaming platform serving 10M users",
    "Concevez l'architecture d'une plateforme de streaming vidéo pour 10 millions d'utilisateurs",
    "设计一个视频流媒体平台的架构，支持一千万用户",
    "動画配信サービスのアーキテクチャを設計して",
])
def test_a_medium_named_as_a_topic_only_hints_at_multimodal(layer, task):
    """"Video" in a system-design task is the subject, not an attachment: a secondary hint at
    most, too weak for Layer 1 to decide, so a later layer reads the whole task."""
    verdict, signals = run(layer, task)
    assert signals.type_scores.get(TaskType.MULTIMODAL, 0) <= 1
    assert verdict.confidence < RouterConfig().escalation_threshold


_API_SPEC = """\
```yaml
paths:
  /v1/parcels:
    post:
      summary: Create a parcel
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/NewParcel'}
      responses:
        "201": {description: Created, returns the Parcel object}
        "400": {description: Invalid weight or address}
        "401": {description: Missing or expired API key}
  /v1/parcels/{id}/label:
    get:
      summary: Download the shipping label as PDF
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses:
        "200": {description: The label, application/pdf}
        "404": {description: No parcel with this id}
        "429": {description: Rate limited, 60 requests per minute per key}
components:
  schemas:
    NewParcel:
      type: object
      required: [weight_grams, address]
      properties:
        weight_grams: {type: integer, minimum: 1, maximum: 30000}
        address: {type: string}
        insured: {type: boolean, default: false}
```
"""


def test_keywords_in_pasted_material_do_not_let_layer1_decide_a_long_task(layer):
    """A docs page asked for over a pasted API spec: the spec's words (schema, integer, endpoint…)
    all say code, yet the ask is a document. In a long text most words are material, so Layer 1
    leaves the decision to a layer that reads the whole task; a short task of the same kind it
    still decides."""
    ask = ("Write the public reference page for these two endpoints of our API, for the docs site: a short "
           "intro, then each endpoint with its parameters, an example request and what each status means.")
    threshold = RouterConfig().escalation_threshold
    verdict, signals = run(layer, ask + "\n\n" + _API_SPEC)
    assert signals.words > 100 and verdict.task_type is TaskType.CODE_CREATION  # what the keywords say
    assert verdict.confidence < threshold
    verdict, _ = run(layer, "Write a Python function that reverses a string")
    assert verdict.task_type is TaskType.CODE_CREATION and verdict.confidence >= threshold


def test_signals_describe_what_layer1_saw(layer):
    verdict, signals = run(layer, "Prove rigorously that the sum of two even numbers is even, step by step")
    assert verdict.difficulty == pytest.approx(type_gap(verdict.task_type) * difficulty_for(signals.score))
    assert verdict.complexity is complexity_for(signals.score)
    assert {"prove", "rigorously"} <= set(signals.escalators)
    assert signals.multistep > 0 and signals.words > 10
    assert signals.type_scores[TaskType.MATH] > 0


def test_later_layers_see_the_signals_of_layer1():
    seen = []

    class Reader:
        name = "reader"

        def classify(self, task, ctx):
            seen.append(set(ctx.signals["l1"].escalators))

    register_layer(Reader(), "after:layer1")
    try:
        Router(escalation_threshold=1.0).classify("Design a scalable system")
    finally:
        unregister_layer("reader")
    assert seen == [{"design", "scalable"}]


def test_primed_answers_are_the_ones_classify_gives():
    texts = ["hi", "Design a distributed lock service", "Écris une lettre, s'il te plaît", "hi"]
    fresh = KeywordLayer(bundled_packs())
    answers = fresh.prime(texts)
    try:
        assert list(answers) == texts[:3]
        for text in texts:
            verdict, signals = run(fresh, text)
            assert verdict is answers[text][0] and signals is answers[text][1]
            assert (verdict, signals) == run(KeywordLayer(bundled_packs()), text)
    finally:
        fresh.unprime()
    assert run(fresh, "hi")[0] is not answers["hi"][0]


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(WORD_SEPARATORS + " \xa0\u3000\u2028\x1c\x85abcé中'-")) | st.text())
def test_words_are_split_alike_with_or_without_non_ascii_characters(text):
    assert keywords._WORD.findall(text) == text.translate(keywords._SEPARATORS).split()


# -- weights ---------------------------------------------------------------------------------

def test_a_larger_escalator_weight_raises_the_score_of_a_task_with_escalators(layer):
    heavy = KeywordLayer(bundled_packs(), {"escalator": 3.0})
    task = "Explain the design of this system"
    base, base_signals = run(layer, task)
    more, more_signals = run(heavy, task)
    assert more_signals.score > base_signals.score
    assert more.complexity.rank > base.complexity.rank
    # A task without escalators is untouched.
    assert run(heavy, "Give me the command to list files")[1].score == run(layer, "Give me the command to list files")[1].score


def test_a_zero_structure_weight_ignores_list_items(layer):
    flat = KeywordLayer(bundled_packs(), {"structure": 0})
    task = "Build the app:\n1. Set up the database\n2. Write the API\n3. Add the tests\n4. Deploy to production"
    assert run(flat, task)[1].score < run(layer, task)[1].score


def test_weights_default_to_the_documented_values(layer):
    assert layer.weights == dict(DEFAULT_WEIGHTS)


def test_l1_weights_problems_are_all_reported_with_their_paths():
    with pytest.raises(ConfigError) as caught:
        KeywordLayer(bundled_packs(), {"bogus": 1.0, "escalator": -1.0, "primary": float("nan"),
                                       "length": float("inf"), "structure": True, "secondary": 2.0})
    assert [p for p, _ in caught.value.problems] == [
        "l1_weights.bogus", "l1_weights.escalator", "l1_weights.primary", "l1_weights.length",
        "l1_weights.structure"]


def test_router_validates_l1_weights():
    with pytest.raises(ConfigError, match="l1_weights.bogus"):
        Router(l1_weights={"bogus": 1.0})
    with pytest.raises(ConfigError, match="l1_weights.escalator"):
        Router(l1_weights={"escalator": "heavy"})


# -- packs -----------------------------------------------------------------------------------

def test_an_extra_keyword_pack_changes_the_type_of_a_domain_term():
    legal = KeywordPack.builder("legal").add(TaskType.REASONING, ["tort"]).build()
    task = "What do you think about the tort here?"
    base, _ = run(KeywordLayer(bundled_packs()), task)
    more, signals = run(KeywordLayer([*bundled_packs(), legal]), task)
    assert base.task_type is not TaskType.REASONING and more.task_type is TaskType.REASONING
    assert signals.type_scores[TaskType.REASONING] > 0
    # The router passes the pack on to its Layer 1.
    first = Router(extra_keyword_packs=[legal]).classify(task).trace[0]
    assert first.layer == "layer1" and first.confidence == more.confidence


def test_an_extra_pack_escalator_raises_complexity():
    pack = KeywordPack.builder("bio").add(TaskType.REASONING, ["crispr"]).escalator("genome-wide", weight=2).build()
    task = "Plan a genome-wide CRISPR screen"
    base, base_signals = run(KeywordLayer(bundled_packs()), task)
    more, more_signals = run(KeywordLayer([*bundled_packs(), pack]), task)
    assert "genome-wide" in more_signals.escalators and "genome-wide" not in base_signals.escalators
    assert more.complexity.rank > base.complexity.rank


def test_single_english_words_match_their_inflections(layer):
    _, signals = run(layer, "We are redesigning and designing things")
    assert {"redesigning", "designing"} <= set(signals.escalators)


# -- score mapping -----------------------------------------------------------------------------

def test_complexity_and_difficulty_follow_the_score():
    low, middle, high = keywords._BOUNDS  # simple | standard | complex | research
    assert low < middle < high
    eps = 1e-6
    expected = [("simple", low - eps), ("standard", low), ("standard", middle - eps), ("complex", middle),
                ("complex", high - eps), ("research", high), ("research", high + 5)]
    assert [str(complexity_for(score)) for _, score in expected] == [level for level, _ in expected]
    scores = [0.0, low / 2, low, middle, high, high + 1]
    difficulties = [difficulty_for(s) for s in scores]
    assert difficulties == sorted(difficulties) and len(set(difficulties)) == len(scores)
    # The bounds sit where dmr.quality's prior puts the tier boundaries.
    assert [difficulty_for(b) for b in (low, middle, high)] == pytest.approx([0.25, 0.5, 0.75])
    assert difficulty_for(-1.0) == difficulty_for(0.0) == 0.0  # nothing to do: no difficulty
    assert difficulty_for(high + 100) == 1.0 and all(0 <= d <= 1 for d in difficulties)


def test_ties_between_task_types_do_not_depend_on_the_hash_seed():
    import subprocess
    import sys

    code = ("from dmr import Router; r = Router(layer3_enabled=False); "
            "print([str(r.classify(t).task_type) for t in ['translate the function', 'summarize the email', "
            "'explain this poem', 'draw a chart of the code']])")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**__import__('os').environ, "PYTHONHASHSEED": str(seed)}).stdout
               for seed in (0, 1, 2, 3, 4, 5)}
    assert len(outputs) == 1, outputs


def test_an_answer_asked_for_in_a_few_sentences_is_a_short_one(layer):
    from dmr import Router

    for task in ("Summarize the plot of Romeo and Juliet in three sentences.", "Explique l'inflation en deux phrases.",
                 "Erkläre die Photosynthese in zwei Sätzen.", "Объясни, что такое инфляция, в двух предложениях.",
                 "用两句话解释什么是区块链。", "量子コンピュータとは何か、3文で説明して。",
                 "Soğuk Savaş'ı iki cümlede özetle.", "لخّص أسباب الحرب العالمية الأولى في جملتين.",
                 "प्रकाश संश्लेषण को दो वाक्यों में समझाओ।", "Wyjaśnij, czym jest inflacja, w dwóch zdaniach.",
                 "Tóm tắt Chiến tranh Lạnh trong hai câu.", "อธิบายการสังเคราะห์แสงในสองประโยค"):
        assert run(layer, task)[1].deescalation > 0, task
    assert run(layer, "Trả lời hai câu hỏi sau về hợp đồng này.")[1].deescalation == 0  # two questions, not sentences
    assert str(Router().classify("Explain how vaccines work in two sentences.").tier) == "low"
    assert run(layer, "Write an essay on how vaccines work.")[1].deescalation == 0
