"""PII detection: built-in kinds, checksums, false positives, extra patterns and scrubbing."""

from __future__ import annotations

import contextlib
import re
import signal
from typing import Iterator

import pytest

from dmr.errors import ConfigError
from dmr.pii import BUILTIN_PATTERNS, PIIDetector, iban_valid, luhn_valid


@pytest.fixture(scope="module")
def detector() -> PIIDetector:
    return PIIDetector()


@pytest.mark.parametrize("kind, text", [
    ("email", "write to jane.doe+news@example.co.uk today"),
    ("credit_card", "card 4111 1111 1111 1111 expires soon"),
    ("credit_card", "card 5500-0000-0000-0004"),
    ("iban", "pay to GB82 WEST 1234 5698 7654 32 please"),
    ("iban", "IBAN DE89370400440532013000"),
    ("us_ssn", "my ssn is 123-45-6789"),
    ("phone", "call +1 415-555-2671 after five"),
    ("phone", "call (415) 555-2671"),
    ("medical_record_number", "Patient MRN 12345 has chest pain"),
    ("medical_record_number", "medical record number: 1234567"),
])
def test_each_builtin_kind_is_found(detector, kind, text):
    assert detector.kinds(text) == (kind,)


def test_every_builtin_kind_has_a_test_above():
    assert set(BUILTIN_PATTERNS) == {"email", "credit_card", "iban", "us_ssn", "phone", "medical_record_number"}


def test_a_luhn_invalid_card_number_is_not_pii(detector):
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert detector.kinds("card 4111 1111 1111 1112") == ()


def test_a_mod97_invalid_iban_is_not_pii(detector):
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB83WEST12345698765432")
    assert detector.kinds("IBAN GB83 WEST 1234 5698 7654 32") == ()


@pytest.mark.parametrize("text", [
    "order 1234567890123 shipped",
    "upgrade to version 3.11.7",
    "due on 2024-05-01",
    "released 12/05/2024",
    "the year 2024 had 366 days",
    "it costs 1,234,567.89 dollars",
    "pi is 3.14159265358979",
    "build 20240501.1234",
    "server 192.168.1.1",
    "from 1999-2004",
    "ssn-like but invalid 000-12-3456",
    "released 12 05 2024 at 10.30",
    "dated 01.05.2024, updated 01 05 2024 at 08 30",
    "costs 06.99 euros",
    "order 0612345678 shipped",
    "lottery 01 02 03 04 05 06",
    "at 1.06.12.34.56.78",
    "ISBN 978 3 16 148410 0",
    "a row of 123 45 6789 12",
    "commit 3f9a2c1d4e5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f",
    "md5 ab12cd34ef56ab78cd90ef12ab34cd56",
    "de12 abcd efgh ijkl mnop qrst",
    "user@localhost, @decorator, a@b.T",
])
def test_ordinary_numbers_dates_and_versions_are_not_pii(detector, text):
    assert detector.kinds(text) == ()


def test_find_reports_positions_in_text_order(detector):
    text = "a@b.io then 123-45-6789"
    assert detector.find(text) == [("email", 0, 6), ("us_ssn", 12, 23)]


# -- extra patterns ----------------------------------------------------------------------------

def test_named_extra_patterns():
    detector = PIIDetector({"employee_id": r"EMP-\d{6}"})
    assert detector.names[-1] == "employee_id"
    assert detector.kinds("ask EMP-123456 or jane@example.com") == ("email", "employee_id")
    assert detector.kinds("ask emp-123456") == ()


def test_anonymous_extra_patterns_are_numbered():
    detector = PIIDetector([r"TKT-\d+", r"PRJ-[A-Z]{3}"])
    assert detector.names[-2:] == ("custom_1", "custom_2")
    assert detector.kinds("PRJ-ABC and TKT-99") == ("custom_1", "custom_2")


