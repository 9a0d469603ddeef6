"""The integrations table users know (the seed README): every module and entry point exists under
``classifier.integrations`` as written, and is the same object as under ``dmr.integrations``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

pytestmark = [  # what importing crewai (for its DynamicLLM) raises: crewai's, as in test_crewai.py
    pytest.mark.filterwarnings("ignore:Cannot set an attribute on 'crewai:ImportWarning"),
    pytest.mark.filterwarnings("ignore:function_calling_llm is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning:crewai"),
]

TABLE = {
    "langchain": ["get_chat_model", "DynamicChatModel"],
    "crewai": ["pick_llm_for_task", "DynamicLLM"],
    "autogen": ["get_autogen_llm_config", "get_openai_agent_model"],
    "adk": ["dynamic_model_selector"],
    "llamaindex": ["get_llm", "DynamicLLM"],
    "pydantic_ai": ["get_model_string", "get_agent"],
    "dspy": ["get_lm", "route"],
    "haystack": ["get_generator"],
    "semantic_kernel": ["get_chat_service"],
    "smolagents": ["get_model", "DynamicModel"],
}


@pytest.mark.parametrize("module", sorted(TABLE))
def test_each_documented_entry_point_exists(module):
    seed = importlib.import_module(f"classifier.integrations.{module}")
    assert seed is importlib.import_module(f"dmr.integrations.{module}")
    for name in TABLE[module]:
        assert callable(getattr(seed, name)), f"{module}.{name}"
    assert set(TABLE[module]) <= set(seed.__all__)


def test_the_seed_crewai_example_constructs(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai"))
    monkeypatch.chdir(tmp_path)
    from crewai import Agent

    from classifier.integrations.crewai import DynamicLLM

    agent = Agent(role="Analyst", goal="...", backstory="...", llm=DynamicLLM())
    assert isinstance(agent.llm, DynamicLLM)


# The framework each integration module must not import until it is used.
FRAMEWORKS = {"adk": ["google.adk"], "autogen": ["autogen", "agents"], "crewai": ["crewai"], "dspy": ["dspy"],
              "haystack": ["haystack"], "langchain": ["langchain_core", "langchain_openai"],
              "llamaindex": ["llama_index"], "openai_agents": ["agents"], "pydantic_ai": ["pydantic_ai"],
              "semantic_kernel": ["semantic_kernel"], "smolagents": ["smolagents"]}


def test_importing_an_integration_imports_no_framework_until_it_is_used():
    # One fresh interpreter: every module through both names, then the lazily built classes.
    code = (f"import importlib, json, sys\nframeworks = {FRAMEWORKS!r}\nloaded = {{}}\n"
            "for name, roots in frameworks.items():\n"
            "    real = importlib.import_module('dmr.integrations.' + name)\n"
            "    assert importlib.import_module('classifier.integrations.' + name) is real, name\n"
            "    loaded[name] = [m for m in sys.modules for r in roots if m == r or m.startswith(r + '.')]\n"
            "from classifier.integrations import langchain, llamaindex\n"
            "langchain.DynamicChatModel, llamaindex.DynamicLLM\n"
            "print(json.dumps([loaded, 'langchain_core' in sys.modules, 'llama_index.core' in sys.modules]))")
    loaded, langchain_built, llamaindex_built = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert set(loaded) == set(FRAMEWORKS) and loaded == {name: [] for name in FRAMEWORKS}
    assert langchain_built and llamaindex_built
