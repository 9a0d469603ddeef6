"""Layer 1's compiled tables are shared by layers with the same packs and weights."""

from __future__ import annotations

from dmr.layers.base import Context
from dmr.layers.keywords import KeywordLayer
from dmr.packs import KeywordPack, bundled_packs


def _verdict(layer: KeywordLayer, task: str):
    return layer.classify(task, Context(text=task, length=len(task)))


def test_layers_with_the_same_packs_and_weights_share_their_tables():
    packs = bundled_packs()
    a, b = KeywordLayer(packs), KeywordLayer(list(packs))
    assert a._words is b._words and a._phrase_index is b._phrase_index and a._local is not b._local
    task = "Design a distributed payment system with failover and prove it is linearizable"
    assert _verdict(a, task) == _verdict(b, task)


def test_other_weights_or_other_packs_get_their_own_tables():
    packs = bundled_packs()
    base = KeywordLayer(packs)
    heavier = KeywordLayer(packs, {"escalator": 2.0})
    extra = KeywordLayer([*packs, KeywordPack.builder("legal").escalator("tort reform", weight=2.0).build()])
    assert heavier._words is not base._words and extra._words is not base._words
    assert "tort reform" not in base._phrase_keys | base._word_keys and "reform" in extra._phrase_keys
    task = "Explain how a distributed system handles consensus"
    assert _verdict(heavier, task).difficulty > _verdict(base, task).difficulty


def test_an_equal_pack_that_is_another_object_is_compiled_anew():
    """The cache is keyed by the packs' identities; a pack rebuilt from the same data is compiled
    again, and classifies alike."""
    pack = KeywordPack.builder("t").escalator("quantum", weight=2.0).build()
    twin = KeywordPack.from_dict(pack.to_dict())
    a, b = KeywordLayer([pack]), KeywordLayer([twin])
    assert pack == twin and a._words is not b._words
    assert _verdict(a, "quantum error correction") == _verdict(b, "quantum error correction")