def test_a_pattern_with_a_leading_global_flag_works_inside_the_alternation():
    detector = PIIDetector({"employee_id": r"(?i)emp-\d{5}", "ticket": r"TKT-\d+"})
    assert detector.kinds("by EMP-12345") == ("employee_id",)
    assert detector.kinds("by emp-54321") == ("employee_id",)
    # The flag stays scoped to that pattern: the case-sensitive pattern after it still ignores lower case.
    assert detector.kinds("by TKT-42") == ("ticket",)
    assert detector.kinds("by tkt-42") == ()


def test_an_extra_pattern_with_its_own_groups_and_backreference():
    detector = PIIDetector({"pin": r"\bpin (\d)\1{3}\b"})
    assert detector.kinds("pin 7777") == ("pin",)
    assert detector.kinds("pin 7778") == ()


def test_two_extra_patterns_may_use_the_same_group_name():
    detector = PIIDetector({"a": r"(?P<id>AAA\d)", "b": r"(?P<id>BBB\d)"})
    assert detector.kinds("BBB2 and AAA1") == ("a", "b")
    assert [kind for kind, _, _ in detector.find("BBB2 and AAA1")] == ["b", "a"]


def test_an_extra_pattern_can_replace_a_builtin_one():
    detector = PIIDetector({"phone": r"\bPHONE\d+\b"})
    assert detector.names.count("phone") == 1
    assert detector.kinds("call +1 415-555-2671") == ()
    assert detector.kinds("call PHONE42") == ("phone",)


def test_a_pattern_that_matches_nothing_finds_nothing():
    assert PIIDetector({"maybe": r"x*"}).kinds("no pii here") == ()


def test_invalid_regular_expressions_are_all_reported_with_their_paths():
    with pytest.raises(ConfigError) as caught:
        PIIDetector({"good": r"a+", "unclosed": r"(abc", "range": r"[z-a]"})
    assert [path for path, _ in caught.value.problems] == [
        "extra_pii_patterns.unclosed", "extra_pii_patterns.range"]
    assert all("invalid regular expression" in message for _, message in caught.value.problems)
    assert "extra_pii_patterns.unclosed" in str(caught.value)


def test_an_invalid_anonymous_pattern_is_named_by_its_number():
    with pytest.raises(ConfigError) as caught:
        PIIDetector([r"ok", r"(bad"])
    assert caught.value.problems[0][0] == "extra_pii_patterns.custom_2"


def test_a_global_flag_in_the_middle_is_a_config_error():
    with pytest.raises(ConfigError, match="extra_pii_patterns.late_flag"):
        PIIDetector({"late_flag": r"foo(?i)bar"})


# -- scrubbing -------------------------------------------------------------------------------

def test_scrub_replaces_every_match(detector):
    text = "mail jane@example.com, card 4111111111111111, ssn 123-45-6789."
    assert detector.scrub(text) == "mail [EMAIL], card [CREDIT_CARD], ssn [US_SSN]."


