"""Fixed exchange rates, so ``currencyCode`` conversion is repeatable in tests.

GA converts revenue with the day's rate; the emulator uses one rate per currency for all days,
which keeps expected values computable by hand. Rates are units of the currency per US dollar,
rounded, as they stood in early 2025; they are not meant to be current.
"""

from __future__ import annotations

from decimal import Decimal

from connectors.emulator.errors import invalid_argument

UNITS_PER_USD: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "JPY": Decimal("150"),
    "CHF": Decimal("0.88"),
    "CAD": Decimal("1.36"),
    "AUD": Decimal("1.52"),
    "SEK": Decimal("10.5"),
}
# Nine places keep a cross rate such as EUR -> JPY exact to well below a cent on any order.
_RATE_PLACES = Decimal("0.000000001")


def conversion_rate(source: str, target: str) -> Decimal:
    """What one unit of ``source`` is worth in ``target``; 1 when they are the same."""
    if source == target:
        return Decimal(1)
    if target not in UNITS_PER_USD:
        raise invalid_argument(
            f"currency_code {target!r} is not a currency the emulator converts to; "
            f"it knows {', '.join(sorted(UNITS_PER_USD))}."
        )
    if source not in UNITS_PER_USD:
        raise invalid_argument(
            f"The property reports in {source!r}, which the emulator cannot convert from."
        )
    return (UNITS_PER_USD[target] / UNITS_PER_USD[source]).quantize(_RATE_PLACES)


# Currencies without minor units; every other one here has cents.
_WHOLE_UNITS = frozenset({"JPY"})


def minor_digits(code: str) -> int:
    """Decimal places amounts in ``code`` carry (ISO 4217 minor units)."""
    return 0 if code in _WHOLE_UNITS else 2
