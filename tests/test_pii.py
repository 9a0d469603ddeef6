"""PII detection: built-in kinds, checksums, false positives, extra patterns and scrubbing."""

from __future__ import annotations

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
    detector = PIIDetector({"employee_id": r"(?i)emp-\d{5}"})
    assert detector.kinds("by EMP-12345") == ("employee_id",)
    assert detector.kinds("by emp-54321") == ("employee_id",)
    # The flag stays scoped to that pattern: the case-sensitive IBAN pattern still ignores lower case.
    assert detector.kinds("ref gb82west12345698765432") == ()


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
