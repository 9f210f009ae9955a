"""Normalisation and diff of customer profiles (fraudshop.model.profiles): a formatting edit of the
email, phone or address is no change, a real edit of any of them is one, the first profile is a
baseline, and account changes are recorded on the accounts the customer holds after the update.

Phone numbers are ones phonenumbers calls valid: London 020 7946 0xxx (Ofcom's drama range),
US 650 253 0000, and the FR/IT example fixed lines 01 23 45 67 89 and 02 1234 5678."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudshop.model.changes import ChangeType, InvalidField, ProfileChange, checked_change_time
from fraudshop.model.profiles import (
    CustomerProfile,
    PostalAddress,
    address_words,
    changed_fields,
    country_code,
    normalised_email,
    normalised_phone,
    profile_changes,
)

CHANGED_AT = datetime(2026, 11, 29, 2, 30, 15, 123456, tzinfo=UTC)
#: CHANGED_AT as Cassandra keeps it (millisecond precision).
CHANGED_AT_MS = datetime(2026, 11, 29, 2, 30, 15, 123000, tzinfo=UTC)

ALICE: dict[str, Any] = {
    "customer_id": "CUST-ALICE",
    "email": "alice@example.com",
    "phone": "020 7946 0018",
    "address_lines": ["Flat 2", "12 High Street"],
    "city": "London",
    "postcode": "SW1A 1AA",
    "country": "GB",
    "accounts": ["ACC-1"],
}


def alice(**overrides: Any) -> CustomerProfile:
    """Alice's profile parsed from the base fields with ``overrides`` (CustomerProfile.parse's names)."""
    return CustomerProfile.parse(**{**ALICE, **overrides})


def address(
    lines: Sequence[str] = ("Flat 2", "12 High Street"),
    city: str = "London",
    postcode: str = "SW1A 1AA",
    country: str = "GB",
) -> PostalAddress:
    return PostalAddress.parse(lines, city, postcode, country)


def field_of(error: pytest.ExceptionInfo[InvalidField]) -> str:
    return error.value.field


# --- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  alice@example.com  ", "alice@example.com"),
        ("\talice@example.com\n", "alice@example.com"),
        ("alice@EXAMPLE.COM", "alice@example.com"),
        ("alice@Example.Com", "alice@example.com"),
        (" alice@Sub.Example.CO.UK ", "alice@sub.example.co.uk"),
        # The local part keeps its case: only the domain is folded.
        ("Alice@Example.COM", "Alice@example.com"),
        # IDN: Unicode, upper case and punycode (ACE) forms of one domain are one address.
        ("alice@bücher.de", "alice@bücher.de"),
        ("alice@BÜCHER.DE", "alice@bücher.de"),
        ("alice@xn--bcher-kva.de", "alice@bücher.de"),
    ],
)
def test_email_is_normalised(raw: str, normalised: str) -> None:
    assert normalised_email(raw) == normalised


@pytest.mark.parametrize(
    ("stored", "edited"),
    [
        ("alice@example.com", " alice@example.com "),
        ("alice@example.com", "alice@EXAMPLE.com"),
        ("alice@example.com", "\n alice@Example.COM\t"),
        ("alice@bücher.de", "alice@xn--bcher-kva.de"),
        ("alice@bücher.de", "alice@BÜCHER.de"),
    ],
)
def test_email_formatting_edit_is_no_change(stored: str, edited: str) -> None:
    assert changed_fields(alice(email=stored), alice(email=edited)) == ()


@pytest.mark.parametrize(
    ("stored", "edited"),
    [
        # RFC 5321: the local part is case-sensitive, so a case edit of it is another address.
        ("alice@example.com", "Alice@example.com"),
        ("alice@example.com", "ALICE@example.com"),
        ("alice@example.com", "alice2@example.com"),
        ("alice@example.com", "alice+shop@example.com"),
        ("alice@example.com", "a.lice@example.com"),
        ("alice@example.com", "alice@example.org"),
        ("alice@example.com", "alice@mail.example.com"),
        ("alice@example.com", "mallory@attacker.example"),
    ],
)
def test_email_real_edit_is_a_change(stored: str, edited: str) -> None:
    assert changed_fields(alice(email=stored), alice(email=edited)) == (ChangeType.EMAIL,)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@@example.com",
        "alice@example",
        "alice@example.com.",
        "alice.@example.com",
        "a..lice@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        "alice@localhost",
        "alice@shop.test",  # a special-use domain (RFC 6761) can receive no mail
        "alice@example.com, bob@example.com",
    ],
)
def test_invalid_email_raises_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidField) as error:
        normalised_email(raw)
    assert field_of(error) == "email"
    assert repr(raw) in str(error.value)


_LOCAL_ATOM = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-", min_size=1, max_size=8)
_DOMAIN_LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@st.composite
def email_variants(draw: st.DrawFn) -> tuple[str, str]:
    """(the address as stored, the same address with surrounding whitespace and the domain in any case)."""
    local = ".".join(draw(st.lists(_LOCAL_ATOM, min_size=1, max_size=3)))
    labels = draw(st.lists(_DOMAIN_LABEL, min_size=1, max_size=3))
    domain = ".".join([*labels, draw(st.sampled_from(["com", "org", "net", "co.uk", "de", "io"]))])
    cased_domain = "".join(c.upper() if draw(st.booleans()) else c for c in domain)
    around = st.sampled_from(["", " ", "  ", "\t", "\n", " \t "])
    return f"{local}@{domain}", f"{draw(around)}{local}@{cased_domain}{draw(around)}"


@settings(deadline=None)
@given(email_variants())
def test_email_whitespace_and_domain_case_variants_normalise_alike(variant: tuple[str, str]) -> None:
    stored, edited = variant
    assert normalised_email(edited) == stored
    assert normalised_email(stored) == stored  # idempotent: a stored value normalises to itself


# --- phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        # GB: national and international formats of one London number.
        ("020 7946 0018", "GB", "+442079460018"),
        ("02079460018", "GB", "+442079460018"),
        ("+44 20 7946 0018", "GB", "+442079460018"),
        ("+442079460018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", "GB", "+442079460018"),
        ("0044 20 7946 0018", "GB", "+442079460018"),  # 00 is GB's international prefix
        ("(020) 7946 0018", "GB", "+442079460018"),
        ("020-7946-0018", "GB", "+442079460018"),
        ("020.7946.0018", "GB", "+442079460018"),
        ("  020   7946  0018 ", "GB", "+442079460018"),
        ("tel:+44-20-7946-0018", "GB", "+442079460018"),
        # US: national, with the trunk 1, international and 011 (the US international prefix).
        ("650 253 0000", "US", "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("650.253.0000", "US", "+16502530000"),
        ("650-253-0000", "US", "+16502530000"),
        ("1 650 253 0000", "US", "+16502530000"),
        ("+1 650-253-0000", "US", "+16502530000"),
        ("011 1 650 253 0000", "US", "+16502530000"),
        # A number written with + and a country code is read as written, whatever the address's country.
        ("+44 20 7946 0018", "US", "+442079460018"),
        ("+1 (650) 253-0000", "GB", "+16502530000"),
        ("001 650 253 0000", "GB", "+16502530000"),
        # A national number is read in the address's country: the same digits are another number elsewhere.
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("01 23 45 67 89", "IT", "+390123456789"),
        ("02 1234 5678", "IT", "+390212345678"),
        ("02 1234 5678", "AU", "+61212345678"),
    ],
)
def test_phone_is_normalised_to_e164(raw: str, region: str, e164: str) -> None:
    assert normalised_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("stored", "edited"),
    [
        ("020 7946 0018", "+44 20 7946 0018"),
        ("+44 20 7946 0018", "(020) 7946-0018"),
        ("020 7946 0018", "0044 20 7946 0018"),
        ("020 7946 0018", "020.7946.0018"),
        ("020 7946 0018 ext. 123", "+44 20 7946 0018 x123"),
    ],
)
def test_phone_format_edit_is_no_change(stored: str, edited: str) -> None:
    assert changed_fields(alice(phone=stored), alice(phone=edited)) == ()


def test_us_phone_format_edit_is_no_change() -> None:
    us = {"address_lines": ["1600 Amphitheatre Pkwy"], "city": "Mountain View", "postcode": "94043", "country": "US"}
    before = alice(phone="(650) 253-0000", **us)
    after = alice(phone="+1 650 253 0000", **us)
    assert before.phone == after.phone == "+16502530000"
    assert changed_fields(before, after) == ()


def test_same_national_digits_in_another_country_are_another_number() -> None:
    """Alice moves from Paris to Rome and re-enters her phone in national format: same digits, another number."""
    paris = alice(
        phone="01 23 45 67 89", address_lines=["1 Rue de Rivoli"], city="Paris", postcode="75001", country="FR"
    )
    rome = alice(phone="01 23 45 67 89", address_lines=["Via del Corso 1"], city="Roma", postcode="00186", country="IT")
    assert changed_fields(paris, rome) == (ChangeType.PHONE, ChangeType.ADDRESS)


def test_phone_in_international_format_survives_a_move() -> None:
    """Stored E.164 does not depend on the country, so moving house changes only the address."""
    london = alice(phone="+33 1 23 45 67 89")
    paris = alice(
        phone="+33 1 23 45 67 89", address_lines=["1 Rue de Rivoli"], city="Paris", postcode="75001", country="FR"
    )
    assert changed_fields(london, paris) == (ChangeType.ADDRESS,)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("020 7946 0018 ext. 123", "+442079460018;ext=123"),
        ("020 7946 0018 x123", "+442079460018;ext=123"),
        ("020 7946 0018 extension 123", "+442079460018;ext=123"),
        ("+44 20 7946 0018 #123", "+442079460018;ext=123"),
        ("tel:+44-20-7946-0018;ext=123", "+442079460018;ext=123"),
    ],
)
def test_extension_is_kept(raw: str, normalised: str) -> None:
    assert normalised_phone(raw, "GB") == normalised


@pytest.mark.parametrize(
    ("stored", "edited"),
    [
        ("020 7946 0018", "020 7946 0019"),
        ("020 7946 0018", "020 7946 0810"),
        ("020 7946 0018", "+1 650 253 0000"),
        ("020 7946 0018", "020 7946 0018 ext. 123"),  # an extension added
        ("020 7946 0018 ext. 123", "020 7946 0018"),  # an extension dropped
        ("020 7946 0018 ext. 123", "020 7946 0018 ext. 124"),  # another extension
    ],
)
def test_phone_real_edit_is_a_change(stored: str, edited: str) -> None:
    assert changed_fields(alice(phone=stored), alice(phone=edited)) == (ChangeType.PHONE,)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("", "GB"),
        ("   ", "GB"),
        ("not a number", "GB"),
        ("123", "GB"),
        ("020 7946", "GB"),
        ("020 7946 0018 0018", "GB"),
        ("07700 900123", "GB"),  # Ofcom's drama mobile range, which phonenumbers rejects
        ("650 253 0000", "GB"),  # a US number read in GB's plan
        ("020 7946 0018", "FR"),  # a London number read in FR's plan
        ("+44 650 253 0000", "GB"),
        ("+999 1234 5678", "GB"),  # no such country code
    ],
)
def test_invalid_phone_raises_naming_the_field(raw: str, region: str) -> None:
    with pytest.raises(InvalidField) as error:
        normalised_phone(raw, region)
    assert field_of(error) == "phone"
    assert repr(raw) in str(error.value)


def test_invalid_phone_in_a_profile_names_the_phone() -> None:
    """The phone is read in the address's country, so a US national number with a GB address is invalid."""
    with pytest.raises(InvalidField) as error:
        alice(phone="650 253 0000")
    assert field_of(error) == "phone"


