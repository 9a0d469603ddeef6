"""What every integration shares: route a task (or a framework's message list) to a :class:`Target`.

A framework hands its model a list of messages in its own shape: OpenAI-style dicts, objects with
``role``/``type`` and ``content``, content as a string or a list of parts. :func:`task_of` reads
the latest user turn out of any of them, :func:`history_of` the turns before it, so that per-call
routing classifies what the user asked now, with the conversation as context.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from dmr.errors import InputError, NotAvailableError
from dmr.messages import USER_ROLES, turns as _turns
from dmr.registry_schema import key_from_env
from dmr.types import Decision

__all__ = ["NATIVE_PROVIDERS", "RoutedModels", "Target", "atarget", "history_of", "lazy_classes", "marked_task",
           "require", "target", "task_of"]

# Providers whose own API is not OpenAI's wire format; every other provider is reached as an
# OpenAI-compatible endpoint at its registry base_url (OpenAI, Mistral, Groq, vLLM, llama.cpp, …).
NATIVE_PROVIDERS = frozenset({"anthropic", "google"})
# The prefix LiteLLM (and the frameworks built on it: CrewAI, DSPy, ADK's LiteLlm, smolagents)
# uses for a provider's native API.
_LITELLM_PREFIX = {"google": "gemini"}
# Sent as the key to an OpenAI-compatible endpoint that needs none (a local server): the SDKs
# refuse to start without one.
NO_KEY = "not-needed"


@dataclass(frozen=True)
class Target:
    """Where one task goes: the router's decision and how to reach the model it picked."""

    decision: Decision
    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None

    @property
    def api_key(self) -> str | None:
        """The provider's key from its environment variable (read now, never stored)."""
        return key_from_env(self.api_key_env)

    @property
    def openai_compatible(self) -> bool:
        """True when the model is reached through OpenAI's wire format at ``base_url``."""
        return self.provider not in NATIVE_PROVIDERS

    @property
    def litellm_model(self) -> str:
        """``provider/model`` as LiteLLM names it; an OpenAI-compatible endpoint is ``openai/…``
        (pass ``base_url`` as its ``api_base``)."""
        if self.openai_compatible and self.provider != "mistral":
            return f"openai/{self.model}"
        return f"{_LITELLM_PREFIX.get(self.provider, self.provider)}/{self.model}"

    def key_or_placeholder(self) -> str:
        """The key, or a placeholder for an endpoint that has no key variable (a local server);
        a missing key that the registry expects is an error that names the variable."""
        key = self.api_key
        if key:
            return key
        if self.api_key_env:
            raise NotAvailableError(f"no API key for {self.provider}: set {self.api_key_env}")
        return NO_KEY


def target(task: Any, *, router: Any = None, history: Sequence[Any] | None = None,
           tenant_config: Any = None, needs: Iterable[str] | None = None) -> Target:
    """Classify ``task`` with ``router`` (default: the process-wide ``Router()`` behind
    :func:`dmr.classify`) and say where it goes. ``needs`` names what the call needs of its model
    (``"vision"``, ``"function_calling"``, ``"json_schema"``): a model that lacks one is passed over."""
    router = _router(router)
    return _target(router, router.classify(task, history=history, tenant_config=tenant_config, needs=needs))


async def atarget(task: Any, *, router: Any = None, history: Sequence[Any] | None = None,
                  tenant_config: Any = None, needs: Iterable[str] | None = None) -> Target:
    """:func:`target` for async code: a classification that may wait on Layer 2 does not block
    the event loop."""
    router = _router(router)
    return _target(router, await router.aclassify(task, history=history, tenant_config=tenant_config,
                                                  needs=needs))


def _router(router: Any) -> Any:
    if router is None:
        from dmr.router import default_router

        router = default_router()
    return router


def _target(router: Any, decision: Decision) -> Target:
    if not decision.model_name or not decision.provider:
        raise NotAvailableError(
            f"the router chose tier {decision.tier} but the registry has no model for it: "
            "register a provider (register_provider or a registry file) with a model per tier")
    spec = router.registry.provider(decision.provider)
    return Target(decision, decision.provider, decision.model_name, spec.base_url, spec.api_key_env)


class RoutedModels:
    """The framework model objects a per-call router has built, one per (provider, model,
    endpoint), and the decision and model behind the latest call. Thread-safe."""

    def __init__(self, build: Callable[[Target], Any]) -> None:
        self._build = build
        self._models: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.Lock()
        self.last_decision: Decision | None = None
        self.last_model: Any = None

    def get(self, found: Target) -> Any:
        """The model object for ``found`` (built on first use); records it and its decision."""
        key = (found.provider, found.model, found.base_url)
        with self._lock:
            if key not in self._models:
                self._models[key] = self._build(found)
            self.last_decision, self.last_model = found.decision, self._models[key]
            return self.last_model

    def built(self) -> list[Any]:
        """Every model object built so far."""
        with self._lock:
            return list(self._models.values())


def lazy_classes(module: str, builders: Mapping[str, Callable[[], type]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for classes that subclass a framework's base class: each
    is built by its builder on first access and cached, so importing the integration module does
    not import the framework."""
    built: dict[str, type] = {}
    lock = threading.Lock()

    def __getattr__(name: str) -> Any:
        build = builders.get(name)
        if build is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        with lock:
            if name not in built:
                built[name] = build()
        return built[name]

    return __getattr__


def task_of(messages: Any) -> str:
    """The latest user turn of ``messages`` (a string, one message or a list of them), or the last
    turn with text when none is marked as the user's."""
    turns = [t for t in _turns(messages) if t[1].strip()]
    for role, text in reversed(turns):
        if role in USER_ROLES:
            return text
    if turns:
        return turns[-1][1]
    raise InputError("no text to route in the messages")


def history_of(messages: Any) -> list[dict[str, str]]:
    """The turns with text before the latest user turn, each ``{"role", "content"}`` with its role
    in lower case ("" when it has none) and its text: the router's ``history``, whose PII scan
    leaves the assistant's and tools' turns out."""
    turns = [t for t in _turns(messages) if t[1].strip()]
    end = len(turns) - 1 if turns else 0  # without a user turn, the last turn is the task
    for index in range(len(turns) - 1, -1, -1):
        if turns[index][0] in USER_ROLES:
            end = index
            break
    return [{"role": role, "content": text} for role, text in turns[:end]]


def marked_task(messages: Any, marker: str, ends: Sequence[str] = ()) -> str | None:
    """The task an agent framework states in a user turn as ``marker`` + task (CrewAI's
    "Current Task:", smolagents' "New task:"): the latest such turn's text after the marker, cut at
    the first of ``ends``; None when no turn has it. An agent loop adds user turns of its own
    (observations, plans, format reminders): routing on them would send a hard task's steps to a
    cheap model."""
    for role, text in reversed(_turns(messages)):
        if role in USER_ROLES and marker in text:
            task = text.split(marker, 1)[1]
            for end in ends:
                task = task.split(end, 1)[0]
            if task.strip():
                return task.strip()
    return None


def require(module: str, package: str) -> Any:
    """Import a framework module, or fail with the package that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NotAvailableError(f"this integration needs {package}: pip install '{package}'") from exc
