"""Token counting: the heuristic, the per-model registry, and tiktoken only when it is offline-ready."""

from __future__ import annotations

import hashlib
import sys
import threading
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dmr.tokens as tokens
from dmr.errors import ConfigError, InputTypeError, NotAvailableError
from dmr.tokens import (
    count_tokens,
    estimate_output_tokens,
    get_tokenizer,
    heuristic_count,
    register_tokenizer,
    unregister_tokenizer,
)
from dmr.types import TaskComplexity

ENGLISH = (
    "Routing each request to the cheapest model that can handle it well keeps costs down, "
    "while harder tasks such as architecture reviews still reach a capable model. "
) * 20


@pytest.fixture(autouse=True)
def fresh_tokenizers(monkeypatch):
    monkeypatch.setattr(tokens, "_registered", {})
    monkeypatch.setattr(tokens, "_auto", {})


def test_english_is_about_four_characters_per_token():
    n = heuristic_count(ENGLISH)
    assert len(ENGLISH) / 5 <= n <= len(ENGLISH) / 3.5


@pytest.mark.parametrize(
    "text",
    ["路由器为每个任务选择最便宜的模型", "このモデルは安くて速いです", "가장 저렴한 모델을 선택합니다"],
)
def test_cjk_kana_and_hangul_are_about_one_token_per_character(text):
    letters = sum(1 for c in text if not c.isspace())
    assert 0.8 * letters <= heuristic_count(text) <= 1.2 * len(text)


def test_other_scripts_sit_between_latin_and_cjk():
    russian = "Маршрутизатор выбирает самую дешёвую модель для каждой задачи"
    assert len(russian) / 4 < heuristic_count(russian) < len(russian)


def test_small_inputs():
    assert heuristic_count("") == 0 == count_tokens("")
    assert heuristic_count("a") == 1
    assert heuristic_count("é") == 1
    assert heuristic_count("\ud800") == 1  # a lone surrogate is counted, not an error


@given(st.text(), st.text())
def test_heuristic_is_monotone_and_bounded(a, b):
    assert heuristic_count(a + b) >= heuristic_count(a)
    assert heuristic_count(a + b) <= heuristic_count(a) + heuristic_count(b) + 1
    assert (heuristic_count(a) == 0) == (a == "")
    assert heuristic_count(a) <= len(a)


def test_ten_megabytes_are_counted():
    text = ("Plain English words, " + "混合的中文文本。" + "Ünïcödé ") * 300_000
    assert len(text) > 10_000_000
    n = count_tokens(text)
    assert len(text) / 4 < n < len(text)


def test_a_registered_tokenizer_wins_for_its_model_only():
    register_tokenizer("my-model", lambda text: 42)
    assert count_tokens("hello", model="my-model") == 42
    assert count_tokens("hello", model="other") == heuristic_count("hello")
    assert count_tokens("hello") == heuristic_count("hello")
    register_tokenizer("my-model", lambda text: len(text))
    assert count_tokens("hello", model="my-model") == 5
    assert unregister_tokenizer("my-model") is True
    assert count_tokens("hello", model="my-model") == heuristic_count("hello")
    assert unregister_tokenizer("my-model") is False


