"""``@route_model``: give any function the model the router picks for its task."""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable, TypeVar

__all__ = ["route_model"]

F = TypeVar("F", bound=Callable[..., Any])


def route_model(provider: str | None = None, *, router: Any = None, task_param: str = "task",
                model_param: str = "model_name", **router_options: Any) -> Callable[[F], F]:
    """Decorate a function taking a task; each call gets ``model_name=`` (or ``model_param``)
    set to the routed model, unless the caller passed one explicitly.

    The Router is built on the first call (from ``provider`` and ``router_options``) unless one is
    given with ``router=``.
    """
    lock = threading.Lock()
    holder: list[Any] = [router] if router is not None else []

    def get_router() -> Any:
        if not holder:
            with lock:
                if not holder:
                    from dmr.router import Router

                    options = dict(router_options)
                    if provider is not None:
                        options["provider"] = provider
                    holder.append(Router(**options))
        return holder[0]

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        if task_param not in signature.parameters:
            raise TypeError(f"@route_model: {fn.__name__}() has no parameter {task_param!r}")

        def pick(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            bound = signature.bind_partial(*args, **kwargs)
            if model_param in bound.arguments:
                return kwargs
            bound.apply_defaults()
            if task_param not in bound.arguments:
                raise TypeError(f"{fn.__name__}() missing required argument: {task_param!r}")
            decision = get_router().classify(bound.arguments[task_param])
            return {**kwargs, model_param: decision.model_name}

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **pick(args, kwargs))
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **pick(args, kwargs))
        return wrapper  # type: ignore[return-value]

    return decorate
