"""register_layer(layer, position=...) places a plug-in layer anywhere in the cascade."""

from __future__ import annotations

import pytest

from dmr.errors import ConfigError
from dmr.layers import arrange, register_layer, unregister_layer
from dmr.router import Router
from dmr.types import TaskComplexity, TaskType, Verdict


class Named:
    def __init__(self, name: str, answer: Verdict | None = None) -> None:
        self.name, self.answer = name, answer

    def classify(self, task, ctx):
        return self.answer


BUILTIN = [Named("layer1"), Named("layer3"), Named("layer2")]


@pytest.mark.parametrize("position, order", [
    ("first", ["p", "layer1", "layer3", "layer2"]),
    ("last", ["layer1", "layer3", "layer2", "p"]),
    (0, ["p", "layer1", "layer3", "layer2"]),
    (1, ["layer1", "p", "layer3", "layer2"]),
    (2, ["layer1", "layer3", "p", "layer2"]),
    (3, ["layer1", "layer3", "layer2", "p"]),
    (99, ["layer1", "layer3", "layer2", "p"]),
    (-1, ["layer1", "layer3", "layer2", "p"]),
    (-2, ["layer1", "layer3", "p", "layer2"]),
    (-4, ["p", "layer1", "layer3", "layer2"]),
    (-99, ["p", "layer1", "layer3", "layer2"]),
    ("before:layer1", ["p", "layer1", "layer3", "layer2"]),
    ("after:layer1", ["layer1", "p", "layer3", "layer2"]),
    ("before:layer2", ["layer1", "layer3", "p", "layer2"]),
    ("after:layer3", ["layer1", "layer3", "p", "layer2"]),
    ("after:layer2", ["layer1", "layer3", "layer2", "p"]),
])
def test_every_position_form_in_a_full_cascade(position, order):
    assert [layer.name for layer in arrange(BUILTIN, [(Named("p"), position)])] == order


def test_a_plugin_can_be_placed_relative_to_another_plugin():
    plugins = [(Named("a"), "first"), (Named("b"), "after:a"), (Named("c"), "before:a")]
    assert [layer.name for layer in arrange(BUILTIN, plugins)] == ["c", "a", "b", "layer1", "layer3", "layer2"]


def test_an_anchor_registered_later_is_found():
    plugins = [(Named("b"), "after:a"), (Named("a"), "after:layer3")]
    assert [layer.name for layer in arrange(BUILTIN, plugins)] == ["layer1", "layer3", "a", "b", "layer2"]


def test_an_anchor_that_exists_nowhere_is_a_config_error():
    with pytest.raises(ConfigError, match="before:ghost"):
        arrange(BUILTIN, [(Named("p"), "before:ghost")])


@pytest.mark.parametrize("position", ["first", "last", 0, -1, "before:layer1", "after:layer1"])
def test_a_registered_layer_decides_from_its_position(position):
    answer = Verdict(TaskType.CODE_CREATION, TaskComplexity.COMPLEX, 0.99, 0.9, "mine", "mine says so")
    builtin = Router().layers
    register_layer(Named("mine", answer), position)
    try:
        router = Router()
        assert set(router.layers) == {"mine", *builtin}
        decision = router.classify("What is 2+2?")  # Layer 1 is sure of this one
        first = router.layers[0]
        assert decision.layer == ("mine" if first == "mine" else "layer1")
        assert [s.layer for s in decision.trace][0] == first
    finally:
        unregister_layer("mine")


def test_registering_the_same_name_again_moves_the_layer():
    register_layer(Named("mover"), "first")
    register_layer(Named("mover"), "last")
    try:
        layers = Router().layers
        assert layers[-1] == "mover" and layers.count("mover") == 1
    finally:
        unregister_layer("mover")
