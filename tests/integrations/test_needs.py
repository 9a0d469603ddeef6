"""What a call needs of its model, read from the call the way each framework makes it, and routed
on: ``target(..., needs=...)`` passes over a model whose registry entry says it lacks one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from integration_support import PNG_URL, offline_router
from pydantic import BaseModel

from dmr.integrations import atarget, target
from dmr.integrations.needs import has_image, is_json_schema, needs_of, openai_needs

from recording_proxy import EASY, MODELS


class Answer(BaseModel):
    text: str


@dataclass
class Blob:
    mime_type: str


@dataclass
class Part:  # a Gemini part: text, or a blob
    text: str | None = None
    inline_data: Blob | None = None


@dataclass
class Content:
    role: str
    parts: list


def _user(*parts) -> dict:
    return {"role": "user", "content": list(parts)}


TEXT = {"type": "text", "text": "What is this?"}


def test_images_are_found_in_each_frameworks_message_shape():
    assert has_image([_user(TEXT, {"type": "image_url", "image_url": {"url": PNG_URL}})])  # OpenAI, LiteLLM, CrewAI
    assert has_image(_user({"type": "image", "image": object()}))  # smolagents, LangChain's standard block
    assert has_image([_user({"type": "input_image", "image_url": PNG_URL})])  # OpenAI's Responses API
    assert has_image([Content("user", [Part("look"), Part(inline_data=Blob("image/png"))])])  # Gemini, ADK
    # An image in an earlier turn is sent again with the conversation: the model must read it too.
    assert has_image([_user({"type": "image_url"}), {"role": "assistant", "content": "a cat"},
                      {"role": "user", "content": "and its colour?"}])


def test_text_audio_and_files_are_not_images():
    assert not has_image(None) and not has_image("an image_url") and not has_image([])
    assert not has_image([{"role": "user", "content": "image"}, _user(TEXT)])
    assert not has_image([_user({"type": "input_audio", "input_audio": {}}, {"type": "file", "file": {}})])
    assert not has_image([Content("user", [Part(inline_data=Blob("audio/wav")), Part("image/png")])])


def test_tools_and_schemas():
    assert needs_of([_user(TEXT)]) == []
    assert needs_of([_user(TEXT)], tools=[{"type": "function"}], json_schema=True) == ["function_calling",
                                                                                        "json_schema"]
    assert needs_of([_user(TEXT)], tools=[]) == []  # frameworks pass an empty list for no tools
    assert is_json_schema({"type": "json_schema", "json_schema": {"name": "a", "schema": {}}})
    assert is_json_schema(Answer)  # LiteLLM, CrewAI and AutoGen send a pydantic model as one
    for other in (None, True, {"type": "json_object"}, {"type": "text"}, Answer(text="x"), dict):
        assert not is_json_schema(other)


def test_openai_keyword_arguments():
    image = [_user(TEXT, {"type": "image_url", "image_url": {"url": PNG_URL}})]
    assert openai_needs(image, {}) == ["vision"]
    assert openai_needs("hi", {"tools": [{"type": "function"}]}) == ["function_calling"]
    assert openai_needs("hi", {"functions": [{"name": "f"}]}) == ["function_calling"]  # the legacy name
    assert openai_needs("hi", {"response_format": {"type": "json_schema"}}) == ["json_schema"]
    assert openai_needs("hi", {"response_format": {"type": "json_object"}, "tools": None}) == []


def test_target_passes_the_needs_to_the_router():
    limited_router = offline_router(limited=True)
    plain, tools = target(EASY, router=limited_router), target(EASY, router=limited_router, needs=["function_calling"])
    assert (plain.model, tools.model) == (MODELS["low"], MODELS["medium"])
    assert tools.decision.policies_applied == ("needs_function_calling:low->medium",)
    seeing = asyncio.run(atarget(EASY, router=limited_router, needs=("vision",)))
    assert (seeing.model, seeing.decision.policies_applied) == (MODELS["medium"], ("needs_vision:low->medium",))