def test_scrub_with_a_custom_replacement_and_nothing_to_replace(detector):
    assert detector.scrub("ask jane@example.com", replacement="<{kind}>") == "ask <EMAIL>"
    assert detector.scrub("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"


def test_scrub_covers_separately_run_patterns():
    detector = PIIDetector({"pin": r"\bpin (\d)\1{3}\b"})
    assert detector.scrub("a@b.io pin 1111 ok") == "[EMAIL] [PIN] ok"


def test_a_text_read_again_is_not_scanned_again_and_its_matches_stay_as_found():
    """The proxy's PII block, the Router's policy and the decision log's scrubber read the same
    texts: the last few are scanned once, a caller changing the list it got changes nothing, and a
    text past the memo's size is scanned every time rather than kept."""
    detector = PIIDetector()
    text = "write to ana.lopez@example.org about the invoice"
    first = detector.find(text)
    assert [kind for kind, _, _ in first] == ["email"]
    first.clear()
    assert detector.find(text) != [] and detector.kinds(text) == ("email",)
    assert detector.scrub(text) == "write to [EMAIL] about the invoice"
    info = detector._memo.cache_info()
    assert (info.misses, info.hits) == (1, 3)
    huge = "lorem ipsum " * 10_000 + text
    assert detector.kinds(huge) == ("email",) and detector.kinds(huge) == ("email",)
    assert detector._memo.cache_info().misses == 1


# -- long inputs ---------------------------------------------------------------------------------
# Scanning is linear in the text. The email pattern used to try its local part again at every
# character of a run of local-part characters with no "@" after it, so each input below took
# minutes to hours (100 KB of "x": 13 s, growing with the square of the length). These tests
# check what is found; the alarm only turns such a hang into a failure, it is no speed target.

@contextlib.contextmanager
def fails_if_it_hangs(seconds: float = 20.0) -> Iterator[None]:
    if not hasattr(signal, "setitimer"):  # no SIGALRM (Windows): run unguarded
        yield
        return

    def hung(signum: int, frame: object) -> None:
        raise AssertionError(f"PII scan still running after {seconds:.0f} s: it is not linear in the text")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


MB = 1_000_000


@pytest.mark.parametrize("run", [
    "x" * 2 * MB,                                  # letters
    "0123456789abcdef" * (MB // 16),               # hex
    "7" * MB,                                      # digits
    "." * MB,                                      # dots
    "-_%+" * (MB // 4),                            # the local part's other characters
    "a." * (MB // 2) + "@",                        # an "@" with no domain after it
    "a@" + "b" * MB,                               # a domain with no dot
    "a@" + "b." * (MB // 2),                       # a domain with no top-level domain
], ids=["letters", "hex", "digits", "dots", "symbols", "no-domain", "dotless-domain", "no-tld"])
def test_a_long_run_of_email_characters_is_scanned_in_linear_time(detector, run):
    text = run + " write to jane.doe@example.org"
    with fails_if_it_hangs():
        found = detector.find(text)
        scrubbed = detector.scrub(text)
    assert found == [("email", len(run) + 10, len(text))]
    assert scrubbed == run + " write to [EMAIL]"


def test_a_long_run_before_an_at_sign_is_one_email_local_part(detector):
    text = "x" * MB + "@example.org and"
    with fails_if_it_hangs():
        assert detector.find(text) == [("email", 0, len(text) - 4)]
        assert detector.scrub(text) == "[EMAIL] and"


def test_many_matches_ending_inside_one_long_run(detector):
    """Each card below ends inside one run of email local-part characters, where the scan goes
    on: the run is read once for an email, not once per card."""
    cards = "4111-1111-1111-1111-" * 50_000
    text = cards + " x@example.org"
    with fails_if_it_hangs():
        found = detector.find(text)
    assert len(found) == 50_001 and {kind for kind, _, _ in found[:-1]} == {"credit_card"}
    assert found[-1] == ("email", len(cards) + 1, len(text))


def test_every_kind_is_found_at_the_ends_of_a_long_text_and_next_to_long_runs(detector):
    middle = ("card 4111 1111 1111 1111, call (415) 555-2671, ssn 123-45-6789, "
              "IBAN DE89370400440532013000, MRN 12345, mail jane@example.org.")
    text = ("4111111111111111 " + "x" * MB + " " + middle + " " + "-" * MB + " " + "9" * MB
            + " +1 415-555-2671 ann@example.com")
    with fails_if_it_hangs():
        found = detector.find(text)
        scrubbed = detector.scrub(text)
    assert [kind for kind, _, _ in found] == [
        "credit_card", "credit_card", "phone", "us_ssn", "iban", "medical_record_number", "email",
        "phone", "email"]
    assert found[0] == ("credit_card", 0, 16) and found[-1] == ("email", len(text) - 15, len(text))
    assert scrubbed.startswith("[CREDIT_CARD] xxx") and scrubbed.endswith("999 [PHONE] [EMAIL]")
    assert ("[CREDIT_CARD], call [PHONE], ssn [US_SSN], IBAN [IBAN], [MEDICAL_RECORD_NUMBER], "
            "mail [EMAIL].") in scrubbed


@pytest.mark.parametrize("text, emails", [
    ("a@b.com%20c@d.org", [(0, 7), (7, 17)]),
    ("a@b.com_jane@example.org", [(0, 7), (7, 24)]),
    ("a@b.co1x@d.com", [(0, 6), (6, 14)]),
    ("a@b.co1a@b.co1a@b.co1", [(0, 6), (6, 13), (13, 20)]),
    ("x.y+z@example.co.uk", [(0, 19)]),
    ("a@b.c foo@bar @example.com a@@b.com", []),
    ("a@b.com_иван@пример.рф", [(0, 7), (7, 22)]),
    ("jane＠example.com%20ü@bücher.de", [(0, 16), (16, 30)]),
])
def test_emails_are_found_where_the_pattern_as_written_finds_them(detector, text, emails):
    """The email pattern runs anchored at the start of a run of local-part characters; an email
    starting inside a run, right where the previous one ended, is still found."""
    assert [m.span() for m in re.finditer(BUILTIN_PATTERNS["email"], text)] == emails
    assert [(start, end) for kind, start, end in detector.find(text) if kind == "email"] == emails


@pytest.mark.parametrize("text, found", [
    ("card 4111 1111 1111 1111x@d.com", [("credit_card", 5, 24), ("email", 24, 31)]),
    ("MRN 12345.x@d.com", [("medical_record_number", 0, 9), ("email", 9, 17)]),
    ("call (415) 555-2671-x@d.com", [("phone", 5, 19), ("email", 19, 27)]),
    ("IBAN DE89370400440532013000.x@d.com", [("email", 5, 35)]),
])
def test_an_email_right_after_another_kind_inside_one_run(detector, text, found):
    assert detector.find(text) == found


def test_a_replaced_email_pattern_is_used_as_given():
    detector = PIIDetector({"email": r"\b\w+ at \w+ dot com\b"})
    assert detector.kinds("mail jane at example dot com") == ("email",)
    assert detector.kinds("mail jane@example.com") == ()


@pytest.mark.parametrize("text, kind", [
    ("card 4111\u00a01111\u00a01111\u00a01111 please", "credit_card"),  # no-break spaces, as PDF and HTML pastes have
    ("card 4111\u202f1111\u202f1111\u202f1111 please", "credit_card"),
    ("call me on +44\u00a020\u00a07946\u00a00958 today", "phone"),
])
def test_numbers_written_with_no_break_spaces_are_found_and_scrubbed(text, kind):
    detector = PIIDetector()
    assert detector.kinds(text) == (kind,)
    assert f"[{kind.upper()}]" in detector.scrub(text) and "4111" not in detector.scrub(text)


# -- formats written other ways ------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, pii", [
    ("iban de89 3704 0044 0532 0130 00 please", "iban", "de89 3704 0044 0532 0130 00"),
    ("ref gb82west12345698765432", "iban", "gb82west12345698765432"),
    ("IBAN Gb82 West 1234 5698 7654 32.", "iban", "Gb82 West 1234 5698 7654 32"),
    ("écrire à иван@пример.рф demain", "email", "иван@пример.рф"),
    ("mail user@bücher.de now", "email", "user@bücher.de"),
    ("mail 张三@例子.中国 now", "email", "张三@例子.中国"),
    ("mail user@xn--e1afmkfd.xn--p1ai now", "email", "user@xn--e1afmkfd.xn--p1ai"),  # punycode, to its end
    ("mail jane＠example.com now", "email", "jane＠example.com"),  # full-width at sign
    ("mail jane﹫example.com now", "email", "jane﹫example.com"),  # small at sign
    ("appelez le 06 12 34 56 78 demain", "phone", "06 12 34 56 78"),
    ("tél. 01.23.45.67.89", "phone", "01.23.45.67.89"),
    ("fax 04-91-12-34-56", "phone", "04-91-12-34-56"),
    ("tél 06\u202f12\u202f34\u202f56\u202f78", "phone", "06\u202f12\u202f34\u202f56\u202f78"),
    ("call +33 6 12 34 56 78 today", "phone", "+33 6 12 34 56 78"),
    ("call +33 (0)6 12 34 56 78 today", "phone", "+33 (0)6 12 34 56 78"),
    ("my ssn is 123 45 6789.", "us_ssn", "123 45 6789"),
    ("ssn 123\u00a045\u00a06789", "us_ssn", "123\u00a045\u00a06789"),
])
def test_pii_written_other_ways_is_found_and_scrubbed(detector, text, kind, pii):
    start = text.index(pii)
    assert detector.find(text) == [(kind, start, start + len(pii))]
    assert detector.scrub(text) == text.replace(pii, f"[{kind.upper()}]")


def test_a_lowercase_iban_must_pass_the_mod97_check_too(detector):
    assert detector.kinds("ref gb82west12345698765432") == ("iban",)
    assert detector.kinds("ref gb83west12345698765432") == ()


@pytest.mark.parametrize("text, found", [
    ("iban de89 3704 0044 0532 0130 00 and more", [("iban", 5, 32)]),
    ("IBAN DE89370400440532013000 BIC COBADEFFXXX", [("iban", 5, 27)]),
    ("to BE68 5390 0754 7034 4111 1111 1111 1111", [("iban", 3, 22), ("credit_card", 23, 42)]),
])
def test_an_iban_ends_where_its_check_digits_say_and_what_follows_is_scanned(detector, text, found):
    """The pattern takes short words after an IBAN for more groups of it; the IBAN is the longest
    part of that which passes the check, and the rest is scanned for other kinds."""
    assert detector.find(text) == found


def test_an_ssn_written_with_spaces_keeps_the_invalid_ranges_out(detector):
    assert detector.kinds("ssn 123 45 6789") == ("us_ssn",)
    for invalid in ["000 12 3456", "666 12 3456", "900 12 3456", "123 00 4567", "123 45 0000", "123 45 67890"]:
        assert detector.kinds(f"ssn {invalid}") == (), invalid


@pytest.mark.parametrize("text, scrubbed", [
    ("メールはa@b.comです", "メールは[EMAIL]です"),
    ("明日の会議の資料をtaro@example.jpに送ってください", "明日の会議の資料を[EMAIL]に送ってください"),
    ("ส่งไปที่somchai@example.co.thครับ", "ส่งไปที่[EMAIL]ครับ"),
    ("请发到wang.li@example.cn谢谢", "请发到[EMAIL]谢谢"),
    ("mail 张三@例子.中国 now", "mail [EMAIL] now"),  # an address wholly in Han stays one
])
def test_text_run_into_an_address_in_a_script_without_spaces_is_not_scrubbed_with_it(detector, text, scrubbed):
    assert detector.scrub(text) == scrubbed


@pytest.mark.parametrize("text, kinds", [
    ("room 101 22 3333 is free", ()),
    ("sales 100 25 1999 and 300 40 2001", ()),
    ("scores 123 45 6789", ()),
    ("SSN 078 05 1120", ("us_ssn",)),
    ("her Social Security number: 078 05 1120", ("us_ssn",)),
    ("SS# 078 05 1120", ("us_ssn",)),
    ("no name needed with hyphens: 078-05-1120", ("us_ssn",)),
])
def test_three_two_four_digits_with_spaces_are_an_ssn_only_where_one_is_named(detector, text, kinds):
    assert detector.kinds(text) == kinds


@pytest.mark.parametrize("run", [
    "я" * MB,
    "＠" * MB,
    "a＠" * (MB // 2),
    "über." * (MB // 5),
    "de89 " * (MB // 5),
    "06 " * (MB // 3),
    "+33 (0)" * (MB // 7),
    "123 45 " * (MB // 7),
], ids=["cyrillic", "full-width-at", "a-full-width-at", "accented-dots", "iban-heads", "pairs", "french-prefix",
        "ssn-heads"])
def test_long_runs_of_the_other_ways_are_scanned_in_linear_time(detector, run):
    text = run + " écrire à иван@пример.рф"
    with fails_if_it_hangs():
        found = detector.find(text)
    assert found == [("email", len(text) - 14, len(text))]
