"""Personal data detection for the PII policy (and, later, log scrubbing).

All patterns run as one compiled alternation, so detection is a single pass over the text; an
extra pattern with capturing groups of its own runs separately (joined, its backreferences would
point at the wrong group and its group names could clash with another pattern's).
Credit-card numbers must pass the Luhn check and IBANs the ISO 7064 mod-97 check, which keeps
order numbers and invoice ids from counting as PII.

Each text is scanned on its own: PII split across two turns of a conversation is not joined up.

Detection takes time linear in the text. The one built-in pattern that did not, the email's
``[A-Za-z0-9._%+-]+@…``, tried its local part again at every character of a run of local-part
characters with no ``@`` after it (100 KB of ``"x"`` took 13 s, growing with the square of the
length); see ``_ANCHORED_EMAIL``.
"""

from __future__ import annotations

import functools
import re
import string
from typing import Any, Iterable, Iterator, Mapping

from dmr.errors import ConfigError
from dmr.messages import MODEL_ROLES, TOOL_ROLES, history_turns

__all__ = ["BUILTIN_PATTERNS", "PIIDetector", "client_turns", "luhn_valid", "iban_valid"]

# Email: a local part and domain in any script (internationalised addresses), "@" also written as
# a full-width or small commercial at (U+FF20, U+FE6B). The top-level domain is punycode or letters,
# ASCII ones first so that one ends where text in another script follows it ("a@b.comです").
_LOCAL = r"[\w.%+-]"
_AFTER_LOCAL = r"[@\uff20\ufe6b][\w.-]+\.(?:xn--[\w-]+|[A-Za-z]{2,}|[^\W\d_]{2,})"
_PHONE_SEP = r"[ .\u00a0\u2007\u202f-]"
# French numbers: ten digits written in pairs (06 12 34 56 78), or +33 and nine digits with the
# trunk 0 dropped or bracketed (+33 (0)6 12 34 56 78); alone, not part of a longer run of pairs.
_FRENCH_PHONE = (rf"(?<!\d{_PHONE_SEP})(?:0|\+33{_PHONE_SEP}?(?:\(0\){_PHONE_SEP}?)?)[1-9](?:{_PHONE_SEP}\d{{2}}){{4}}"
                 rf"(?!{_PHONE_SEP}?\d)")

BUILTIN_PATTERNS: Mapping[str, str] = {
    "email": rf"{_LOCAL}+{_AFTER_LOCAL}",
    # Separators: a space, a hyphen, or a no-break space (U+00A0, U+2007, U+202F: PDF and HTML pastes).
    "credit_card": r"(?<!\d)(?:\d[ \u00a0\u2007\u202f-]?){12,18}\d(?!\d)",
    # Either case: the mod-97 check, not the letters' case, tells an IBAN from other text.
    "iban": r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b",
    # With hyphens, or with spaces when standing alone (not 3-2-4 digits inside a longer run of them).
    "us_ssn": r"(?<!\d)(?!000|666|9\d\d)\d{3}(?:-(?!00)\d{2}-(?!0000)\d{4}(?!\d)"
              r"|(?<!\d[ \u00a0]\d{3})[ \u00a0](?!00)\d{2}[ \u00a0](?!0000)\d{4}(?![ \u00a0]?\d))",
    "phone": r"(?<![\w+])(?:(?:\+\d{1,3}[ .\u00a0-]?)?(?:\(\d{2,4}\)[ .\u00a0-]?|\d{2,4}[ .\u00a0-])\d{3,4}"
             rf"[ .\u00a0-]?\d{{3,4}}(?!\d)|{_FRENCH_PHONE})",
    "medical_record_number": r"(?i:\b(?:MRN|medical record(?: number| no\.?| #)?|patient id)[:# ]*\d{4,12}\b)",
}


# The email pattern as it runs: the same as BUILTIN_PATTERNS["email"], but starting only where a run
# of local-part characters starts (and taking that run whole, possessively: "@" is not one of them).
# Whether the email pattern matches at a position inside such a run, and where the match ends,
# depends only on what follows the run, so a scan that failed at the run's first character fails
# at every later one: only the first needs trying. The one other place a scan can start inside a
# run is where the previous match ended; _scan tries the full pattern there itself (once per run).
_EMAIL_LOCAL = re.compile(_LOCAL).fullmatch
_ANCHORED_EMAIL = rf"(?<!{_LOCAL}){_LOCAL}++{_AFTER_LOCAL}"
_NOT_EMAIL_LOCAL = re.compile(r"[^\w.%+-]")


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


