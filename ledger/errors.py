"""The one base error of the core; every subclass carries a message an operator can act on."""


class LedgerError(ValueError):
    """Raised for any input the core rejects. The message names what was wrong."""


class InvalidCode(LedgerError):
    """An agency code or record type that cannot be a short on-chain code."""


class InvalidAgencyName(LedgerError):
    """An agency name the registry must not be given (empty, too long, or holding a character
    canonical text may not hold)."""
