"""Value types: the everyday-address pattern agrees with email_validator wherever it decides."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.core.values import normalise_email, plain_email


def library(value: str) -> str | None:
    """What email_validator alone makes of an address (None: refused)."""
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


EDGES = [
    "Ada.Lovelace+crm@Mail.Example.COM",
    "a@b.co",
    "a_b-c@d-e.org",
    "a@b.test",
    "a@b.local",
    "a@localhost",
    "a@b.localhost",
    "a@x.onion",
    "a@1.in-addr.arpa",
    "a@b.invalid",
    "a@ab--cd.com",
    "a@xn--80ak6aa92e.com",
    "a@b.xn--p1ai",
    ".a@b.com",
    "a.@b.com",
    "a..b@c.com",
    "a@-b.com",
    "a@b-.com",
    "a@b..com",
    "a@b.c1",
    "a@b.c",
    "a@b",
    "@b.com",
    "a@",
    "a b@c.com",
    " a@b.com",
    "a@b.com ",
    "a@b.com\n",
    '"a"@b.com',
    "a@[127.0.0.1]",
    "ü@b.com",
    "a@bü.com",
    "x" * 64 + "@b.com",
    "x" * 65 + "@b.com",
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["b" * 60] * 4) + ".com",
    "a@" + ".".join(["b" * 50] * 5) + ".co",
]


@pytest.mark.parametrize("value", EDGES)
def test_the_pattern_decides_only_what_the_library_would_decide_alike(value):
    plain = plain_email(value)
    if plain is not None:
        assert plain == library(value)
    assert (normalise_email(value) if library(value) is not None else None) == library(value)


def test_everyday_addresses_take_the_pattern():
    assert plain_email("Ada.Lovelace+crm@Mail.Example.COM") == "ada.lovelace+crm@mail.example.com"
    assert plain_email("bulk-1a2b3c-17@bench.example.com") == "bulk-1a2b3c-17@bench.example.com"
    assert plain_email("a@b.test") is None  # special-use: the library refuses it
    assert plain_email("ü@b.com") is None  # not ASCII: the library normalises it


def test_refused_addresses_are_still_refused():
    for value in ("a@b.test", "a..b@c.com", "a@b", "a@-b.com"):
        with pytest.raises(ValueError):
            normalise_email(value)


LOCAL = st.text(alphabet="aZ09._+-!'ü", min_size=0, max_size=70)
LABEL = st.text(alphabet="aZ09-x", min_size=0, max_size=66)
TLD = st.one_of(
    st.sampled_from(["com", "COM", "test", "local", "localhost", "arpa", "c", "c1", "xn--p1ai"]),
    st.text(alphabet="aZ09-", min_size=0, max_size=64),
)


@settings(max_examples=3000, deadline=None)
@given(LOCAL, st.lists(LABEL, min_size=0, max_size=5), TLD)
def test_generated_addresses_get_the_libraries_verdict(local, labels, tld):
    value = f"{local}@{'.'.join([*labels, tld])}"
    plain = plain_email(value)
    if plain is not None:
        assert plain == library(value)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet='ab.-_+@ü "', max_size=40))
def test_any_text_gets_the_libraries_verdict(value):
    plain = plain_email(value)
    if plain is not None:
        assert plain == library(value)


PHONE_FORMATS = ["({a}) {b}-{c}", "({a}){b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a} {b} {c}",
                 "{a}{b}{c}", "{a}{b}-{c}", "1 {a} {b} {c}", "+1 {a} {b} {c}", "({a} {b}-{c}",
                 "{a}) {b}-{c}", " {a}-{b}-{c}", "{a}-{b}-{c} ", "{a}-{b}-{c} x12",
                 "+1{a}{b}{c}", "+1-{a}-{b}-{c}", "+1.{a}.{b}.{c}", "+1 ({a}) {b}-{c}",
                 "+1({a}){b}{c}", "+11{a}{b}{c}", "+1  {a} {b} {c}", "+ 1 {a} {b} {c}"]  # fmt: skip


def phone_library(raw: str) -> str | None:
    """What phonenumbers alone makes of a number in the default region (None: refused)."""
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def assert_library_form(raw: str) -> None:
    """phone_e164 gives what phonenumbers gives, and refuses what it refuses."""
    from rapport.core.values import phone_e164

    expected = phone_library(raw)
    if expected is None:
        with pytest.raises(ValueError):
            phone_e164(raw)
    else:
        assert phone_e164(raw) == expected


PHONE_EDGES = [
    "(011) 234-5678", "011-234-5678", "0112345678", "011.234.5678", "1 979 236 1958",
    "+1 979 236 1958", "(179) 123 4567", "0234567890", "(979) 236-19580", "979-236-195",
    "(979)-236-1958", "979--236-1958", "(979) 236 - 1958", "+44 20 7946 0958",
    "+1 011 234 5678", "+10112345678", "+1 179 123 4567", "+1979236195", "+197923619580",
]  # fmt: skip


@pytest.mark.parametrize("raw", PHONE_EDGES)
def test_edge_numbers_get_the_libraries_form(raw):
    assert_library_form(raw)


def test_everyday_us_numbers_take_the_pattern(monkeypatch):
    from rapport.core import values

    def no_library(raw, region):  # noqa: ANN001
        raise AssertionError("parsed by phonenumbers")

    monkeypatch.setattr(values, "_e164", no_library)
    assert values.phone_e164("(979) 236-1958") == "+19792361958"
    assert values.phone_e164("979.236.1958") == "+19792361958"
    assert values.phone_e164("+19792361958") == "+19792361958"


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(PHONE_FORMATS),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
)
def test_generated_numbers_get_the_libraries_form(template, a, b, c):
    assert_library_form(template.format(a=a, b=b, c=c))


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789()-. +x", max_size=16))
def test_any_digits_get_the_libraries_form(raw):
    if raw.strip():
        assert_library_form(raw)
