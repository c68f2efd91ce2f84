"""Errors the connector raises, each worded so the user knows what to change.

They never carry credentials: messages name files and identities, never key contents.
"""

from __future__ import annotations


class Ga4Error(Exception):
    """Base class: something about a GA4 request the user has to act on."""


class PropertyIdError(Ga4Error, ValueError):
    """The property id is not a GA4 property id."""


class CredentialsError(Ga4Error):
    """The key file or Application Default Credentials cannot be used."""


class FieldError(Ga4Error, ValueError):
    """A requested dimension or metric does not exist on the property or cannot be combined."""


class PermissionDeniedError(Ga4Error):
    """The identity has no access to the property."""


class QuotaExhaustedError(Ga4Error):
    """A GA4 token quota ran out; the run stops and the next one resumes.

    `budget` is "daily" or "hourly": which of the property's token budgets stopped it, or
    "concurrent" when GA kept refusing because too many requests were in flight.
    """

    def __init__(self, message: str, *, budget: str = "daily") -> None:
        super().__init__(message)
        self.budget = budget


class ReportIncompleteError(Ga4Error):
    """GA kept answering with fewer rows than it said the report has."""


class EndpointUnreachableError(Ga4Error):
    """No GA4 Data API could be reached: nothing listens, or it speaks the other transport."""
