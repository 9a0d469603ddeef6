"""YAML as dmr reads the files a user writes (``dmr.yaml``, registries, tenants files): the safe
loader, stricter about two things plain YAML lets through.

- A key given twice in one mapping is an error, not "the last one wins": ``provider: google``
  followed further down by ``provider: openai`` is a mistake to point at, not to guess about.
- A file whose aliases (``*name``) expand to more than :data:`MAX_NODES` values is refused. An
  alias shares its anchor's value, so nine levels of nine aliases each ("billion laughs") load as a
  few hundred bytes but become billions of items for anything that walks the value, such as an
  error message that shows it.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

__all__ = ["MAX_NODES", "StrictLoader", "load"]

MAX_NODES = 200_000
_MERGE = "tag:yaml.org,2002:merge"


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


def load(text: str) -> Any:
    """The value of the YAML ``text``; :class:`yaml.YAMLError` for bad YAML, a repeated key or an
    alias bomb."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506  # a SafeLoader subclass