_LETTER_VALUES = {ord(c): str(int(c, 36)) for c in string.ascii_letters}  # A and a: 10, … Z and z: 35


def iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    try:
        return int((compact[4:] + compact[:4]).translate(_LETTER_VALUES)) % 97 == 1
    except ValueError:  # a letter outside A-Z
        return False


_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


def _scoped(pattern: str) -> str:
    """Turn a leading global flag group ``(?i)x`` into a scoped one ``(?i:x)`` so that patterns
    can be joined into one alternation."""
    match = _GLOBAL_FLAGS.match(pattern)
    return f"(?{match.group(1)}:{pattern[match.end():]})" if match else pattern


def _iban_length(candidate: str) -> int:
    """How much of ``candidate`` is a valid IBAN (0: none). The pattern takes a short word after an
    IBAN written in groups for one more group ("de89 3704 0044 0532 0130 00 and"), so the prefixes
    ending at a space are tried too, longest first."""
    cut = len(candidate)
    while cut > 0 and not iban_valid(candidate[:cut]):
        cut = candidate.rfind(" ", 0, cut)
    return max(cut, 0)


_SSN_NAMED = re.compile(r"(?i)(?:\bssn|\bss ?#|social[ -]security|\bsoc\.? ?sec\b)")


def _ssn_length(match: re.Match[str]) -> int:
    """An SSN written with hyphens counts as it is; written with spaces, three, two and four digits
    are as often a room number, a score or a row of figures ("sales 100 25 1999"), so they count
    only when an SSN is named just before them ("SSN 078 05 1120")."""
    if "-" in match.group():
        return len(match.group())
    before = match.string[max(0, match.start() - 40):match.start()]
    return len(match.group()) if _SSN_NAMED.search(before) else 0


_CHECKS = {"credit_card": lambda match: len(match.group()) if luhn_valid(match.group()) else 0,
           "iban": lambda match: _iban_length(match.group()), "us_ssn": _ssn_length}


def _valid_length(kind: str, match: re.Match[str]) -> int:
    """How much of a match is PII of its kind: all of it, a checked prefix, or nothing (0)."""
    check = _CHECKS.get(kind)
    return len(match.group()) if check is None else check(match)


# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, Han): text in them
# runs straight into an address ("メールはa@b.comです"), so a local part that starts in one of them
# and goes on in another script starts where the other begins. One wholly in them ("张三@例子.中国")
# is kept whole.
_SPACELESS = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")


def _email_start(text: str, start: int) -> int:
    lead = _SPACELESS.match(text, start)
    return start if lead is None or text[lead.end()] in "@\uff20\ufe6b" else lead.end()


def _found(kind: str, text: str, start: int, end: int) -> tuple[str, int, int]:
    return kind, _email_start(text, start) if kind == "email" else start, end


_MEMO_CHARS = 100_000