@st.composite
def london_number_variants(draw: st.DrawFn) -> tuple[str, str]:
    """(E.164 of a London drama number, that number written in some format with some separators)."""
    subscriber = f"{draw(st.integers(0, 999)):03d}"
    e164 = f"+442079460{subscriber}"
    groups = draw(
        st.sampled_from(
            [
                ["020", "7946", f"0{subscriber}"],
                ["(020)", "7946", f"0{subscriber}"],
                ["+44", "20", "7946", f"0{subscriber}"],
                ["+44", "(0)20", "7946", f"0{subscriber}"],
                ["0044", "20", "7946", f"0{subscriber}"],
                ["+44", "2079460" + subscriber],
                ["02079460" + subscriber],
            ]
        )
    )
    separators = st.sampled_from([" ", "  ", "-", ".", " - ", ""])
    written = groups[0] + "".join(draw(separators) + group for group in groups[1:])
    before, after = draw(st.sampled_from(["", " ", "\t"])), draw(st.sampled_from(["", " "]))
    return e164, f"{before}{written}{after}"


@settings(deadline=None)
@given(london_number_variants())
def test_any_format_of_a_london_number_normalises_to_its_e164(variant: tuple[str, str]) -> None:
    e164, written = variant
    assert normalised_phone(written, "GB") == e164
    # Idempotent: the stored value reads back as itself, in any address country.
    assert normalised_phone(e164, "GB") == normalised_phone(e164, "US") == e164


