"""The one error tree of dmr.

    DmrError
    ├── ConfigError (ValueError)          a bad option, dmr.yaml key or threshold
    │   └── NotAvailableError             an option whose capability is not built or not installed
    ├── RegistryError (LookupError)       the model registry cannot answer
    │   ├── UnknownProviderError (KeyError)
    │   ├── UnknownModelError (KeyError)
    │   └── RegistryFormatError (ValueError)
    ├── ProviderError                     a Layer 2 provider failed (network, status, bad answer)
    ├── BudgetExceededError               the spend cap was reached and the policy says stop
    ├── PolicyError                       a policy refused the task
    │   ├── PIIBlockedError               PII found and ``pii_policy={"block": True}``
    │   └── ResidencyError                no model satisfies the residency constraint
    └── InputError (ValueError)           the task itself is unusable (empty, wrong type)
        └── InputTypeError (TypeError)

Every class carries a human message; none wraps a vendor SDK's exception type, so callers never
need a provider SDK installed to catch dmr's errors.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "ConfigError",
    "DmrError",
    "InputError",
    "InputTypeError",
    "NotAvailableError",
    "PIIBlockedError",
    "PolicyError",
    "ProviderError",
    "RegistryError",
    "RegistryFormatError",
    "ResidencyError",
    "UnknownModelError",
    "UnknownProviderError",
]


class DmrError(Exception):
    """Root of every error dmr raises on purpose."""


class ConfigError(DmrError, ValueError):
    """A configuration value is invalid. ``problems`` lists every ``(path, message)`` found."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = list(problems or [])


class NotAvailableError(ConfigError):
    """An option names a capability that this build or this environment does not provide."""


class RegistryError(DmrError, LookupError):
    """The model registry cannot answer the question asked of it."""


class UnknownProviderError(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownModelError(RegistryError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RegistryFormatError(RegistryError, ValueError):
    """A registry file does not match the registry schema."""


class ProviderError(DmrError):
    """A Layer 2 provider call failed."""


class BudgetExceededError(DmrError):
    """The configured spend cap was reached."""


class PolicyError(DmrError):
    """A routing policy refused the task."""


class PIIBlockedError(PolicyError):
    """The task contains personal data and the PII policy blocks such tasks."""

    def __init__(self, message: str, kinds: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kinds = kinds


class ResidencyError(PolicyError):
    """No registered model satisfies the requested data residency."""


class InputError(DmrError, ValueError):
    """The task cannot be classified as given (empty, whitespace only, unusable)."""


class InputTypeError(InputError, TypeError):
    """The task is not text."""
