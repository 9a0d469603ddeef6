"""The layers of the cascade, and ``register_layer`` for plug-in layers.

Built-in order: ``layer1`` (keywords) → ``layer3`` (embedding classifier) → ``layer2`` (LLM).
A plug-in layer is inserted at ``position``: ``"first"``, ``"last"``, an index, or
``"before:<name>"`` / ``"after:<name>"``. Registration applies to Routers built afterwards; a Router
keeps the cascade it was built with.
"""

from __future__ import annotations

import threading
from typing import Any

from dmr.errors import ConfigError
from dmr.layers.base import Context, Layer, LayerUnavailable

__all__ = ["Context", "Layer", "LayerUnavailable", "plugin_layers", "register_layer", "unregister_layer"]

_LOCK = threading.Lock()
_PLUGINS: list[tuple[Any, object]] = []


def register_layer(layer: Any, position: int | str = "last") -> Any:
    """Add ``layer`` (anything with ``name`` and ``classify(task, ctx)``) to the cascade of every
    Router built from now on. Returns the layer, so it can be used as a class decorator's result."""
    if not callable(getattr(layer, "classify", None)) or not isinstance(getattr(layer, "name", None), str):
        raise ConfigError("a layer needs a string `name` and a `classify(task, ctx)` method")
    if not (isinstance(position, int) or position in ("first", "last")
            or (isinstance(position, str) and position.split(":", 1)[0] in ("before", "after"))):
        raise ConfigError(f"layer position must be 'first', 'last', an index or 'before:/after:<name>', not {position!r}")
    with _LOCK:
        _PLUGINS[:] = [(l, p) for l, p in _PLUGINS if l.name != layer.name]
        _PLUGINS.append((layer, position))
    return layer


def unregister_layer(name: str) -> None:
    with _LOCK:
        _PLUGINS[:] = [(l, p) for l, p in _PLUGINS if l.name != name]


def plugin_layers() -> list[tuple[Any, object]]:
    with _LOCK:
        return list(_PLUGINS)


def arrange(builtin: list[Any], plugins: list[tuple[Any, object]]) -> list[Any]:
    """Insert plug-in layers into the built-in order, in registration order; a layer placed
    ``before:``/``after:`` a plug-in registered later waits until that one is placed."""
    order = list(builtin)
    pending = list(plugins)
    while pending:
        waiting = []
        for layer, position in pending:
            names = [l.name for l in order]
            if position == "first":
                index = 0
            elif position == "last":
                index = len(order)
            elif isinstance(position, int):
                index = position if position >= 0 else len(order) + position + 1
            else:
                where, _, anchor = str(position).partition(":")
                if anchor not in names:
                    waiting.append((layer, position))
                    continue
                index = names.index(anchor) + (where == "after")
            order.insert(max(0, min(index, len(order))), layer)
        if len(waiting) == len(pending):
            layer, position = waiting[0]
            raise ConfigError(f"layer {layer.name!r}: position {position!r} names no layer in "
                              f"{[l.name for l in order]}")
        pending = waiting
    return order