@pytest.mark.parametrize("region", ["GB", "US", "FR", "IT", "DE", "AU", "JP", "IN", "BR", "ZA"])
@pytest.mark.parametrize(
    "number_format",
    [
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.RFC3966,
    ],
)
def test_every_format_of_a_regions_example_number_is_one_number(region: str, number_format: int) -> None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    assert example is not None
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert normalised_phone(phonenumbers.format_number(example, number_format), region) == e164


# --- country ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "alpha_2"),
    [
        ("GB", "GB"),
        ("gb", "GB"),
        (" GB ", "GB"),
        ("GBR", "GB"),
        ("gbr", "GB"),
        ("United Kingdom", "GB"),
        ("united kingdom", "GB"),
        ("US", "US"),
        ("USA", "US"),
        ("United States", "US"),
        ("Germany", "DE"),
        ("DEU", "DE"),
        ("France", "FR"),
    ],
)
def test_country_by_code_or_english_name(raw: str, alpha_2: str) -> None:
    assert country_code(raw) == alpha_2


@pytest.mark.parametrize("raw", ["", "  ", "Narnia", "XX", "ZZZ", "Englandshire"])
def test_unknown_country_raises_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidField) as error:
        country_code(raw)
    assert field_of(error) == "address.country"


def test_unknown_country_in_a_profile_names_the_country() -> None:
    with pytest.raises(InvalidField) as error:
        alice(country="Narnia")
    assert field_of(error) == "address.country"


