"""dmr.messages: one reader of chat messages for the integrations, the proxy and the policies."""

from __future__ import annotations

import pytest

from dmr.messages import history_turns, turn_list, turns


class _Typed:
    """A message that names its role by its type, as AutoGen's UserMessage and friends do."""

    def __init__(self, kind, content):
        self.type, self.content = kind, content


class Image:
    """An image object given as a content part (AutoGen's and PIL's are both called Image)."""


def test_message_types_that_name_a_role_are_read_as_that_role():
    read = turns([_Typed("SystemMessage", "be brief"), _Typed("UserMessage", ["what is this?", Image()]),
                  _Typed("AssistantMessage", "a cat"), _Typed("FunctionExecutionResultMessage", "42")])
    assert read == [("system", "be brief"), ("user", "what is this?\n[image]"), ("assistant", "a cat"), ("tool", "42")]


def test_a_history_is_a_list_of_turns_whatever_its_shape():
    assert turn_list(None) is None
    assert turn_list("one turn") == ["one turn"] and turn_list(b"x") == [b"x"]
    message = {"role": "user", "content": "hi"}
    assert turn_list(message) == [message] and turn_list(_Typed("UserMessage", "hi"))[0].content == "hi"
    assert turn_list(iter(["a", "b"])) == ["a", "b"] and turn_list(("a",)) == ["a"]
    with pytest.raises(TypeError, match="history must be a list of turns"):
        turn_list(3.5)
    assert history_turns("hello") == [("", "hello")]  # as a plain string in a list: no role
    assert history_turns([message, "plain"]) == [("user", "hi"), ("", "plain")]
