"""The integrations table users know (the seed README): every module and entry point exists under
``classifier.integrations`` as written, and is the same object as under ``dmr.integrations``."""

from __future__ import annotations

import importlib

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
