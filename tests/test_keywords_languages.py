"""Layer 1's packs for the languages bundled after the first six (Italian, Russian, Arabic, Turkish,
Korean, Hindi, Polish, Vietnamese, Ukrainian, Persian, Dutch, Indonesian, Thai, Bengali, Hebrew,
Czech, Greek, Swedish, Hungarian, Romanian, Finnish, Urdu, Swahili, Tamil, Tagalog, Danish, Norwegian,
Malay), the stems (``word*``)
that the inflected ones rely on, and the script handling they need (Arabic and Indic punctuation,
composed accents, Turkish "İ", Korean and Thai lengths).

Each language's examples are hand-written in ``tests/data/l1_cases/<lang>.yaml``:

* ``hard``: expert asks (a distributed design, a proof, a literature review, legal or medical
  reasoning over several steps, concurrent code), which must come out ``complex`` or ``research``
  and go to the ``high`` tier, from Layer 1 alone and from the whole cascade;
* ``simple``: a greeting, a thank-you, a one-fact question and a one-line translation, which are
  ``simple`` and go to the ``low`` tier (the first two as trivial conversation);
* ``types``: clear asks with the task type they must get;
* ``negated``: an ask that names a hard thing only to say it is not needed;
* ``negated_after`` (languages that often put the negation last): the same, with the negation
  after the thing negated ("… 필요 없고", "… gerek yok", "… не нужна").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dmr import Router
from dmr.errors import ConfigError
from dmr.layers.base import Context
from dmr.layers.keywords import KeywordLayer
from dmr.packs import BUNDLED_LANGUAGES, KeywordPack, bundled_packs
from dmr.types import ModelTier, TaskComplexity, TaskType

CASES_DIR = Path(__file__).parent / "data" / "l1_cases"
CASES = {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(CASES_DIR.glob("*.yaml"))}
LANGUAGES = tuple(CASES)
HARD_LEVELS = (TaskComplexity.COMPLEX, TaskComplexity.RESEARCH)


@pytest.fixture(scope="module")
def layer1() -> Router:
    return Router(layer3_enabled=False)


@pytest.fixture(scope="module")
def cascade() -> Router:
    return Router()


def _packs() -> dict[str, KeywordPack]:
    return {pack.language: pack for pack in bundled_packs()}


def _cases(key: str) -> list[tuple[str, object]]:
    return [(lang, case) for lang, cases in CASES.items() for case in cases.get(key) or []]


def test_every_language_with_cases_has_a_bundled_pack():
    assert set(LANGUAGES) == set(BUNDLED_LANGUAGES) - {"en", "es", "fr", "de", "pt", "zh", "ja"}
    packs = _packs()
    for lang in LANGUAGES:
        assert lang in BUNDLED_LANGUAGES and lang in packs, lang


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_case_file_has_every_kind_of_example(lang):
    cases = CASES[lang]
    assert len(cases["hard"]) >= 6 and len(cases["simple"]) == 4 and len(cases["types"]) >= 5
    assert isinstance(cases["negated"], str)


@pytest.mark.parametrize("lang,task", _cases("hard"))
def test_a_hard_task_is_complex_or_research_and_routed_high(layer1, cascade, lang, task):
    for router in (layer1, cascade):
        decision = router.classify(task)
        assert decision.complexity in HARD_LEVELS, (lang, router.layers, decision.reasoning)
        assert decision.tier == ModelTier.HIGH, (lang, router.layers, decision.reasoning)


@pytest.mark.parametrize("lang,task", _cases("simple"))
def test_a_trivial_or_one_fact_task_is_simple_and_low(layer1, lang, task):
    decision = layer1.classify(task)
    assert decision.complexity is TaskComplexity.SIMPLE and decision.tier == ModelTier.LOW, (lang, decision.reasoning)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_greetings_and_thanks_are_trivial_conversation(layer1, lang):
    for task in CASES[lang]["simple"][:2]:
        decision = layer1.classify(task)
        assert (decision.task_type, decision.complexity) == (TaskType.CONVERSATION, TaskComplexity.SIMPLE), task
        assert "greeting or acknowledgement" in decision.reasoning


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_one_line_translation_is_translation(layer1, lang):
    task = CASES[lang]["simple"][3]
    assert layer1.classify(task).task_type is TaskType.TRANSLATION, task


@pytest.mark.parametrize("lang,case", _cases("types"))
def test_the_task_type_of_a_clear_ask(layer1, lang, case):
    task, expected = case
    decision = layer1.classify(task)
    assert decision.task_type is TaskType(expected), (lang, decision.reasoning)
    assert decision.tier != ModelTier.HIGH, (lang, decision.reasoning)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_negated_escalator_does_not_escalate(layer1, lang):
    decision = layer1.classify(CASES[lang]["negated"])
    assert decision.complexity is TaskComplexity.SIMPLE and decision.tier == ModelTier.LOW, (lang, decision.reasoning)
    assert "negated" in decision.reasoning


NEGATED_AFTER = [(lang, cases["negated_after"]) for lang, cases in CASES.items() if "negated_after" in cases] + [
    ("en", "A full distributed system design is not needed, just tell me in one sentence what an index is."),
    ("ja", "分散システムのアーキテクチャ設計は必要ないので、インデックスとは何か一文で教えて。"),
    ("de", "Eine komplette Architektur für ein verteiltes System brauche ich nicht, sag mir nur in einem Satz, "
           "was ein Index ist."),
    ("zh", "完整的分布式架构设计就不需要了，用一句话告诉我索引是什么。"),
]


@pytest.mark.parametrize("lang,task", NEGATED_AFTER, ids=[lang for lang, _ in NEGATED_AFTER])
def test_a_negation_after_the_hard_thing_does_not_escalate(layer1, lang, task):
    decision = layer1.classify(task)
    assert decision.complexity is TaskComplexity.SIMPLE and decision.tier == ModelTier.LOW, (lang, decision.reasoning)
    assert "negated" in decision.reasoning and "escalators" not in decision.reasoning, decision.reasoning


# -- stems ------------------------------------------------------------------------------------

def _layer(**pack) -> KeywordLayer:
    return KeywordLayer([KeywordPack.from_dict({"name": "t", "language": "xx", **pack})])


def _signals(layer: KeywordLayer, task: str):
    ctx = Context(text=task, length=len(task))
    verdict = layer.classify(task, ctx)
    return verdict, ctx.signals["l1"]


def test_a_stem_matches_every_word_that_begins_with_it_and_counts_once():
    layer = _layer(escalators={"распределённ*": 1.0, "отказоустойчив*": 1.0})
    _, sig = _signals(layer, "Спроектируй распределённую отказоустойчивую систему: распределённые узлы, "
                             "распределённый лог")
    assert sig.escalators == ("распределённую", "отказоустойчивую")
    _, sig = _signals(layer, "распределение бюджета")  # "распределени…" does not begin with the stem
    assert sig.escalators == ()


def test_a_whole_word_wins_over_a_stem_and_the_longest_stem_wins():
    layer = _layer(task_types={"math": {"primary": ["вычисли"]}, "code_creation": {"primary": ["вычислительн*"]},
                               "analyzing": {"secondary": ["вычисл*"]}})
    verdict, sig = _signals(layer, "вычисли")
    assert verdict.task_type is TaskType.MATH and set(sig.type_scores) == {TaskType.MATH}
    verdict, sig = _signals(layer, "вычислительный кластер")
    assert set(sig.type_scores) == {TaskType.CODE_CREATION}
    verdict, sig = _signals(layer, "вычисление")
    assert set(sig.type_scores) == {TaskType.ANALYZING}


def test_a_negation_phrase_is_a_cue_only_where_the_whole_phrase_stands():
    layer = _layer(escalators={"arkitektura": 1.0, "distributed system": 1.0}, negations=["hindi na kailangan"])
    _, sig = _signals(layer, "hindi na kailangan ng arkitektura")
    assert sig.negated == ("arkitektura",)
    # The phrase stands once; the later bare "hindi" ("not easy") cancels nothing.
    _, sig = _signals(layer, "hindi na kailangan ng buod pero hindi madali ang arkitektura at distributed system")
    assert sig.negated == () and set(sig.escalators) == {"arkitektura", "distributed system"}


def test_a_negation_cancels_an_escalator_found_by_its_stem():
    layer = _layer(escalators={"распределённ*": 1.0}, negations=["не нужна"])
    _, sig = _signals(layer, "Не нужна распределённая система, просто скажи, что такое индекс")
    assert sig.escalators == () and sig.negated == ("распределённая",)


# -- negations after, and escalators inside escalators -------------------------------------

def test_a_negation_after_cancels_the_escalator_before_it_not_the_one_after():
    layer = _layer(escalators={"design": 1.0, "proof": 1.0}, negations_after=["not needed"])
    _, sig = _signals(layer, "the design is not needed but a proof is")
    assert sig.negated == ("design",) and sig.escalators == ("proof",)


def test_a_negation_after_stays_in_its_clause_and_near_its_escalator():
    layer = _layer(escalators={"design": 1.0}, negations_after=["is not needed"])
    assert _signals(layer, "design it. a summary is not needed")[1].negated == ()
    assert _signals(layer, "design of the old payment service is not needed")[1].negated == ()  # five words
    assert _signals(layer, "design of the payment service is not needed")[1].negated == ("design",)


def test_a_negation_after_reaches_back_along_a_run_of_escalators():
    layer = _layer(escalators={"distributed system": 1.5, "architecture": 1.0, "complete": 1.0},
                   negations_after=["not needed"])
    _, sig = _signals(layer, "a complete architecture for a distributed system is not needed")
    assert set(sig.negated) == {"complete", "architecture", "distributed system"} and sig.escalators == ()


def test_a_negation_after_in_unspaced_text():
    layer = _layer(escalators={"設計": 1.0, "実装": 1.0, "分散システム": 1.0}, negations_after=["必要ない"])
    _, sig = _signals(layer, "分散システムの設計は必要ない")
    assert set(sig.negated) == {"設計", "分散システム"}
    _, sig = _signals(layer, "設計について説明して、実装は必要ない")  # 、 ends the clause
    assert sig.negated == ("実装",) and sig.escalators == ("設計",)
    _, sig = _signals(layer, "設計についての詳しい説明は必要ない")  # too far before the cue
    assert sig.negated == ()


def test_a_negation_after_cannot_be_a_stem_and_round_trips():
    with pytest.raises(ConfigError, match="negation after"):
        KeywordPack.from_dict({"name": "t", "negations_after": ["gerek*"]})
    pack = KeywordPack.from_dict({"name": "t", "negations_after": ["Gerek  YOK"]})
    assert pack.negations_after == ("gerek yok",)
    assert KeywordPack.from_dict(pack.to_dict()) == pack


def test_a_hazard_is_never_negated():
    """A hazard names what the work must avoid: "with no race conditions" is a requirement, so
    neither a negation before it nor one after it cancels it; other escalators are cancelled."""
    pack = {"escalators": {"race condition": 1.2, "deadlock": 1.2, "architecture": 1.0, "競合状態": 1.2},
            "negations": ["no", "without"], "negations_after": ["is not needed", "ないように"]}
    guarded, plain = _layer(**pack, hazards=["race condition", "deadlock", "競合状態"]), _layer(**pack)
    for task, hazard in (("a cache with no race condition and no deadlock", {"race condition", "deadlock"}),
                         ("a queue without deadlock", {"deadlock"}),
                         ("a race condition is not needed here", {"race condition"}),
                         ("競合状態が起きないように実装", {"競合状態"})):
        _, sig = _signals(guarded, task)
        assert set(sig.escalators) == hazard and sig.negated == (), task
        assert set(_signals(plain, task)[1].negated) == hazard, task  # without hazards, cancelled
    _, sig = _signals(guarded, "a summary with no architecture and no race condition")
    assert sig.negated == ("architecture",) and sig.escalators == ("race condition",)


def test_a_hazard_must_be_an_escalator_of_its_pack_and_round_trips():
    with pytest.raises(ConfigError, match="hazard must also be one of the pack's escalators"):
        KeywordPack.from_dict({"name": "t", "escalators": {"deadlock": 1.0}, "hazards": ["race condition"]})
    with pytest.raises(ConfigError, match="hazard is matched as written"):
        KeywordPack.from_dict({"name": "t", "escalators": {"deadl*": 1.0}, "hazards": ["deadl*"]})
    pack = KeywordPack.from_dict({"name": "t", "escalators": {"Race Condition": 1.0}, "hazards": ["race  condition"]})
    assert pack.hazards == ("race condition",)
    assert KeywordPack.from_dict(pack.to_dict()) == pack


@pytest.mark.parametrize("task,hazard", [
    ("Implement a thread-safe LRU cache in C++ with no race conditions and no deadlocks.", "deadlocks"),
    ("Write a lock-free queue; ensure no race conditions under contention.", "race conditions"),
    ("Implementa una caché LRU segura para hilos en C++ sin condiciones de carrera ni interbloqueos.",
     "condiciones de carrera"),
    ("Реализуй потокобезопасный LRU-кэш на C++ без состояния гонки и взаимных блокировок.", "состояния гонки"),
])
def test_concurrency_work_that_must_avoid_a_hazard_goes_high(cascade, task, hazard):
    _, sig = _signals(KeywordLayer(bundled_packs()), task)
    assert hazard in sig.escalators and hazard not in sig.negated, (task, sig)
    assert cascade.classify(task).tier == ModelTier.HIGH, task


def test_an_english_phrase_matches_with_its_last_word_in_the_plural():
    english = KeywordLayer([KeywordPack.from_dict({"name": "t", "language": "en", "escalators": {
        "race condition": 1.2, "load balancer": 1.0, "formal proof": 1.5}, "hazards": ["race condition"],
        "negations": ["no"]})])
    _, sig = _signals(english, "two load balancers, formal proofs and no race conditions")
    assert set(sig.escalators) == {"load balancers", "formal proofs", "race conditions"} and sig.negated == ()
    other = KeywordLayer([KeywordPack.from_dict({"name": "t", "language": "xx", "escalators": {"race condition": 1.2}})])
    assert _signals(other, "race conditions")[1].escalators == ()  # only English is inflected
    # A pack listing the plural too counts it once.
    both = KeywordLayer([KeywordPack.from_dict({"name": "t", "language": "en", "task_types": {
        "code_creation": ["race condition", "race conditions"]}})])
    one = KeywordLayer([KeywordPack.from_dict({"name": "t", "language": "en", "task_types": {
        "code_creation": ["race condition"]}})])
    assert _signals(both, "fix the race conditions")[1].type_scores == _signals(one, "fix the race conditions")[1].type_scores


def test_an_escalator_inside_a_phrase_escalator_counts_once():
    layer = _layer(escalators={"distributed": 1.5, "distributed system": 1.8, "proof": 1.0, "分布式": 1.0,
                               "分布式系统": 1.8})
    _, sig = _signals(layer, "explain what a distributed system is")
    assert sig.escalators == ("distributed system",)
    _, sig = _signals(layer, "a distributed system and its proof")
    assert set(sig.escalators) == {"distributed system", "proof"}
    _, sig = _signals(layer, "解释什么是分布式系统")
    assert sig.escalators == ("分布式系统",)
    once, _ = _signals(layer, "explain what a distributed system is")
    alone, _ = _signals(_layer(escalators={"distributed system": 1.8}), "explain what a distributed system is")
    assert once.confidence == alone.confidence and once.complexity is alone.complexity


@pytest.mark.parametrize("term", ["abc*", "two words*", "a.b.c.d*", "*"])
def test_a_bad_stem_is_a_config_error(term):
    with pytest.raises(ConfigError, match="stem"):
        KeywordPack.from_dict({"name": "t", "escalators": {term: 1.0}})


def test_a_trivial_input_cannot_be_a_stem():
    with pytest.raises(ConfigError, match="trivial"):
        KeywordPack.from_dict({"name": "t", "trivial": ["merhaba*"]})


@pytest.mark.parametrize("pack", bundled_packs(), ids=lambda p: p.language)
def test_no_term_is_listed_twice_within_a_pack_once_punctuation_is_dropped(pack):
    """Layer 1 drops punctuation from terms as it does from text, so "prove." and "prove" are one
    term, and listing both would count it twice."""
    from dmr.layers.keywords import _tokens

    def key(term: str) -> str:
        return term if term.endswith("*") else " ".join(_tokens(term)) or term

    seen: dict[tuple[str, ...], str] = {}
    twice = []
    roles = [(f"primary.{t}", terms) for t, terms in pack.primary.items()]
    roles += [(f"secondary.{t}", terms) for t, terms in pack.secondary.items()]
    roles += [("escalator", pack.escalators), ("deescalator", pack.deescalators), ("constraint", pack.constraints),
              ("multistep", pack.multistep), ("negation", pack.negations), ("negation_after", pack.negations_after)]
    for role, terms in roles:
        for term in terms:
            k = (role, key(term))
            if k in seen and seen[k] != term:
                twice.append((role, seen[k], term))
            seen.setdefault(k, term)
    assert twice == []


def _english_words() -> set[str]:
    """Every word of the English rows the team wrote in datasets/ and of the English examples of
    the Layer 1 tests: a stem that begins one of them would fire on English text."""
    import json

    words: set[str] = set()
    for path in (Path(__file__).parents[1] / "datasets").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("language") == "en":
                words.update(re.findall(r"[^\W\d_]+", row["task"].lower()))
    return words


def test_no_stem_of_another_language_begins_an_english_word():
    words = sorted(_english_words())
    clashes = []
    for pack in bundled_packs():
        if pack.language == "en":
            continue
        terms = [t for terms in (*pack.primary.values(), *pack.secondary.values()) for t in terms]
        terms += [*pack.escalators, *pack.deescalators, *pack.constraints, *pack.multistep, *pack.negations]
        for stem in (t[:-1] for t in terms if t.endswith("*")):
            clashes += [(pack.language, stem, w) for w in words if w.startswith(stem)][:3]
    assert clashes == []


@pytest.mark.parametrize("task", [
    "Diseña la arquitectura de un sistema distribuido tolerante a fallos y compara las alternativas de replicación.",
    "Thiết kế kiến trúc hệ thống phân tán chịu lỗi và so sánh các phương án.",
])
def test_decomposed_accents_match_like_composed_ones(layer1, task):
    """Some keyboards and PDF copies send a base letter plus a combining accent (NFD); the packs
    are written composed (NFC). Layer 1 reads both the same."""
    import unicodedata

    decomposed = unicodedata.normalize("NFD", task)
    assert decomposed != task
    composed_decision, decomposed_decision = layer1.classify(task), layer1.classify(decomposed)
    assert composed_decision.complexity in HARD_LEVELS
    assert (decomposed_decision.task_type, decomposed_decision.complexity, decomposed_decision.reasoning) == (
        composed_decision.task_type, composed_decision.complexity, composed_decision.reasoning)


# -- scripts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("task,term", [
    ("هل يمكنك أن تبرهن؟", "تبرهن"),        # Arabic question mark
    ("برهن، ثم اشرح", "برهن"),              # Arabic comma
    ("यह सिद्ध करो।", "करो"),                 # danda
    ("Απόδειξε το θεώρημα\u0387 μετά εξήγησε", "θεώρημα"),  # Greek ano teleia (NFC: a middle dot)
    ("یہ ثابت کریں۔ پھر", "کریں"),           # Urdu full stop
])
def test_arabic_and_indic_punctuation_ends_a_word(task, term):
    layer = _layer(escalators={term: 1.0})
    _, sig = _signals(layer, task)
    assert sig.escalators == (term,)


def test_a_danda_ends_the_clause_a_negation_reaches():
    layer = _layer(escalators={"वितरित": 1.0}, negations=["बिना"])
    _, sig = _signals(layer, "बिना चित्र के लिखो। वितरित प्रणाली बनाओ")
    assert sig.escalators == ("वितरित",) and sig.negated == ()
    _, sig = _signals(layer, "बिना चित्र के लिखो वितरित प्रणाली बनाओ")
    assert sig.negated == ("वितरित",)


def test_a_dotted_capital_i_reads_as_i():
    # Python lower-cases "İ" to "i" and a combining dot; a Turkish sentence often begins with it.
    layer = _layer(task_types={"math": {"primary": ["ispatla"]}, "translation": {"primary": ["ingilizceye"]}})
    verdict, _ = _signals(layer, "İspatla: her asal sayı 2'den büyükse tektir")
    assert verdict.task_type is TaskType.MATH
    verdict, _ = _signals(layer, "İNGİLİZCEYE çevir")
    assert verdict.task_type is TaskType.TRANSLATION


def test_korean_words_are_not_counted_twice():
    """Korean puts spaces between words, which the word count already counts; each syllable adds a
    sixth of a word, not the 1/1.6 of a Chinese character."""
    _, korean = _signals(_layer(), "분산 시스템을 설계해 주세요")  # 4 words, 12 syllables
    assert korean.words == pytest.approx(4 + 12 / 6)
    _, chinese = _signals(_layer(), "设计一个分布式系统")  # one token, 9 characters
    assert chinese.words == pytest.approx(1 + 9 / 1.6)


def test_thai_terms_match_inside_unspaced_text():
    layer = _layer(escalators={"ออกแบบระบบ": 1.0, "กระจายศูนย์": 1.0})
    _, sig = _signals(layer, "ช่วยออกแบบระบบชำระเงินแบบกระจายศูนย์หน่อย")
    assert set(sig.escalators) == {"ออกแบบระบบ", "กระจายศูนย์"}
    assert sig.words == pytest.approx(1 + len("ช่วยออกแบบระบบชำระเงินแบบกระจายศูนย์หน่อย") / 4.5)


def test_a_thai_negation_reaches_the_words_of_its_clause():
    layer = _layer(escalators={"สถาปัตยกรรม": 1.0, "แบบกระจาย": 1.0, "ออกแบบระบบ": 1.0}, negations=["ไม่เอา"])
    _, sig = _signals(layer, "ไม่เอาสถาปัตยกรรมแบบกระจายหรือการออกแบบระบบ แค่บอกสั้นๆ")
    assert set(sig.negated) == {"สถาปัตยกรรม", "แบบกระจาย"} and sig.escalators == ("ออกแบบระบบ",)
    _, sig = _signals(layer, "ไม่เอาของหวาน ออกแบบระบบแบบกระจายให้หน่อย")  # a space ends the clause
    assert sig.negated == () and len(sig.escalators) == 2


@pytest.mark.parametrize("task", ["இந்த architecture-ஐ விளக்கு", "Напиши код на python-е"])
def test_a_latin_word_with_a_suffix_of_another_script_after_a_hyphen_matches(task):
    layer = _layer(escalators={"architecture": 1.0, "python": 1.0})
    _, sig = _signals(layer, task)
    assert len(sig.escalators) == 1
    _, sig = _signals(layer, "lock-free python-like")  # Latin on both sides: the token as written
    assert sig.escalators == ()


# -- romanized Hindi and Urdu (Hinglish, Roman Urdu) --------------------------------------------

@pytest.mark.parametrize("task,expected,hard", [
    ("bhai ek python function likh do jo list se duplicates hata de", TaskType.CODE_CREATION, False),
    ("mujhe samjhao ki blockchain kaise kaam karta hai", TaskType.REASONING, False),
    ("is email ko professional bana do", TaskType.DOC_CREATION, False),
    ("meri behen ki shaadi ke liye ek chhoti si shayari likh do", TaskType.DOC_CREATION, False),
    ("is paragraph ko english me translate kar do", TaskType.TRANSLATION, False),
    ("ye urdu jumla angrezi mein tarjuma kar dein", TaskType.TRANSLATION, False),
    ("ye sawal hal kar do: ek train 60 km per ghanta chalti hai to 150 km kitne time mein", TaskType.MATH, False),
    ("startup ke liye 10 naam suggest karo jo yaad rehne wale hon", TaskType.THINKING, False),
    ("neeche diye gaye customer reviews ka analysis karo aur batao log kya shikayat kar rahe hain",
     TaskType.ANALYZING, False),
    ("is photo mein kaunsa phool hai?", TaskType.MULTIMODAL, False),
    ("is khabar ka saar batao", TaskType.ANALYZING, False),
    ("chalo thodi der baatein karte hain, bore ho raha hu", TaskType.CONVERSATION, False),
    ("mere manager ko chhutti ke liye application likh do", TaskType.DOC_CREATION, False),
    ("ghar se kaam karun ya office jaun, kya karna chahiye? fayde aur nuksan batao", TaskType.REASONING, False),
    ("ek distributed payment system ka architecture design karo jo fault-tolerant ho, multiple regions mein "
     "replication ke saath, aur consistency aur latency ke trade-offs samjhao", None, True),
    ("rigorous proof do ki har bounded monotonic sequence converge karti hai, epsilon-delta definition use "
     "karke, step by step", TaskType.MATH, True),
])
def test_romanized_hindi_and_urdu(layer1, cascade, task, expected, hard):
    """Many users type Hindi and Urdu in Latin letters, mixed with English: hi.yaml holds the
    romanized words both share (ur.yaml the Urdu-only ones), so such asks get their task type, and
    an expert ask written this way (English technical words, Hindi glue) still goes high."""
    decision = layer1.classify(task)
    if expected is not None:
        assert decision.task_type is expected, (task, decision.task_type)
    if hard:
        assert decision.complexity in HARD_LEVELS and decision.tier == ModelTier.HIGH, (task, decision)
        assert cascade.classify(task).tier == ModelTier.HIGH, task
    else:
        assert decision.tier != ModelTier.HIGH, (task, decision)
