"""YAML as dmr reads the files a user writes (``dmr.yaml``, registries, tenants files): the safe
loader, stricter about two things plain YAML lets through, and with YAML 1.2's booleans.

- A key given twice in one mapping is an error, not "the last one wins": ``provider: google``
  followed further down by ``provider: openai`` is a mistake to point at, not to guess about.
- A file whose aliases (``*name``) expand to more than :data:`MAX_NODES` values is refused. An
  alias shares its anchor's value, so nine levels of nine aliases each ("billion laughs") load as a
  few hundred bytes but become billions of items for anything that walks the value, such as an
  error message that shows it.
- Only ``true`` and ``false`` (also written ``True``, ``TRUE``, ``False``, ``FALSE``) are booleans,
  as in YAML 1.2. YAML 1.1 also reads ``yes``, ``no``, ``on``, ``off``, ``y`` and ``n`` as booleans,
  which turns ``residency: NO`` (Norway) into ``False``; here such words stay strings. Options that
  are switches still take them (:func:`dmr.config.load_yaml_options`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

__all__ = ["MAX_NODES", "StrictLoader", "load", "switch"]

MAX_NODES = 200_000
_MERGE = "tag:yaml.org,2002:merge"
_BOOL = "tag:yaml.org,2002:bool"


def _expanded(node: Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is written out (each shared node is
    counted once here, however often it is used)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive alias is counted once, not forever
    if isinstance(node, MappingNode):
        total = 1 + sum(_expanded(k, sizes) + _expanded(v, sizes) for k, v in node.value)
    elif isinstance(node, SequenceNode):
        total = 1 + sum(_expanded(item, sizes) for item in node.value)
    else:
        total = 1
    sizes[id(node)] = total
    return total


class StrictLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` that refuses repeated keys and alias bombs (pure Python: the C
    loader composes in C, out of reach of both checks)."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded(node, {}) > MAX_NODES:
            raise ComposerError(None, None, f"its aliases (*name) expand to more than {MAX_NODES:,} values: "
                                "refused, as a file that stands for far more than it shows", node.start_mark)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # "<<: *defaults": merged keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not key_node.start_mark:
                raise ConstructorError("while reading a mapping", node.start_mark,
                                       f"the key {key!r} is given twice (first on line {first.line + 1})",
                                       key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1's boolean resolver (yes/no/on/off/y/n too) is swapped for YAML 1.2's.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load(text: str) -> Any:
    """The value of the YAML ``text`` (with YAML 1.2's booleans); :class:`yaml.YAMLError` for bad
    YAML, a repeated key or an alias bomb."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506  # a SafeLoader subclass


# The words YAML 1.1 read as booleans; where a value is a switch (an option that is true or false),
# dmr still reads them so, in any case.
_SWITCH_WORDS = {"yes": True, "y": True, "on": True, "no": False, "n": False, "off": False}


def switch(value: Any) -> Any:
    """``value`` as a boolean when it is yes/no/on/off/y/n (in any case), else unchanged."""
    return _SWITCH_WORDS.get(value.lower(), value) if isinstance(value, str) else value