def test_registration_is_validated_and_thread_safe():
    with pytest.raises(TypeError):
        register_tokenizer("m", 5)  # type: ignore[arg-type]
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for i in range(200):
            register_tokenizer(f"m{worker}-{i}", lambda text, n=i: n)
            count_tokens("x", model=f"m{worker}-{i // 2}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(count_tokens("x", model=f"m{w}-{i}") == i for w in range(8) for i in range(200))


def test_count_tokens_rejects_non_text():
    with pytest.raises(InputTypeError):
        count_tokens(b"bytes")  # type: ignore[arg-type]


def test_get_tokenizer_specs():
    def mine(text: str) -> int:
        return 7

    assert get_tokenizer(mine) is mine
    assert get_tokenizer("heuristic") is heuristic_count
    auto = get_tokenizer("auto", model="my-model")
    assert auto(ENGLISH) == heuristic_count(ENGLISH)
    register_tokenizer("my-model", mine)  # looked up at call time, so later registrations apply
    assert auto("anything") == 7
    assert get_tokenizer(None)("abcd") == 1
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        get_tokenizer("sentencepiece")


def test_estimate_output_tokens_grows_with_complexity():
    values = [estimate_output_tokens(c) for c in TaskComplexity]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert estimate_output_tokens("simple") == estimate_output_tokens(TaskComplexity.SIMPLE) == 150
    with pytest.raises(ValueError):
        estimate_output_tokens("galactic")


# -- tiktoken, only from its cache -----------------------------------------------------------------


class _FakeTiktoken:
    """Stands in for the tiktoken package: records whether an encoding was ever loaded."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def install(self, monkeypatch, cache_dir) -> None:
        package = types.ModuleType("tiktoken")
        package.get_encoding = self.get_encoding  # type: ignore[attr-defined]
        model = types.ModuleType("tiktoken.model")
        model.encoding_name_for_model = self.encoding_name_for_model  # type: ignore[attr-defined]
        load = types.ModuleType("tiktoken.load")
        load._default_cache_dir = lambda: str(cache_dir)  # type: ignore[attr-defined]
        for name, module in (("tiktoken", package), ("tiktoken.model", model), ("tiktoken.load", load)):
            monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
        monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)

    @staticmethod
    def encoding_name_for_model(model: str) -> str:
        if model.startswith("gpt-4o"):
            return "o200k_base"
        raise KeyError(model)

    def get_encoding(self, name: str):
        self.loaded.append(name)
        return types.SimpleNamespace(encode_ordinary=lambda text: [0] * 1000)


def _cache_file(directory, encoding: str):
    url = tokens._TIKTOKEN_FILES[encoding][0]
    return directory / hashlib.sha1(url.encode()).hexdigest()


def test_tiktoken_is_not_used_without_its_cached_file(monkeypatch, tmp_path):
    fake = _FakeTiktoken()
    fake.install(monkeypatch, tmp_path)
    assert count_tokens("hello there", model="gpt-4o") == heuristic_count("hello there")
    _cache_file(tmp_path, "o200k_base").write_bytes(b"truncated download")  # wrong checksum
    monkeypatch.setattr(tokens, "_auto", {})
    assert count_tokens("hello there", model="gpt-4o") == heuristic_count("hello there")
    with pytest.raises(NotAvailableError, match="TIKTOKEN_CACHE_DIR"):
        get_tokenizer("tiktoken", model="gpt-4o")
    assert fake.loaded == []  # tiktoken would have downloaded: never asked to load


def test_tiktoken_is_used_when_its_file_is_cached(monkeypatch, tmp_path):
    fake = _FakeTiktoken()
    fake.install(monkeypatch, tmp_path / "default-cache")
    cache = tmp_path / "cache"
    cache.mkdir()
    content = b"cached encoding file"
    _cache_file(cache, "o200k_base").write_bytes(content)
    url = tokens._TIKTOKEN_FILES["o200k_base"][0]
    monkeypatch.setitem(tokens._TIKTOKEN_FILES, "o200k_base", (url, hashlib.sha256(content).hexdigest()))

    assert count_tokens("hello", model="gpt-4o") == heuristic_count("hello")  # default cache is empty
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(cache))
    monkeypatch.setattr(tokens, "_auto", {})
    assert count_tokens("hello", model="gpt-4o") == 1000
    assert count_tokens("hello", model="claude-opus-4-7") == heuristic_count("hello")  # unknown to tiktoken
    assert get_tokenizer("tiktoken")("hello") == 1000  # explicit: o200k_base for any model
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's switch for "no cache, always download"
    monkeypatch.setattr(tokens, "_auto", {})
    assert count_tokens("hello", model="gpt-4o") == heuristic_count("hello")
    assert fake.loaded == ["o200k_base", "o200k_base"]
