"""GetMetadata answers built from the shared GA field list.

The emulator lists every field GA listed in 2026, not only those it computes, because clients
validate requests against metadata; the description says which ones the emulator computes.
"""

from __future__ import annotations

import re

from google.analytics.data_v1beta.types import (
    DimensionMetadata,
    Metadata,
    MetricMetadata,
    MetricType,
)

from connectors.emulator.fields import DIMENSIONS, METRICS
from connectors.ga4_fields import STANDARD_FIELDS

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_ACRONYMS = {"id": "ID", "cm360": "CM360", "dv360": "DV360", "sa360": "SA360", "url": "URL"}


def ui_name(api_name: str) -> str:
    """A readable label from a camelCase API name: ``firstUserSourceMedium`` ->
    ``First user source / medium``."""
    words = [word.lower() for word in _WORD.findall(api_name)]
    merged: list[str] = []
    for word in words:
        # Digits belong to the word before them ("cm" + "360"), as in GA's own labels.
        if word.isdigit() and merged and merged[-1] in ("cm", "dv", "sa"):
            merged[-1] += word
        else:
            merged.append(word)
    text = " ".join(_ACRONYMS.get(word, word) for word in merged)
    text = text.replace("source medium", "source / medium")
    return text[:1].upper() + text[1:]


def _description(kind: str, api_name: str, category: str) -> str:
    computed = api_name in (DIMENSIONS if kind == "dimension" else METRICS)
    served = "computed by the emulator" if computed else "listed but not computed by the emulator"
    return f"{ui_name(api_name)}, a {category} {kind}; {served}."


def build_metadata(property_id: str) -> Metadata:
    """The metadata resource ``properties/{property_id}/metadata``."""
    dimensions = []
    metrics = []
    for info in STANDARD_FIELDS.values():
        if not info.listed_2026:
            continue
        common = {
            "api_name": info.api_name,
            "ui_name": ui_name(info.api_name),
            "description": _description(info.kind, info.api_name, info.category),
            "deprecated_api_names": list(info.deprecated_api_names),
            "category": info.category,
        }
        if info.kind == "dimension":
            dimensions.append(DimensionMetadata(**common))
        else:
            metrics.append(MetricMetadata(**common, type_=MetricType[info.metric_type]))
    return Metadata(
        name=f"properties/{property_id}/metadata", dimensions=dimensions, metrics=metrics
    )