# --- address ---------------------------------------------------------------------------------


def test_address_is_stored_tidied() -> None:
    stored = address(["  Flat 2 ", "", "12   High\tStreet", "   "], "  London ", " sw1a  1aa ", "united kingdom")
    assert stored == PostalAddress(("Flat 2", "12 High Street"), "London", "SW1A 1AA", "GB")


def test_stored_address_normalises_to_itself() -> None:
    stored = address(["  flat 2, ", "12 HIGH st."], "london", "sw1a 1aa", "GBR")
    assert address(stored.lines, stored.city, stored.postcode, stored.country) == stored


@pytest.mark.parametrize(
    "edited",
    [
        # whitespace
        {"lines": ["  Flat 2  ", "12  High   Street "]},
        {"lines": ["Flat 2", "", "12 High Street", "  "]},
        {"lines": ["Flat\t2", "12\u00a0High Street"]},  # a tab and a no-break space
        # case
        {"lines": ["FLAT 2", "12 high street"]},
        {"city": "LONDON"},
        {"city": " london "},
        # punctuation
        {"lines": ["Flat 2,", "12, High Street."]},
        {"lines": ["Flat #2", "12 High Street"]},
        {"lines": ["Flat 2", "12 High-Street"]},
        {"lines": ["(Flat 2)", "12 High Street"]},
        {"lines": ["Flat 2", "12 \u201cHigh\u201d Street"]},
        # lines split differently: a line break reads as a space
        {"lines": ["Flat 2, 12 High Street"]},
        {"lines": ["Flat 2 12 High Street"]},
        {"lines": ["Flat", "2", "12", "High", "Street"]},
        {"lines": ["Flat 2, 12", "High Street"]},
        # postcode spacing and case
        {"postcode": "SW1A1AA"},
        {"postcode": "sw1a 1aa"},
        {"postcode": " sw1a1aa "},
        {"postcode": "SW1A  1AA"},
        {"postcode": "SW1A-1AA"},
        # country by alpha-2, alpha-3 or English name
        {"country": "gb"},
        {"country": "GBR"},
        {"country": "United Kingdom"},
        {"country": " united kingdom "},
    ],
)
def test_address_formatting_edit_is_no_change(edited: dict[str, Any]) -> None:
    assert address(**edited).comparison_key == address().comparison_key
    fields = {f"address_{k}" if k == "lines" else k: v for k, v in edited.items()}
    assert changed_fields(alice(), alice(**fields)) == ()


