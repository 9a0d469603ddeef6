"""The static encoder's batch tokenization (dmr.ml.wordpiece) gives its tokenizer's own ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmr.ml.encoder import _clip, default_encoder
from dmr.ml.wordpiece import Pieces

ENCODER = default_encoder()
TOKENIZER = ENCODER.tokenizer


def expected(text: str) -> list[int]:
    return TOKENIZER.encode(text, add_special_tokens=False).ids


@pytest.fixture
def pieces() -> Pieces:
    return Pieces(TOKENIZER, ENCODER.max_tokens)


def test_the_shipped_tokenizer_is_one_it_reproduces():
    assert Pieces.fits(TOKENIZER) and ENCODER._pieces is not None


@pytest.mark.parametrize("text", [
    "", "   \n\t ", "Write a Python function that parses ISO dates (e.g. 2024-05-01); don't use datetime!",
    "Écris une lettre de motivation, s'il te plaît", "Объясни градиентный спуск", "请帮我写一个快速排序算法",
    "この文章を英語に翻訳してください", "분산 시스템의 합의 알고리즘", "اشرح نظرية النسبية", "समझाइए प्रकाश संश्लेषण",
    "ΣΟΦΙΑ ΟΔΟΣ", "İstanbul'da ﬁx ß ẞ Ǆ ℃ Å", "emoji 🚀🔥 plan 😅", "nbsp\xa0ideo\u3000line\u2028para\u2029end",
    "vertical\x0btab form\x0cfeed \x1cfile\x1dgroup\x1erecord\x1funit next\x85line", "nul\x00replaced\ufffdzero\u200bwidth",
    "e\u0301\u0316 combining marks \u0327c", "tl;dr node.js a.b,c;d!!?", "word " * 700, "中" * 900,
    "x" * 300 + " " + "y" * 50,
])
def test_it_gives_the_tokenizers_ids(pieces, text):
    assert pieces.ids(text) == expected(text)[:ENCODER.max_tokens]


@pytest.mark.parametrize("text", ["an [UNK] token", "a [PAD]", "musical \U0001d165 stem"])
def test_it_leaves_to_the_tokenizer_what_it_cannot_reproduce(pieces, text):
    # Added tokens are matched before normalisation; a combining mark the normaliser keeps is
    # reordered across characters.
    assert pieces.ids(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=80))
def test_any_text_gets_the_tokenizers_ids_or_goes_to_it(text):
    found = Pieces(TOKENIZER, ENCODER.max_tokens).ids(text)
    assert found is None or found == expected(text)


def test_a_batch_gets_the_tokenizers_ids():
    texts = ["Write a poem", "an [UNK] token", "日本語のテキスト", "x " * 3000, ""]
    clipped = [_clip(t, ENCODER.max_chars) for t in texts]
    assert ENCODER.batch_token_ids(texts) == [e.ids for e in TOKENIZER.encode_batch_fast(clipped, add_special_tokens=False)]
