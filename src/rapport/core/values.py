"""Value types shared by every record: emails, phones (E.164), currencies, money, addresses, tags.

Each is an `Annotated` type for request schemas, so validation happens once, at the edge, with a
clear 422 naming the field.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from rapport.core.listing import has_control_characters

MAX_TAGS = 50
MAX_TAG_LENGTH = 50
DEFAULT_PHONE_REGION = "US"
MINOR_UNITS_MAX = 10**15  # a quadrillion minor units: beyond any plausible amount, inside BIGINT


# The everyday address (ASCII letters, digits and "_+-" in dot-separated runs before the @, a
# plain host name with a letters-only top-level label after it) is settled by one pattern, in
# about 2 µs; email_validator (about 110 µs an address, most of a bulk write's validation) decides
# every other. For the addresses the pattern takes it would give the same verdict and the same
# normalised form (tests/core/test_values.py holds the two together).
_PLAIN_EMAIL = re.compile(
    r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


def plain_email(value: str) -> str | None:
    """The normalised form of an everyday address, or None when email_validator must decide."""
    if len(value) > 254:
        return None
    match = _PLAIN_EMAIL.fullmatch(value)
    if match is None or len(match[1]) > 64 or len(match[2]) > 253 or "--" in match[2]:
        return None  # long parts and R-LDH/Punycode labels have rules of their own
    domain = match[2].lower()
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if domain == special or domain.endswith("." + special):
            return None
    return value.lower()


def normalise_email(value: str) -> str:
    plain = plain_email(value)
    if plain is not None:
        return plain
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return info.normalized.lower()


# A North American number written the everyday way ("(979) 236-1958", "979-236-1958",
# "979.236.1958", "9792361958", or any of them after "+1", as in "+19792361958"), area code not
# starting with 0 or 1, in the default region: its E.164 form is "+1" and its ten digits, which
# is what phonenumbers (about 50 µs a number) makes of it. Every other number goes to
# phonenumbers (tests/core/test_values.py holds them together).
_PLAIN_US_PHONE = re.compile(
    r"(?:\+1[ .-]?)?(?:\(([2-9]\d\d)\) ?|([2-9]\d\d)[ .-]?)(\d{3})[ .-]?(\d{4})"
)


def phone_e164(raw: str | None, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """The E.164 form of a phone number as typed ("(979) 236-1958" → "+19792361958")."""
    if raw is None or not raw.strip():
        return None
    if region == "US":
        match = _PLAIN_US_PHONE.fullmatch(raw)
        if match is not None:
            return "+1" + (match[1] or match[2]) + match[3] + match[4]
    return _e164(raw, region)


@functools.lru_cache(maxsize=4096)
def _e164(raw: str, region: str) -> str:
    # Remembered: a body's phone is parsed when it is validated and again when it is stored
    # (parsing costs about 50 µs); a bulk write of 1000 rows keeps every one of its own.
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("is not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError("is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_phone(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    phone_e164(value)  # raises ValueError for nonsense; the raw input is what we keep
    return value


def _no_control(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("contains control characters")
    return value


def _multiline(value: str) -> str:
    if has_control_characters(value.replace("\n", "").replace("\r", "").replace("\t", "")):
        raise ValueError("contains control characters")
    return value


def _tags(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    seen: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise ValueError("tags are strings")
        tag = item.strip()
        if not tag or len(tag) > MAX_TAG_LENGTH or has_control_characters(tag):
            raise ValueError(f"each tag is 1 to {MAX_TAG_LENGTH} printable characters")
        seen.setdefault(tag, None)
    if len(seen) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return list(seen)


def _currency(value: str) -> str:
    upper = value.upper()
    if len(upper) != 3 or not upper.isalpha():
        raise ValueError("is an ISO 4217 code such as USD or EUR")
    return upper


Text = Annotated[str, AfterValidator(_no_control)]  # one line: names, titles, labels
LongText = Annotated[str, AfterValidator(_multiline)]  # may span lines: notes, bodies
Email = Annotated[
    str, Field(max_length=320, examples=["ada@example.com"]), AfterValidator(normalise_email)
]
Phone = Annotated[
    str | None, Field(max_length=50, examples=["+1 (979) 236-1958"]), AfterValidator(_check_phone)
]
Currency = Annotated[
    str, Field(min_length=3, max_length=3, examples=["USD"]), AfterValidator(_currency)
]
MinorUnits = Annotated[
    int,
    Field(
        ge=0, le=MINOR_UNITS_MAX, description="Amount in minor units (cents).", examples=[125000]
    ),
]
Tags = Annotated[
    list[str], BeforeValidator(_tags), Field(max_length=MAX_TAGS, examples=[["vip", "emea"]])
]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    line1: Text | None = Field(None, max_length=200)
    line2: Text | None = Field(None, max_length=200)
    city: Text | None = Field(None, max_length=100)
    state: Text | None = Field(None, max_length=100)
    postal_code: Text | None = Field(None, max_length=20)
    country: Text | None = Field(None, max_length=100)
    region: Text | None = Field(None, max_length=100)