class PIIDetector:
    """Finds the kinds of personal data in a text. ``extra`` adds named patterns (a mapping) or
    anonymous ones (a list, named ``custom_1``, ``custom_2``…)."""

    def __init__(self, extra: Mapping[str, str] | Iterable[str] | None = None) -> None:
        patterns = dict(BUILTIN_PATTERNS)
        if extra:
            items = extra.items() if isinstance(extra, Mapping) else (
                (f"custom_{i}", p) for i, p in enumerate(extra, 1))
            problems = []
            for name, pattern in items:
                try:
                    compiled = re.compile(pattern)
                except (re.error, TypeError) as exc:
                    problems.append((f"extra_pii_patterns.{name}", f"invalid regular expression: {exc}"))
                    continue
                patterns[str(name)] = compiled if compiled.groups else _scoped(pattern)
            if problems:
                raise ConfigError("invalid PII patterns:\n" + "\n".join(f"  {p}: {m}" for p, m in problems), problems)
        self.names = tuple(patterns)
        joined = {name: p for name, p in patterns.items() if isinstance(p, str)}
        self._separate = [(name, p) for name, p in patterns.items() if not isinstance(p, str)]
        self._groups = {f"p{i}": name for i, name in enumerate(joined)}
        sources = list(joined.values())
        # The built-in email pattern, when it is the alternation's first (it is unless replaced),
        # runs anchored; _scan covers a start inside a run with the pattern as written.
        self._lead: tuple[str, re.Pattern[str]] | None = None
        if sources and sources[0] == BUILTIN_PATTERNS["email"]:
            self._lead = (next(iter(joined)), re.compile(sources[0]))
            sources[0] = _ANCHORED_EMAIL
        self._regex = re.compile("|".join(f"(?P<p{i}>{p})" for i, p in enumerate(sources)))
        # One request's texts are read up to three times (the proxy's PII block, the Router's
        # policy, the decision log's scrubber): the last few texts' matches are kept, not rescanned
        # (texts up to _MEMO_CHARS, so that what is kept stays small).
        self._memo = functools.lru_cache(maxsize=16)(self._scan)

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """Every match as ``(kind, start, end)`` in text order, checksummed kinds validated."""
        return list(self._recent(text))

    def _recent(self, text: str) -> tuple[tuple[str, int, int], ...]:
        return self._memo(text) if len(text) <= _MEMO_CHARS else self._scan(text)

    def _scan(self, text: str) -> tuple[tuple[str, int, int], ...]:
        found: list[tuple[str, int, int]] = []
        lead_kind, lead = self._lead or ("", None)
        checked_to = 0  # a run of email local-part characters found to start no email ends here
        matches: Iterator[re.Match[str]] | None = self._regex.finditer(text)
        while matches is not None:
            resumed, matches = matches, None
            for match in resumed:
                start, end = match.span()
                if end == start:  # a pattern that can match nothing finds no PII
                    continue
                kind = self._groups[match.lastgroup or ""]
                length = _valid_length(kind, match)
                if length:
                    found.append(_found(kind, text, start, start + length))
                # The scan goes on from the end of what was kept: an IBAN cut short leaves the
                # word the pattern took after it to be scanned again.
                pos = start + length if length else end
                # A match ending inside a run of email local-part characters: the scan goes on from
                # there, where the anchored email pattern cannot start but the pattern as written
                # can (``a@b.com%20c@d.org``): try that there, once a run (the result is the run's).
                while (lead is not None and checked_to <= pos < len(text) and _EMAIL_LOCAL(text[pos - 1])
                       and _EMAIL_LOCAL(text[pos])):
                    email = lead.match(text, pos)
                    if email is None:
                        run_end = _NOT_EMAIL_LOCAL.search(text, pos)
                        checked_to = run_end.start() if run_end else len(text)
                        break
                    found.append(_found(lead_kind, text, pos, email.end()))
                    pos = email.end()
                if pos != end:
                    matches = self._regex.finditer(text, pos)
                    break
        if self._separate:
            for kind, regex in self._separate:
                for match in regex.finditer(text):
                    length = _valid_length(kind, match)
                    if length:
                        found.append(_found(kind, text, match.start(), match.start() + length))
            found.sort(key=lambda item: (item[1], -item[2]))
        return tuple(found)

    def kinds(self, text: str) -> tuple[str, ...]:
        """The distinct kinds of PII in ``text``, in pattern order."""
        seen = {kind for kind, _, _ in self._recent(text)}
        return tuple(name for name in self.names if name in seen)

    def scrub(self, text: str, replacement: str = "[{kind}]") -> str:
        """``text`` with each PII match replaced (used before anything is logged)."""
        parts, last = [], 0
        for kind, start, end in self._recent(text):
            if start < last:
                continue
            parts.append(text[last:start])
            parts.append(replacement.format(kind=kind.upper()))
            last = end
        parts.append(text[last:])
        return "".join(parts)


def client_turns(history: Iterable[Any] | None) -> Iterator[tuple[int, str]]:
    """``(index, text)`` of each turn of a Router ``history`` a client wrote: plain strings (and
    UTF-8 bytes), and messages (mappings, or objects with ``role``/``type`` and ``content``) whose
    role is not a model's or a tool's. Turns without text are left out; a lone string or message
    passed as the history counts as its one turn."""
    for index, (role, text) in enumerate(history_turns(history)):
        if role not in MODEL_ROLES and role not in TOOL_ROLES and text.strip():
            yield index, text
