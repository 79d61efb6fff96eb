"""Prices and currencies as shops write them, in any notation.

price-parser reads the amount and the currency symbol from free text ("1.299,-- €" with its dash,
"CHF 1'299.00", "ab 9,95 €"). Where the text alone is ambiguous ("1.299 €" is 1299 in
Germany and 1.299 nowhere else that sells rockets; "1,299" the reverse) the vendor's
hint decides: its ``decimal_separator``, else the one of its ``locale`` (CLDR, via
Babel). Symbols become ISO 4217 codes; a bare ``$`` is the vendor's own dollar when
its currency is one.

Structured data (schema.org, Shopify, WooCommerce) writes machine numbers
("1299.00"): :func:`parse_price` reads those as they are, never through a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import get_decimal_symbol
from price_parser import Price

_MACHINE_NUMBER = re.compile(r"^\s*[-+]?\d+(\.\d+)?\s*$")
# one separator followed by exactly three digits and nothing else: a group or a decimal?
_AMBIGUOUS = re.compile(r"^\d{1,3}[.,]\d{3}$")
_CODE = re.compile(r"^[A-Z]{3}$")
_SYMBOLS = {
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "￥": "JPY",
    "円": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "zł": "PLN",
    "kr": "SEK",
    "Kč": "CZK",
    "Fr.": "CHF",
    "SFr.": "CHF",
    "R$": "BRL",
    "US$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
}
_DOLLARS = frozenset({"USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN"})


@dataclass(frozen=True)
class PriceHint:
    """What the vendor's registry entry says about how its prices are written."""

    decimal_separator: str | None = None
    currency: str | None = None  # the vendor's ISO code

    @classmethod
    def of(
        cls,
        locale: str | None = None,
        decimal_separator: str | None = None,
        currency: str | None = None,
    ) -> PriceHint:
        return cls(decimal_separator or locale_decimal_separator(locale), currency)


NO_HINT = PriceHint()


@lru_cache(maxsize=64)
def locale_decimal_separator(locale: str | None) -> str | None:
    """The decimal symbol of a locale such as ``de-DE`` or ``de_CH`` (None when unknown)."""
    if not locale:
        return None
    try:
        return get_decimal_symbol(Locale.parse(locale.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        return None


def valid_locale(locale: str) -> bool:
    return locale_decimal_separator(locale) is not None


@dataclass(frozen=True)
class ParsedPrice:
    amount: Decimal | None
    currency: str | None


def parse_price_text(text: object, hint: PriceHint = NO_HINT) -> ParsedPrice:
    """Amount and ISO currency of a price as a shop displays it."""
    if text is None or isinstance(text, bool):
        return ParsedPrice(None, None)
    if isinstance(text, int | float | Decimal):
        return ParsedPrice(Decimal(str(text)), None)
    raw = str(text)
    price = Price.fromstring(raw)
    amount = price.amount
    if hint.decimal_separator and price.amount_text and _AMBIGUOUS.match(price.amount_text.strip()):
        amount = Price.fromstring(raw, decimal_separator=hint.decimal_separator).amount
    return ParsedPrice(amount, currency_code(price.currency, hint.currency))


def parse_price(value: object, hint: PriceHint = NO_HINT) -> float | None:
    """A number from structured data (``"1299.00"``, ``12``) or display text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _MACHINE_NUMBER.match(value):
        try:
            return float(Decimal(value.strip()))
        except InvalidOperation:
            return None
    amount = parse_price_text(value, hint).amount
    return float(amount) if amount is not None else None


def currency_code(symbol: str | None, vendor_currency: str | None = None) -> str | None:
    """ISO 4217 code for a currency as written (``€``, ``CHF``, ``US$``, ``$``)."""
    if not symbol:
        return None
    text = symbol.strip()
    if _CODE.match(text.upper()) and text.isalpha():
        return text.upper()
    if text == "$":
        return vendor_currency if vendor_currency in _DOLLARS else "USD"
    return _SYMBOLS.get(text)


def minor_units(value: object, minor_unit: object) -> float | None:
    """An amount given in minor units (``"129900"`` with ``2`` -> 1299.0), as WooCommerce does."""
    try:
        units = int(str(value))
        exponent = int(str(minor_unit)) if minor_unit not in (None, "") else 2
    except ValueError:
        return None
    if not 0 <= exponent <= 4:
        return None
    return float(Decimal(units).scaleb(-exponent))
