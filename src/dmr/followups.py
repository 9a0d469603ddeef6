"""Follow-ups: a short turn of a conversation is routed no lower than the request it follows.

"continue", "now in Rust", "yes please", "and the edge case of an empty list?" say little on their
own: classified alone they look like small talk and go to the cheapest tier, while the model that
answers them must carry on the conversation's real work (the lock-free queue, the proof, the
contract review). So when ``history`` is given, a task of at most :data:`FOLLOW_UP_CHARS`
characters gets as a floor the tier of the most demanding of the client's last
:data:`RECENT_REQUESTS` requests in it, passing over earlier requests that say the same as the task
(a chain of "continue"s keeps the tier of the request it continues). A longer task describes itself
and is routed on its own.

Only the client's requests count (plain strings and ``user``/``human`` messages): not the system
prompt, which describes the application rather than the task, and not the model's or a tool's
turns. Earlier requests are classified by the layers that need no network (Layer 1, Layer 3 and
plugins that do not block), never by Layer 2, and remembered by a digest of their text, since a
conversation sends the same earlier turns with every call.

A bare acknowledgement ("thanks", "ok", "yes", whatever Layer 1 calls trivial) keeps its own tier,
unless the model's latest turn ends in a question: after "Shall I write the whole module?", "yes"
asks for the module.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Callable, NamedTuple

from dmr.messages import MODEL_ROLES, USER_ROLES, history_turns
from dmr.types import ModelTier

__all__ = ["FOLLOW_UP_CHARS", "RECENT_REQUESTS", "FollowUpFloor", "Floor"]

FOLLOW_UP_CHARS = 200
RECENT_REQUESTS = 3
_REQUEST_ROLES = USER_ROLES | {""}  # plain strings have no role
_QUESTION_MARKS = ("?", "\uff1f", "\u061f", "\u055e", "\u037e")  # ? ？ Arabic, Armenian, Greek
_MEMO_SIZE = 512


class Floor(NamedTuple):
    """The tier a follow-up is raised to, the difficulty behind it, and which turn set it."""

    tier: ModelTier
    difficulty: float
    index: int


class FollowUpFloor:
    """Finds the floor of a follow-up; ``level(text)`` is the (tier, difficulty) the router's
    cheap layers give one earlier request, or None when none of them answers."""

    def __init__(self, level: Callable[[str], tuple[ModelTier, float] | None]) -> None:
        self._level = level
        self._memo: OrderedDict[bytes, tuple[ModelTier, float] | None] = OrderedDict()
        self._lock = threading.Lock()

    def floor(self, task: str, history: Any, *, trivial: bool = False) -> Floor | None:
        """The floor for ``task`` given the conversation's earlier turns, or None when ``task`` is
        not a follow-up (too long, or a bare acknowledgement of an answer) or nothing in
        ``history`` is a request."""
        if len(task.strip()) > FOLLOW_UP_CHARS:
            return None
        read = history_turns(history)
        if trivial and not _asked(read):
            return None
        # Earlier requests that say the same as the task ("continue" sent again and again while a
        # long answer comes in parts) are passed over: they would push the request they all continue
        # out of the window.
        same = task.strip().casefold()
        requests = [(i, text) for i, (role, text) in enumerate(read)
                    if role in _REQUEST_ROLES and text.strip() and text.strip().casefold() != same]
        best: Floor | None = None
        for index, text in requests[-RECENT_REQUESTS:]:
            found = self._remembered(text)
            if found is not None and (best is None or found[0].rank > best.tier.rank):
                best = Floor(found[0], found[1], index)
        return best

    def _remembered(self, text: str) -> tuple[ModelTier, float] | None:
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        found = self._level(text)
        with self._lock:
            self._memo[key] = found
            if len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return found


def _asked(read: list[tuple[str, str]]) -> bool:
    """Whether the model's latest turn ends in a question."""
    for role, text in reversed(read):
        if role in MODEL_ROLES:
            return text.rstrip().rstrip("\"'”’»)*_").endswith(_QUESTION_MARKS)
    return False
