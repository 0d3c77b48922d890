"""card_tokenize: validation, tokens that reveal nothing, one token per card and merchant, what is stored."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vault.helpers import EXP_MONTH, EXP_YEAR, VISA, VISA_MASKED, digit_windows, luhn_complete, pan_random
from vault import keys, services
from vault.domain import InvalidCard
from vault.models import Card

pytestmark = pytest.mark.django_db

TOKEN_SHAPE = re.compile(r"^tok_[A-Za-z0-9]{24}$")


# validation -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("written", ["4242 4242 4242 4242", "4242-4242-4242-4242", " 4242 4242-4242 4242 ", VISA])
def test_tokenize_separators_stripped_same_token(tokenize, written):
    # given the card vaulted as bare digits
    first = tokenize(VISA)
    # when it comes back written with spaces or dashes
    again = tokenize(written)
    # then it is the same card, stored as digits
    assert again.token == first.token
    assert Card.objects.filter(merchant_id=first.merchant_id).count() == 1
    assert again.last4 == "4242"
    assert again.masked == VISA_MASKED


@pytest.mark.parametrize(
    "card_number",
    [
        pytest.param(luhn_complete("4" * 10), id="11-digits"),
        pytest.param(luhn_complete("4" * 19), id="20-digits"),
        pytest.param(luhn_complete("4" * 24), id="25-digits"),
        pytest.param("4242424242424241", id="luhn-failure"),
        pytest.param("4242a24242424242", id="letter"),
        pytest.param("4242.4242.4242.4242", id="dots"),
        pytest.param("4242_4242_4242_4242", id="underscores"),
        pytest.param("4242\t4242\n4242 4242", id="tab-newline-inside"),
        pytest.param("４２４２４２４２４２４２４２４２", id="fullwidth-digits"),
        pytest.param("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", id="arabic-indic-digits"),
        pytest.param("+4242424242424242", id="sign"),
        pytest.param("", id="empty"),
        pytest.param("    ", id="blank"),
        pytest.param("------------", id="separators-only"),
        pytest.param(4242424242424242, id="integer"),
        pytest.param(4242424242424242.0, id="float"),
        pytest.param(None, id="none"),
        pytest.param(["4242424242424242"], id="list"),
        pytest.param(b"4242424242424242", id="bytes"),
    ],
)
def test_tokenize_invalid_number_raises_invalid_card(tokenize, card_number):
    # when an invalid number is tokenised
    with pytest.raises(InvalidCard) as raised:
        tokenize(card_number)
    # then nothing is stored and the message repeats no part of the number
    assert not Card.objects.exists()
    assert not re.search(r"\d{5,}", str(raised.value))


@pytest.mark.parametrize("length", [12, 13, 15, 16, 19])
def test_tokenize_12_to_19_digits_accepted(tokenize, length):
    pan = pan_random(length)
    card = tokenize(pan)
    assert card.last4 == pan[-4:]
    assert card.masked.count("*") >= 6
    assert len(card.masked) == length


@pytest.mark.parametrize(
    ("exp_month", "exp_year"),
    [
        pytest.param(1, 2020, id="past-year"),
        pytest.param(0, EXP_YEAR, id="month-0"),
        pytest.param(13, EXP_YEAR, id="month-13"),
        pytest.param(-1, EXP_YEAR, id="month-negative"),
        pytest.param(True, EXP_YEAR, id="month-bool"),
        pytest.param("12", EXP_YEAR, id="month-str"),
        pytest.param(12.0, EXP_YEAR, id="month-float"),
        pytest.param(None, EXP_YEAR, id="month-none"),
        pytest.param(EXP_MONTH, "2035", id="year-str"),
        pytest.param(EXP_MONTH, 2035.0, id="year-float"),
        pytest.param(EXP_MONTH, False, id="year-bool"),
        pytest.param(EXP_MONTH, 9999, id="year-far-ahead"),
    ],
)
def test_tokenize_invalid_expiry_raises_invalid_card(tokenize, exp_month, exp_year):
    with pytest.raises(InvalidCard):
        tokenize(VISA, exp_month=exp_month, exp_year=exp_year)
    assert not Card.objects.exists()


def test_tokenize_last_month_expired_this_month_valid(tokenize):
    today = timezone.localdate()
    last_month = today.replace(day=1) - dt.timedelta(days=1)
    with pytest.raises(InvalidCard):
        tokenize(VISA, exp_month=last_month.month, exp_year=last_month.year)
    card = tokenize(VISA, exp_month=today.month, exp_year=today.year)
    assert (card.exp_month, card.exp_year) == (today.month, today.year)


def test_tokenize_two_digit_year_stored_as_four(tokenize):
    card = tokenize(VISA, exp_month=3, exp_year=35)
    card.refresh_from_db()
    assert (card.exp_month, card.exp_year) == (3, 2035)


# tokens ---------------------------------------------------------------------------------------------------
def test_tokenize_token_shaped_and_unrelated_to_number(tokenize):
    card = tokenize(VISA)
    assert TOKEN_SHAPE.match(card.token)
    body = card.token.removeprefix("tok_")
    for fragment in {VISA, VISA[:6], VISA[-4:], *digit_windows(VISA, 4)}:
        assert fragment not in body


def test_tokenize_distinct_cards_get_distinct_unrevealing_tokens(merchant_id):
    # given many different card numbers, vaulted for one merchant
    seen: dict[str, str] = {}

    @given(prefix=st.text(alphabet="0123456789", min_size=11, max_size=18))
    @settings(max_examples=40, deadline=None, database=None)
    def check(prefix):
        pan = luhn_complete(prefix)
        token = services.card_tokenize(
            card_number=pan, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id=merchant_id
        ).token
        # then a token is random characters revealing nothing of the number
        assert TOKEN_SHAPE.match(token)
        body = token.removeprefix("tok_")
        assert pan not in body
        assert pan[:6] not in body
        assert pan[-4:] not in body
        # and the same number always gets its token back, another number never gets it
        if pan in seen:
            assert seen[pan] == token
        else:
            assert token not in seen.values()
            seen[pan] = token

    check()
    assert Card.objects.filter(merchant_id=merchant_id).count() == len(seen)


def test_tokenize_same_card_same_merchant_same_token(tokenize):
    first = tokenize(VISA)
    second = tokenize(VISA, exp_month=1, exp_year=2036, cardholder_name="Taro Yamada")
    assert second.token == first.token
    assert Card.objects.filter(token=first.token).count() == 1
    # the expiry and name of the later tokenisation are kept
    stored = Card.objects.get(token=first.token)
    assert (stored.exp_month, stored.exp_year) == (1, 2036)
    assert services.card_cardholder_name(card=stored) == "Taro Yamada"


def test_tokenize_same_card_other_merchant_other_token(tokenize):
    mine = tokenize(VISA, merchant_id="m-one")
    theirs = tokenize(VISA, merchant_id="m-two")
    assert mine.token != theirs.token
    # the blind index is scoped too: nothing links the two rows
    assert bytes(mine.blind_index) != bytes(theirs.blind_index)
    assert bytes(mine.number_ciphertext) != bytes(theirs.number_ciphertext)


def test_tokenize_each_card_own_aes256_gcm_data_key(tokenize):
    from tink.proto import aes_gcm_pb2, tink_pb2

    cards = [tokenize(pan_random()) for _ in range(3)]
    materials = set()
    for card in cards:
        keyset_bytes = keys.dek_unwrap_bytes(
            keys.key_provider(), bytes(card.wrapped_key), context=f"vault.card:{card.token}:key".encode()
        )
        keyset = tink_pb2.Keyset.FromString(keyset_bytes)
        assert len(keyset.key) == 1
        assert keyset.key[0].key_data.type_url == "type.googleapis.com/google.crypto.tink.AesGcmKey"
        material = aes_gcm_pb2.AesGcmKey.FromString(keyset.key[0].key_data.value).key_value
        assert len(material) == 32
        materials.add(material)
        # the wrapped key names the KEK key that wrapped it
        assert card.kek_key_id == keys.key_id_of(bytes(card.wrapped_key)) == keys.key_provider().primary_key_id()
    assert len(materials) == 3


@pytest.mark.django_db(transaction=True)
def test_tokenize_concurrent_same_new_card_one_row_same_token(run_concurrently, merchant_id):
    # given the same new card, tokenised by two requests at once, several times over
    for _ in range(5):
        pan = pan_random()

        def vault_it(pan=pan):
            return services.card_tokenize(
                card_number=pan, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id=merchant_id
            ).token

        # when both run
        results = run_concurrently(vault_it, vault_it)
        # then both succeed with one token, and one row exists
        assert [outcome for outcome, _ in results] == ["ok", "ok"], results
        assert results[0][1] == results[1][1]
        assert Card.objects.filter(token=results[0][1]).count() == 1
    assert Card.objects.filter(merchant_id=merchant_id).count() == 5


# what is stored -------------------------------------------------------------------------------------------
def test_tokenize_stores_brand_last4_masked_expiry(tokenize):
    card = tokenize(VISA, exp_month=7, exp_year=2031)
    stored = Card.objects.get(token=card.token)
    assert (stored.brand, stored.last4, stored.masked) == ("visa", "4242", VISA_MASKED)
    assert (stored.exp_month, stored.exp_year) == (7, 2031)
    assert stored.merchant_id == card.merchant_id
    assert VISA not in str(stored)
    assert VISA not in repr(stored)


def test_tokenize_cardholder_name_optional_and_readable(tokenize):
    without = tokenize(pan_random())
    named = tokenize(pan_random(), cardholder_name="Hanako Sato")
    assert without.name_ciphertext is None
    assert services.card_cardholder_name(card=without) is None
    assert services.card_cardholder_name(card=Card.objects.get(token=named.token)) == "Hanako Sato"
