"""DSPy: the routed model as a ``dspy.LM``, or made DSPy's current LM for a block.

::

    import dspy
    from dmr.integrations.dspy import get_lm, route

    question = "Summarise this contract …"
    qa = dspy.Predict("question -> answer")
    with route(question) as lm:          # dspy.context(lm=lm) for the block
        print(lm.model, qa(question=question).answer)
    qa(question=question, lm=get_lm(question))   # or pass the LM yourself

``route`` yields the ``dspy.LM`` it made current (what ``dspy.settings.lm`` is inside the block);
for the router's decision itself call :func:`dmr.integrations.target`. Models are named the LiteLLM
way, ``openai/<model>`` at the provider's ``api_base`` for OpenAI-compatible endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from dmr.integrations.target import require, target

__all__ = ["get_lm", "route"]

PACKAGE = "dspy"


def get_lm(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Any:
    """A ``dspy.LM`` for the model the router picks for ``task`` (and ``needs``); ``kwargs``
    (temperature, max_tokens, cache, …) go to ``dspy.LM`` and override the routed endpoint settings."""
    dspy = require("dspy", PACKAGE)
    found = target(task, router=router, needs=needs)
    options: dict[str, Any] = {"api_key": found.key_or_placeholder()}
    if found.openai_compatible and found.base_url:
        options["api_base"] = found.base_url
    return dspy.LM(found.litellm_model, **{**options, **kwargs})


@contextmanager
def route(task: Any, *, router: Any = None, needs: Iterable[str] | None = None, **kwargs: Any) -> Iterator[Any]:
    """Within the block, DSPy modules use the LM routed for ``task`` (this thread/task only;
    the previous LM is back afterwards). Yields that ``dspy.LM``."""
    dspy = require("dspy", PACKAGE)
    lm = get_lm(task, router=router, needs=needs, **kwargs)
    with dspy.context(lm=lm):
        yield lm