@pytest.mark.parametrize(
    ("stored", "edited"),
    [
        ("St John's Road", "St Johns Road"),  # legacy systems drop apostrophes
        ("St John\u2019s Road", "St John's Road"),  # typographic and typewriter apostrophes
        ("Queen's Gate", "QUEENS GATE"),
        ("O'Brien House", "OBrien House"),
        ("St John\u00b4s Road", "St John's Road"),  # an acute accent typed for one: NFKC must not split it
        ("St John\u2032s Road", "St Johns Road"),  # a prime
    ],
)
def test_apostrophe_edit_is_no_change(stored: str, edited: str) -> None:
    assert address([stored]).comparison_key == address([edited]).comparison_key


def test_unicode_compatibility_forms_are_one_address() -> None:
    """NFKC: a precomposed and a decomposed é, and full-width digits, are the same text."""
    assert (
        address(["12 Rue de l\u00e9glise"]).comparison_key
        == address(["\uff11\uff12 rue de le\u0301glise"]).comparison_key
    )


@pytest.mark.parametrize(
    "edited",
    [
        {"lines": ["Flat 2", "14 High Street"]},  # another house number
        {"lines": ["Flat 3", "12 High Street"]},  # another flat
        {"lines": ["Flat 2", "12 Low Street"]},  # another street
        {"lines": ["Flat 2", "12 High Road"]},
        {"lines": ["12 High Street"]},  # the flat dropped
        {"lines": ["Flat 21", "2 High Street"]},  # same characters, other numbers
        {"lines": ["Flat 2", "1 2 High Street"]},
        {"city": "Londonderry"},
        {"city": "Manchester"},
        {"postcode": "SW1A 2AA"},
        {"postcode": ""},
        {"country": "IE"},
        {"country": "Ireland"},
    ],
)
def test_address_real_edit_is_a_change(edited: dict[str, Any]) -> None:
    assert address(**edited).comparison_key != address().comparison_key
    fields = {f"address_{k}" if k == "lines" else k: v for k, v in edited.items()}
    # The phone in international format, so that it reads as the same number in any country.
    before, after = alice(phone="+44 20 7946 0018"), alice(phone="+44 20 7946 0018", **fields)
    assert changed_fields(before, after) == (ChangeType.ADDRESS,)


@pytest.mark.parametrize(
    ("stored", "edited"),
    [
        ("Flat 1/2", "Flat 12"),  # Glasgow: floor 1, door 2 is not flat 12
        ("12-14 High Street", "1214 High Street"),
        ("12, 14 High Street", "1214 High Street"),
    ],
)
def test_punctuation_between_numbers_still_separates_them(stored: str, edited: str) -> None:
    assert address([stored]).comparison_key != address([edited]).comparison_key


@pytest.mark.parametrize("lines", [[], [""], ["   "], ["", "\t", " \n "]])
def test_address_without_a_line_raises_naming_the_lines(lines: list[str]) -> None:
    with pytest.raises(InvalidField) as error:
        address(lines)
    assert field_of(error) == "address.lines"
    with pytest.raises(InvalidField) as error:
        alice(address_lines=lines)
    assert field_of(error) == "address.lines"


@pytest.mark.parametrize("city", ["", "   ", "\t\n"])
def test_blank_city_raises_naming_the_city(city: str) -> None:
    with pytest.raises(InvalidField) as error:
        address(city=city)
    assert field_of(error) == "address.city"


def test_address_words() -> None:
    assert address_words("  12,  High St. ") == "12 high st"
    assert address_words("12, St. John's Rd") == "12 st johns rd"
    assert address_words("STRASSE") == address_words("Straße")  # case folding, not lower()


_WORD = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éüßæø", min_size=1, max_size=8)
#: Separators between words: at least one whitespace or (non-apostrophe) punctuation character.
_SEPARATOR_CHARS = ' \t\u00a0,.;:-/()#&"\u2013'
_SEPARATOR = st.text(_SEPARATOR_CHARS, min_size=1, max_size=3)
_CASED: st.SearchStrategy[Callable[[str], str]] = st.sampled_from(
    [str.lower, str.upper, str.title, str.swapcase, lambda word: word]
)


