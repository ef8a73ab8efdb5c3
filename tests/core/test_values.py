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
