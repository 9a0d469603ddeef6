"""Agent-framework integrations: one module per framework, each a thin layer over :func:`target`.

``target(task)`` classifies a task with a Router (the process-wide default unless one is given)
and returns a :class:`Target`: the decision plus how to reach the model it picked (provider,
model name, endpoint, key variable, the LiteLLM-style ``provider/model`` string). A framework
module turns that into its own model object, imports its framework only when called, and says
which package to install when the framework is missing::

    from dmr.integrations.langchain import get_chat_model
    llm = get_chat_model("Summarise this contract …")   # a LangChain chat model for that task

Modules: ``langchain``, ``crewai``, ``autogen`` (also the OpenAI Agents SDK), ``openai_agents``,
``adk``, ``llamaindex``, ``pydantic_ai``, ``dspy``, ``haystack``, ``semantic_kernel``,
``smolagents``. Each is also importable as ``classifier.integrations.<name>``.
"""

from dmr.integrations.target import Target, atarget, history_of, require, target, task_of

__all__ = ["Target", "atarget", "history_of", "require", "target", "task_of"]