@st.composite
def text_variant(draw: st.DrawFn, words: list[str], lines: bool) -> list[str]:
    """``words`` with any case per word, maybe an apostrophe in a word, any separators between
    them (and around them), split into one or more lines at word boundaries if ``lines``."""
    cased = [draw(_CASED)(word) for word in words]
    for i, word in enumerate(cased):
        if draw(st.booleans()):  # an apostrophe inside a word (St John's, St Johns)
            at = draw(st.integers(0, len(word)))
            cased[i] = word[:at] + draw(st.sampled_from(["'", "\u2019"])) + word[at:]
    breaks = {i for i in range(1, len(cased)) if lines and draw(st.booleans())}
    result: list[str] = []
    current = draw(st.text(_SEPARATOR_CHARS, max_size=2))
    for i, word in enumerate(cased):
        if i in breaks:
            result.append(current)
            current = draw(st.text(_SEPARATOR_CHARS, max_size=2))
        elif i:
            current += draw(_SEPARATOR)
        current += word
    result.append(current + draw(st.text(_SEPARATOR_CHARS, max_size=2)))
    return result


@st.composite
def address_variants(draw: st.DrawFn) -> tuple[PostalAddress, PostalAddress]:
    """(an address written plainly, the same address with other whitespace, case, punctuation,
    line breaks, postcode spacing and country spelling)."""
    line_words = draw(st.lists(_WORD, min_size=1, max_size=6))
    city_words = draw(st.lists(_WORD, min_size=1, max_size=3))
    postcode = draw(st.text("ABCDEFGHJKLMNPRSTUVWXY0123456789", max_size=8))
    country, spelled = draw(
        st.sampled_from([("GB", "gbr"), ("GB", "United Kingdom"), ("US", "usa"), ("DE", "Germany"), ("FR", "fr")])
    )
    plain = PostalAddress.parse([" ".join(line_words)], " ".join(city_words), postcode, country)
    postcode_gaps = st.sampled_from(["", "", " ", "  ", "-"])
    written_postcode = "".join(draw(postcode_gaps) + draw(_CASED)(char) for char in postcode)
    variant = PostalAddress.parse(
        draw(text_variant(line_words, lines=True)),
        " ".join(draw(text_variant(city_words, lines=False))),
        written_postcode,
        spelled,
    )
    return plain, variant


@settings(deadline=None)
@given(address_variants())
def test_any_whitespace_case_or_punctuation_variant_of_an_address_is_the_same_address(
    variants: tuple[PostalAddress, PostalAddress],
) -> None:
    plain, variant = variants
    assert variant.comparison_key == plain.comparison_key
    # Idempotent: a stored address parses back to itself.
    assert PostalAddress.parse(variant.lines, variant.city, variant.postcode, variant.country) == variant


# --- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": "   "}, "customer_id"),
        ({"customer_id": "C" * 65}, "customer_id"),
        ({"customer_id": "C" * 11, "max_id_length": 10}, "customer_id"),
        ({"accounts": [""]}, "accounts"),
        ({"accounts": ["ACC-1", "  "]}, "accounts"),
        ({"accounts": ["A" * 65]}, "accounts"),
        ({"accounts": ["ACC-1", "A" * 11], "max_id_length": 10}, "accounts"),
    ],
)
def test_bad_ids_raise_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as error:
        alice(**overrides)
    assert field_of(error) == field


def test_ids_up_to_the_maximum_length_are_kept_stripped() -> None:
    profile = alice(customer_id=f" {'C' * 10} ", accounts=[f" {'A' * 10}", "B", " B "], max_id_length=10)
    assert profile.customer_id == "C" * 10
    assert profile.accounts == frozenset({"A" * 10, "B"})


def test_accounts_may_be_any_iterable() -> None:
    """Regression: parse iterated ``accounts`` twice (check, then store), so a generator's accounts were lost."""
    profile = alice(accounts=(account for account in ["ACC-1", "ACC-2"]))
    assert profile.accounts == frozenset({"ACC-1", "ACC-2"})


def test_a_customer_may_hold_no_account() -> None:
    assert alice(accounts=[]).accounts == frozenset()


def test_the_first_invalid_field_raises() -> None:
    with pytest.raises(InvalidField) as error:
        alice(customer_id="", email="not an email", phone="nope")
    assert field_of(error) == "customer_id"


