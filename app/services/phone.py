"""Mobile numbers are stored in E.164 so any spelling of a number finds the same patient."""

from __future__ import annotations

import phonenumbers

from app.errors import InvalidInput


def normalise_mobile(raw: str, default_region: str | None, field: str = "mobile_number") -> str:
    text = raw.strip()
    if default_region is None and text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and default_region is None:
        raise InvalidInput(
            field, "include the country code (e.g. +14155550123); no default region is set"
        )
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(field, f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(field, "not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
