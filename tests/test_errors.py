"""The one error tree: every error is a DmrError, and the standard bases callers rely on."""

from __future__ import annotations

import inspect

import pytest

import dmr
from dmr import errors
from dmr.errors import (
    ConfigError,
    DmrError,
    InputError,
    InputTypeError,
    NotAvailableError,
    PIIBlockedError,
    PolicyError,
    RegistryError,
    RegistryFormatError,
    ResidencyError,
    UnknownModelError,
    UnknownProviderError,
)

ALL_ERRORS = [getattr(errors, name) for name in errors.__all__]


def test_all_lists_every_exception_class_in_the_module():
    defined = {name for name, obj in vars(errors).items()
               if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__}
    assert defined == set(errors.__all__)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_derives_from_dmr_error(cls):
    assert issubclass(cls, DmrError)


@pytest.mark.parametrize("cls, bases", [
    (ConfigError, (ValueError,)),
    (NotAvailableError, (ConfigError, ValueError)),
    (RegistryError, (LookupError,)),
    (UnknownProviderError, (RegistryError, KeyError)),
    (UnknownModelError, (RegistryError, KeyError)),
    (RegistryFormatError, (RegistryError, ValueError)),
    (PIIBlockedError, (PolicyError,)),
    (ResidencyError, (PolicyError,)),
    (InputError, (ValueError,)),
    (InputTypeError, (InputError, TypeError, ValueError)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_standard_bases(cls, bases):
    for base in bases:
        assert issubclass(cls, base)


def test_config_error_is_caught_as_value_error_and_keeps_its_problems():
    with pytest.raises(ValueError) as caught:
        raise ConfigError("two problems", [("a.b", "bad"), ("c", "worse")])
    assert caught.value.problems == [("a.b", "bad"), ("c", "worse")]
    assert str(caught.value) == "two problems"
    assert ConfigError("no list").problems == []


def test_input_type_error_is_caught_as_type_error():
    with pytest.raises(TypeError):
        raise InputTypeError("not text")


@pytest.mark.parametrize("cls", [UnknownProviderError, UnknownModelError])
def test_unknown_errors_are_key_errors_with_an_unquoted_message(cls):
    error = cls("unknown provider 'x' (registered: a, b)")
    assert isinstance(error, KeyError)
    assert str(error) == "unknown provider 'x' (registered: a, b)"  # KeyError alone would add quotes
    assert str(cls()) == ""
    with pytest.raises(KeyError):
        raise error


def test_pii_blocked_error_carries_the_kinds():
    error = PIIBlockedError("blocked", ("email", "iban"))
    assert error.kinds == ("email", "iban")
    assert PIIBlockedError("blocked").kinds == ()


def test_the_package_exports_the_commonly_caught_errors():
    for name in ("DmrError", "ConfigError", "NotAvailableError", "InputError", "RegistryError", "PolicyError"):
        assert getattr(dmr, name) is getattr(errors, name)