# --- changed_fields and profile_changes ------------------------------------------------------


def test_first_profile_is_a_baseline() -> None:
    assert profile_changes(None, alice(accounts=["ACC-1", "ACC-2"]), CHANGED_AT) == []


def test_same_profile_is_no_change() -> None:
    assert changed_fields(alice(), alice()) == ()
    assert profile_changes(alice(), alice(), CHANGED_AT) == []


def test_formatting_edit_of_every_field_at_once_is_no_change() -> None:
    reentered = alice(
        customer_id=" CUST-ALICE ",
        email="  alice@EXAMPLE.com ",
        phone="+44 (0)20-7946-0018",
        address_lines=["FLAT 2, 12 high street."],
        city="london",
        postcode="sw1a1aa",
        country="United Kingdom",
        accounts=[" ACC-1 "],
    )
    assert changed_fields(alice(), reentered) == ()
    assert profile_changes(alice(), reentered, CHANGED_AT) == []


@pytest.mark.parametrize(
    ("overrides", "change_type"),
    [
        ({"email": "alice@example.org"}, ChangeType.EMAIL),
        ({"phone": "020 7946 0019"}, ChangeType.PHONE),
        ({"address_lines": ["1 Low Road"]}, ChangeType.ADDRESS),
        ({"city": "Leeds"}, ChangeType.ADDRESS),
        ({"postcode": "LS1 1AA"}, ChangeType.ADDRESS),
        ({"accounts": ["ACC-1", "ACC-9"]}, ChangeType.ACCOUNT_ADDED),
    ],
)
def test_each_field_alone(overrides: dict[str, Any], change_type: ChangeType) -> None:
    before = alice()
    after = alice(**overrides)
    assert changed_fields(before, after) == (change_type,)
    assert profile_changes(before, after, CHANGED_AT) == [
        ProfileChange(account, "CUST-ALICE", change_type, CHANGED_AT_MS) for account in sorted(after.accounts)
    ]


def test_account_removed_alone() -> None:
    before = alice(accounts=["ACC-1", "ACC-2"])
    after = alice(accounts=["ACC-1"])
    assert changed_fields(before, after) == (ChangeType.ACCOUNT_REMOVED,)
    assert profile_changes(before, after, CHANGED_AT) == [
        ProfileChange("ACC-1", "CUST-ALICE", ChangeType.ACCOUNT_REMOVED, CHANGED_AT_MS)
    ]


def test_several_fields_at_once_give_one_change_per_field_and_account() -> None:
    before = alice(accounts=["ACC-2", "ACC-1"])
    after = alice(
        email="alice@example.org", phone="+1 650 253 0000", address_lines=["3 New Road"], accounts=["ACC-1", "ACC-2"]
    )
    changes = profile_changes(before, after, CHANGED_AT)
    assert changes == [
        ProfileChange(account, "CUST-ALICE", change_type, CHANGED_AT_MS)
        for change_type in (ChangeType.EMAIL, ChangeType.PHONE, ChangeType.ADDRESS)
        for account in ("ACC-1", "ACC-2")
    ]
    assert len({change.key for change in changes}) == 6
    assert all(change.last_updated.microsecond % 1000 == 0 for change in changes)


def test_account_added_is_recorded_on_every_account_including_the_new_one() -> None:
    before = alice(accounts=["ACC-1", "ACC-2"])
    after = alice(accounts=["ACC-1", "ACC-2", "ACC-NEW"])
    assert profile_changes(before, after, CHANGED_AT) == [
        ProfileChange(account, "CUST-ALICE", ChangeType.ACCOUNT_ADDED, CHANGED_AT_MS)
        for account in ("ACC-1", "ACC-2", "ACC-NEW")
    ]


def test_first_account_added_to_a_customer_without_accounts() -> None:
    before = alice(accounts=[])
    after = alice(accounts=["ACC-1"])
    assert profile_changes(before, after, CHANGED_AT) == [
        ProfileChange("ACC-1", "CUST-ALICE", ChangeType.ACCOUNT_ADDED, CHANGED_AT_MS)
    ]


def test_account_removed_is_recorded_on_the_accounts_kept() -> None:
    before = alice(accounts=["ACC-1", "ACC-2", "ACC-3"])
    after = alice(accounts=["ACC-1", "ACC-3"])
    assert profile_changes(before, after, CHANGED_AT) == [
        ProfileChange(account, "CUST-ALICE", ChangeType.ACCOUNT_REMOVED, CHANGED_AT_MS)
        for account in ("ACC-1", "ACC-3")
    ]


