"""Helpers several framework tests share."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from recording_proxy import registry_for

__all__ = ["close_thread_loop", "in_own_thread", "offline_router"]


def close_thread_loop() -> None:
    """Close the event loop a framework left set on the current (non-main) thread, if any."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # none was set on this thread
        return
    if not loop.is_running():
        loop.close()


def in_own_thread(call: Callable[[], Any]) -> Any:
    """``call()`` in a thread of its own whose event loop is closed afterwards.

    The frameworks' ``run_sync`` helpers run on the thread's default event loop and leave it open
    (the Agents SDK with its async generators shut down): the next run on that thread, or a later
    test replacing the loop, raises a ResourceWarning, an error in this suite."""
    def run() -> Any:
        try:
            return call()
        finally:
            close_thread_loop()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def offline_router() -> Any:
    """A Router over the ``local`` provider at a port nothing listens on: for tests that build
    objects without calling them."""
    from dmr import Router

    return Router(model_registry=registry_for("http://127.0.0.1:9/v1"), provider="local", layer2_enabled=False)