def test_account_replaced_is_added_and_removed() -> None:
    before = alice(accounts=["ACC-1"])
    after = alice(accounts=["ACC-2"])
    assert changed_fields(before, after) == (ChangeType.ACCOUNT_ADDED, ChangeType.ACCOUNT_REMOVED)
    assert profile_changes(before, after, CHANGED_AT) == [
        ProfileChange("ACC-2", "CUST-ALICE", ChangeType.ACCOUNT_ADDED, CHANGED_AT_MS),
        ProfileChange("ACC-2", "CUST-ALICE", ChangeType.ACCOUNT_REMOVED, CHANGED_AT_MS),
    ]


def test_customer_left_with_no_account_records_no_rows() -> None:
    before = alice(accounts=["ACC-1", "ACC-2"])
    after = alice(email="alice@example.org", accounts=[])
    assert changed_fields(before, after) == (ChangeType.EMAIL, ChangeType.ACCOUNT_REMOVED)
    assert profile_changes(before, after, CHANGED_AT) == []


def test_changed_fields_follow_change_type_order() -> None:
    before = alice(accounts=["ACC-1"])
    after = alice(email="bob@example.com", phone="020 7946 0999", city="Leeds", postcode="LS1 1AA", accounts=["ACC-2"])
    order = list(ChangeType)
    fields = changed_fields(before, after)
    assert fields == (
        ChangeType.EMAIL,
        ChangeType.PHONE,
        ChangeType.ADDRESS,
        ChangeType.ACCOUNT_ADDED,
        ChangeType.ACCOUNT_REMOVED,
    )
    assert [order.index(change_type) for change_type in fields] == sorted(order.index(t) for t in fields)
    assert ChangeType.OTHER not in fields


def test_changed_at_is_recorded_in_utc_to_the_millisecond() -> None:
    tokyo = CHANGED_AT.astimezone(timezone(timedelta(hours=9)))
    (change,) = profile_changes(alice(), alice(email="alice@example.org"), tokyo)
    assert change.last_updated == CHANGED_AT_MS
    assert change.last_updated.utcoffset() == timedelta(0)


def test_changed_at_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        profile_changes(alice(), alice(email="alice@example.org"), CHANGED_AT.replace(tzinfo=None))


# --- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile",
    [
        alice(),
        alice(accounts=[]),
        alice(accounts=["ACC-3", "ACC-1", "ACC-2"]),
        alice(phone="020 7946 0018 ext. 42"),
        alice(
            email="Zoë@bücher.de",
            address_lines=["Königstraße 1", "Hinterhaus"],
            city="München",
            postcode="80331",
            country="DE",
            phone="+49 89 1234567",
        ),
        alice(address_lines=['"The Cottage"', "1 O'Brien Lane"], postcode=""),
    ],
)
def test_json_round_trip(profile: CustomerProfile) -> None:
    text = profile.to_json()
    assert CustomerProfile.from_json(text) == profile
    assert CustomerProfile.from_json(text).to_json() == text


def test_json_lists_accounts_in_order() -> None:
    assert '"accounts": ["ACC-1", "ACC-2", "ACC-3"]' in alice(accounts=["ACC-3", "ACC-1", "ACC-2"]).to_json()


# --- when a change happened: the API's, `profile set`'s and `change`'s one rule ---------------------

CHECK_NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=300)


def test_change_time_defaults_to_now_and_reads_naive_times_as_utc() -> None:
    assert checked_change_time(None, CHECK_NOW, SKEW) == CHECK_NOW
    assert checked_change_time(datetime(2026, 11, 29, 9), CHECK_NOW, SKEW) == datetime(2026, 11, 29, 9, tzinfo=UTC)


def test_change_time_may_run_ahead_by_the_allowed_skew_only() -> None:
    assert checked_change_time(CHECK_NOW + SKEW, CHECK_NOW, SKEW) == CHECK_NOW + SKEW
    with pytest.raises(ValueError, match="is in the future"):
        checked_change_time(CHECK_NOW + SKEW + timedelta(milliseconds=1), CHECK_NOW, SKEW)
