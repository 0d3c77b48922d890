"""Keys: the KEK keyset file and its permissions, rotation with re-wrapping (resumable), retirement of old keys,
the KEK given in the environment. Every test here works in a key directory of its own (isolated_keys)."""

import base64
import contextlib
import io
import json
import logging
import os
import stat

import pytest
import tink
from django.core import checks
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from tink import aead, secret_key_access
from tink.proto import aes_gcm_pb2

from accounts.models import Customer
from accounts.selectors import customer_get_by_email
from accounts.services import customer_register
from tests.vault.helpers import EXP_MONTH, EXP_YEAR, VISA, pan_random
from vault import keys, services
from vault.checks import vault_keys_check
from vault.fields import blind_index
from vault.keys import LocalKeyProvider, VaultKeyError
from vault.models import Card, DetokenizationAudit, SubjectKey

pytestmark = pytest.mark.django_db

AES_GCM = "type.googleapis.com/google.crypto.tink.AesGcmKey"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _card_context(token: str) -> bytes:
    return f"vault.card:{token}:key".encode()


def _rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def cards(isolated_keys, tokenize):
    """Three cards vaulted under the isolated directory's first KEK key: {token: number}."""
    numbers = [VISA, pan_random(15), pan_random(19)]
    return {tokenize(number, cardholder_name=f"holder {i}").token: number for i, number in enumerate(numbers)}


@pytest.fixture
def subject(isolated_keys):
    """A data subject's key and a ciphertext made with it before any rotation."""
    ciphertext = services.subject_key(subject_id="cust-1", create=True).encrypt(b"Hanako Sato", b"name")
    return "cust-1", ciphertext


def _all_readable(cards: dict[str, str], actor) -> None:
    for token, number in cards.items():
        assert services.card_detokenize(token=token, purpose="check", actor=actor) == number


# the keyset file --------------------------------------------------------------------------------------------
def test_key_provider_creates_owner_only_files_whatever_the_umask(isolated_keys):
    # given a process with a permissive umask
    previous = os.umask(0)
    try:
        # when the provider creates its keys
        provider = keys.key_provider()
        provider.kek()
        provider.prf("card-index")
    finally:
        os.umask(previous)
    # then the KEK keyset and the blind-index key are readable by their owner only, in a private directory
    assert _mode(isolated_keys / "kek.json") == 0o600
    assert _mode(isolated_keys / "index.bin") == 0o600
    assert _mode(isolated_keys) & 0o077 == 0


def test_rotate_keys_keeps_files_owner_only_and_leaves_no_temporaries(isolated_keys, cards):
    _rotate("--retire")
    assert _mode(isolated_keys / "kek.json") == 0o600
    assert _mode(isolated_keys / "index.bin") == 0o600
    assert sorted(path.name for path in isolated_keys.iterdir()) == ["index.bin", "kek.json"]


def test_key_provider_keyset_is_aes256_gcm(isolated_keys):
    keys.key_provider().kek()
    keyset = json.loads((isolated_keys / "kek.json").read_text())
    [key] = keyset["key"]
    assert key["keyData"]["typeUrl"] == AES_GCM
    assert key["status"] == "ENABLED"
    assert key["outputPrefixType"] == "TINK"
    raw = aes_gcm_pb2.AesGcmKey.FromString(base64.b64decode(key["keyData"]["value"]))
    assert len(raw.key_value) == 32
    assert keyset["primaryKeyId"] == key["keyId"] == keys.key_provider().primary_key_id()


def test_key_provider_index_key_stored_wrapped(isolated_keys):
    keys.key_provider().prf("card-index")
    stored = (isolated_keys / "index.bin").read_bytes()
    # a Tink ciphertext under the KEK's primary key, not a serialized keyset
    assert keys.key_id_of(stored) == keys.key_provider().primary_key_id()
    assert b"HmacPrfKey" not in stored


def test_key_provider_follows_rotation_by_another_process(isolated_keys):
    # given two providers on one directory, as two processes would have, both having read the keyset
    LocalKeyProvider(isolated_keys).kek()
    mine, theirs = LocalKeyProvider(isolated_keys), LocalKeyProvider(isolated_keys)
    before = mine.primary_key_id()
    # when the other rotates
    new = theirs.rotate()
    # then this one wraps under the new primary too, and reads what the other wrapped
    assert new != before
    assert mine.primary_key_id() == new
    wrapped = keys.dek_wrap(mine, b"data key", context=b"ctx")
    assert keys.key_id_of(wrapped) == new
    assert keys.dek_unwrap_bytes(theirs, wrapped, context=b"ctx") == b"data key"


def test_key_provider_follows_rotation_within_one_timestamp_tick(isolated_keys):
    # given a file system whose timestamps are coarse (1 s on ext3/NFS, a jiffy on older kernels): the
    # rotated keyset file gets the same mtime as the one this provider read
    LocalKeyProvider(isolated_keys).kek()  # the keyset exists before either provider reads it
    mine, theirs = LocalKeyProvider(isolated_keys), LocalKeyProvider(isolated_keys)
    mine.primary_key_id()
    stamp = (isolated_keys / "kek.json").stat().st_mtime_ns
    new = theirs.rotate()
    os.utime(isolated_keys / "kek.json", ns=(stamp, stamp))
    # then this provider still sees the new keyset (it is another file: os.replace gave it a new inode)
    assert mine.primary_key_id() == new


# rotation ---------------------------------------------------------------------------------------------------
def test_rotate_keys_old_records_readable_and_carry_new_key_id(isolated_keys, cards, subject, cde_user):
    # given cards and a subject key wrapped under the first KEK key
    provider = keys.key_provider()
    old = provider.primary_key_id()
    assert set(Card.objects.values_list("kek_key_id", flat=True)) == {old}
    # when the keys are rotated
    output = _rotate()
    # then a new primary wraps every data key, and the old key is still in the keyset
    new = provider.primary_key_id()
    assert new != old
    assert f"new primary key {new}" in output
    assert f"re-wrapped {len(cards) + 1} data key(s)" in output
    assert set(provider.key_ids()) == {old, new}
    for card in Card.objects.all():
        assert card.kek_key_id == new == keys.key_id_of(bytes(card.wrapped_key))
    assert SubjectKey.objects.get(subject_id=subject[0]).kek_key_id == new
    assert services.keys_pending_count(primary=new) == 0
    # and everything written before reads as before
    _all_readable(cards, cde_user)
    subject_id, ciphertext = subject
    assert services.subject_key(subject_id=subject_id).decrypt(ciphertext, b"name") == b"Hanako Sato"
    assert {services.card_cardholder_name(card=card) for card in Card.objects.all()} == {
        "holder 0",
        "holder 1",
        "holder 2",
    }


def test_rotate_keys_blind_index_stable_same_token(isolated_keys, cards, tokenize):
    # the index key survives rotation: the same card keeps its token
    _rotate("--retire")
    token = next(token for token, number in cards.items() if number == VISA)
    assert tokenize(VISA).token == token
    assert Card.objects.count() == len(cards)


def test_rotate_keys_new_cards_wrapped_under_new_primary(isolated_keys, cards, tokenize, cde_user):
    _rotate()
    pan = pan_random()
    card = tokenize(pan)
    assert card.kek_key_id == keys.key_provider().primary_key_id()
    assert services.card_detokenize(token=card.token, purpose="new", actor=cde_user) == pan


def test_rotate_keys_in_small_batches_rewraps_all(isolated_keys, tokenize, cde_user):
    cards = {tokenize(number).token: number for number in (pan_random() for _ in range(5))}
    output = _rotate("--batch-size", "2")
    assert "re-wrapped 5 data key(s)" in output
    primary = keys.key_provider().primary_key_id()
    assert set(Card.objects.values_list("kek_key_id", flat=True)) == {primary}
    _all_readable(cards, cde_user)


def test_rotate_keys_batch_size_zero_refused(isolated_keys):
    with pytest.raises(CommandError, match="batch-size"):
        _rotate("--batch-size", "0")


def test_rotate_keys_resume_finishes_interrupted_rotation(isolated_keys, cards, subject, cde_user):
    # given a rotation interrupted after its first batch
    provider = keys.key_provider()
    old = provider.primary_key_id()
    new = provider.rotate()
    batches = services.keys_rewrap(batch_size=1)
    assert next(batches) == 1
    batches.close()
    assert services.keys_pending_count(primary=new) == len(cards)  # two cards and the subject key left
    assert set(Card.objects.values_list("kek_key_id", flat=True)) == {old, new}
    # and records on both keys readable meanwhile
    _all_readable(cards, cde_user)
    # when it is resumed
    output = _rotate("--resume")
    # then no new key was added and nothing is left on the old one
    assert "new primary key" not in output
    assert provider.primary_key_id() == new
    assert set(provider.key_ids()) == {old, new}
    assert services.keys_pending_count(primary=new) == 0
    assert set(Card.objects.values_list("kek_key_id", flat=True)) == {new}
    assert SubjectKey.objects.get(subject_id=subject[0]).kek_key_id == new
    _all_readable(cards, cde_user)


def test_rotate_keys_resume_with_nothing_left_is_harmless(isolated_keys, cards, cde_user):
    _rotate()
    ids = keys.key_provider().key_ids()
    output = _rotate("--resume")
    assert "re-wrapped 0 data key(s)" in output
    assert keys.key_provider().key_ids() == ids
    _all_readable(cards, cde_user)


def test_rotate_keys_skips_forgotten_subjects(isolated_keys, subject):
    services.subject_key(subject_id="cust-2", create=True)
    destroyed, _ = services.subject_forget(subject_id="cust-2")
    assert destroyed
    _rotate("--retire")
    forgotten = SubjectKey.objects.get(subject_id="cust-2")
    assert forgotten.wrapped_key is None
    assert forgotten.kek_key_id is None
    with pytest.raises(services.SubjectForgotten):
        services.subject_key(subject_id="cust-2")


# retirement -------------------------------------------------------------------------------------------------
def test_rotate_keys_retire_removes_old_keys_and_their_wrapped_copies(isolated_keys, cards, cde_user):
    provider = keys.key_provider()
    old = provider.primary_key_id()
    # given a copy of a card's wrapped data key taken before rotation
    token = next(iter(cards))
    copy = bytes(Card.objects.get(token=token).wrapped_key)
    # when keys are rotated, the old key still unwraps the copy
    _rotate()
    assert keys.dek_unwrap_bytes(provider, copy, context=_card_context(token))
    # when the old keys are retired
    output = _rotate("--resume", "--retire")
    # then only the new primary is left, in memory and in the file
    new = provider.primary_key_id()
    assert f"retired 1 key(s): {old}" in output
    assert provider.key_ids() == [new]
    assert [key["keyId"] for key in json.loads((isolated_keys / "kek.json").read_text())["key"]] == [new]
    # and the copy can no longer be unwrapped, by this process or a new one
    with pytest.raises(VaultKeyError):
        keys.dek_unwrap_bytes(provider, copy, context=_card_context(token))
    with pytest.raises(VaultKeyError):
        keys.dek_unwrap_bytes(LocalKeyProvider(isolated_keys), copy, context=_card_context(token))
    # and the current records still read
    _all_readable(cards, cde_user)
    # while a record restored to the old copy is unreadable, and the attempt is audited as failed
    Card.objects.filter(token=token).update(wrapped_key=copy, kek_key_id=old)
    with pytest.raises(VaultKeyError):
        services.card_detokenize(token=token, purpose="restored backup", actor=cde_user)
    assert DetokenizationAudit.objects.filter(token=token).order_by("-id")[0].outcome == DetokenizationAudit.FAILED


def test_rotate_keys_resume_retire_after_crash_before_index_rewrap_keeps_index_key(isolated_keys, tokenize):
    # given a rotation that stopped right after the new keyset was written, before the blind-index key was
    # re-wrapped (rotate() writes kek.json, then index.bin): index.bin is still wrapped by the old key
    card = tokenize(VISA)
    index_before = (isolated_keys / "index.bin").read_bytes()
    keys.key_provider().rotate()
    (isolated_keys / "index.bin").write_bytes(index_before)
    keys.key_provider_reset()
    # when the operator finishes it as documented, retiring the old keys (or is refused)
    with contextlib.suppress(CommandError):
        _rotate("--resume", "--retire")
    # then the blind-index key is not lost: the same card still finds its token
    keys.key_provider_reset()
    assert tokenize(VISA).token == card.token


def test_keys_retire_refused_while_a_card_uses_old_key(isolated_keys, cards, cde_user):
    # given a rotation whose re-wrapping has not run
    provider = keys.key_provider()
    old = provider.primary_key_id()
    new = provider.rotate()
    # when retirement is asked, then it is refused and nothing is removed
    with pytest.raises(VaultKeyError, match="still wrap"):
        services.keys_retire()
    assert set(provider.key_ids()) == {old, new}
    _all_readable(cards, cde_user)


def test_keys_retire_refused_while_a_subject_key_uses_old_key(isolated_keys, subject):
    provider = keys.key_provider()
    provider.rotate()
    with pytest.raises(VaultKeyError):
        services.keys_retire()
    assert len(provider.key_ids()) == 2
    subject_id, ciphertext = subject
    assert services.subject_key(subject_id=subject_id).decrypt(ciphertext, b"name") == b"Hanako Sato"


def test_key_provider_primary_cannot_be_retired(isolated_keys):
    provider = keys.key_provider()
    with pytest.raises(VaultKeyError):
        provider.retire({provider.primary_key_id()})
    assert len(provider.key_ids()) == 1


def test_rotate_keys_twice_then_retire_leaves_one_key(isolated_keys, cards, cde_user):
    _rotate()
    _rotate()
    assert len(keys.key_provider().key_ids()) == 3
    _rotate("--resume", "--retire")
    assert keys.key_provider().key_ids() == [keys.key_provider().primary_key_id()]
    _all_readable(cards, cde_user)


# the KEK from the environment -------------------------------------------------------------------------------
@pytest.fixture
def env_keyset(isolated_keys, settings):
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    settings.VAULT_KEK_KEYSET = tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    keys.key_provider_reset()
    return handle.keyset_info().primary_key_id


def test_env_keyset_tokenizes_and_detokenizes(env_keyset, isolated_keys, tokenize, cde_user):
    # given the KEK in VAULT_KEK_KEYSET
    card = tokenize(VISA)
    # then data keys are wrapped by it, no keyset file is written, and the number reads back
    assert card.kek_key_id == env_keyset
    assert not (isolated_keys / "kek.json").exists()
    assert services.card_detokenize(token=card.token, purpose="env", actor=cde_user) == VISA
    # and so it does for another process given the same variable
    keys.key_provider_reset()
    assert services.card_detokenize(token=card.token, purpose="env", actor=cde_user) == VISA
    assert tokenize(VISA).token == card.token


def test_env_keyset_provider_direct(env_keyset, isolated_keys, settings):
    provider = LocalKeyProvider(isolated_keys, keyset_json=settings.VAULT_KEK_KEYSET)
    assert provider.key_ids() == [env_keyset]
    wrapped = keys.dek_wrap(provider, b"data key", context=b"ctx")
    assert keys.key_id_of(wrapped) == env_keyset
    # another provider on the same keyset, and a directory of its own, unwraps it
    other = LocalKeyProvider(isolated_keys / "elsewhere", keyset_json=settings.VAULT_KEK_KEYSET)
    assert keys.dek_unwrap_bytes(other, wrapped, context=b"ctx") == b"data key"
    # a provider with another KEK does not
    with pytest.raises(VaultKeyError):
        keys.dek_unwrap_bytes(LocalKeyProvider(isolated_keys / "other"), wrapped, context=b"ctx")


def test_env_keyset_rotation_refused(env_keyset, isolated_keys, tokenize, cde_user):
    card = tokenize(VISA)
    with pytest.raises(CommandError, match="VAULT_KEK_KEYSET"):
        _rotate()
    assert keys.key_provider().key_ids() == [env_keyset]
    assert services.card_detokenize(token=card.token, purpose="env", actor=cde_user) == VISA


def test_tokenize_other_key_directory_cannot_read_cards(settings, tmp_path, tokenize, cde_user):
    # a card vaulted under one KEK is unreadable under another (the documented reason for isolated_keys)
    settings.VAULT_KEYS_DIR = str(tmp_path / "first")
    keys.key_provider_reset()
    try:
        card = tokenize(VISA, exp_month=EXP_MONTH, exp_year=EXP_YEAR)
        settings.VAULT_KEYS_DIR = str(tmp_path / "second")
        keys.key_provider_reset()
        with pytest.raises(VaultKeyError):
            services.card_detokenize(token=card.token, purpose="other kek", actor=cde_user)
        # and its blind index differs: the same card would be vaulted anew
        assert tokenize(VISA).token != card.token
    finally:
        keys.key_provider_reset()


# missing keys: refused in production, created loudly in development ---------------------------------------------
@pytest.fixture
def production_keys(isolated_keys, settings):
    """The isolated key directory under production rules: nothing missing is created on use."""
    settings.VAULT_KEYS_CREATE_MISSING = False
    keys.key_provider_reset()
    return isolated_keys


def _check_errors() -> list[str]:
    return [error.msg for error in vault_keys_check(None) if error.level >= checks.ERROR]


def test_production_missing_kek_check_errors_and_nothing_created(production_keys):
    # given a production process whose key directory is empty (a redeploy without its volume)
    # when the system checks run, then the missing KEK is an error naming it, and so is manage.py check
    assert any("KEK keyset" in message for message in _check_errors())
    with pytest.raises(SystemCheckError, match="KEK keyset"):
        call_command("check")
    # and a use of the vault fails naming the problem instead of creating a new KEK
    with pytest.raises(VaultKeyError, match="create_keys"):
        keys.key_provider().kek()
    with pytest.raises(VaultKeyError, match="missing"):
        services.card_tokenize(card_number=VISA, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id="m-prod")
    assert not production_keys.exists() or not any(production_keys.iterdir())


def test_production_missing_index_key_check_errors_and_not_regenerated(production_keys):
    # given a production install whose KEK is there but whose card index key was lost
    call_command("create_keys", stdout=io.StringIO())
    (production_keys / "index.bin").unlink()
    keys.key_provider_reset()
    # then the check names it, and tokenising refuses rather than computing indexes under a new key
    assert [message for message in _check_errors() if "card-index" in message]
    with pytest.raises(VaultKeyError, match="card-index"):
        services.card_tokenize(card_number=VISA, exp_month=EXP_MONTH, exp_year=EXP_YEAR, merchant_id="m-prod")
    assert not (production_keys / "index.bin").exists()


def test_create_keys_first_install_then_check_passes(production_keys):
    out = io.StringIO()
    call_command("create_keys", stdout=out)
    assert "created: kek, card-index, pii-index, idempotency" in out.getvalue()
    assert _check_errors() == []
    assert sorted(path.name for path in production_keys.iterdir()) == [
        "idempotency.bin",
        "index-pii.bin",
        "index.bin",
        "kek.json",
    ]
    # and running it again creates nothing
    again = io.StringIO()
    call_command("create_keys", stdout=again)
    assert "nothing created" in again.getvalue()


def test_development_missing_keys_created_with_warning(isolated_keys, settings, caplog):
    settings.VAULT_KEYS_CREATE_MISSING = True
    keys.key_provider_reset()
    with caplog.at_level(logging.WARNING, logger="vault.keys"):
        keys.key_provider().prf("card-index")
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("KEK keyset" in message and "NEW" in message for message in warnings)
    assert any("card-index" in message for message in warnings)
    assert (isolated_keys / "kek.json").exists()
    assert (isolated_keys / "index.bin").exists()
    assert _check_errors() == []


def test_card_and_pii_blind_indexes_use_different_keys(isolated_keys):
    # the same bytes through the card index and the PII index give unrelated values
    provider = keys.key_provider()
    data = b"card:m-1:4242424242424242"
    assert provider.prf("card-index").compute(data, 32) != provider.prf("pii-index").compute(data, 32)
    assert blind_index("4242424242424242", context="x") != provider.prf("card-index").compute(
        b"pii:x:4242424242424242", 32
    )
    assert blind_index("4242424242424242", context="x") == provider.prf("pii-index").compute(
        b"pii:x:4242424242424242", 32
    )


def test_create_keys_upgrade_recomputes_pii_indexes_under_new_key(production_keys):
    # given an installation from before PII had its own key: its e-mail index computed under the card index key
    call_command("create_keys", stdout=io.StringIO())
    customer = customer_register(name="Hanako Sato", email="hanako@example.org", actor="test")
    old_index = keys.key_provider().prf("card-index").compute(b"pii:accounts.customer.email:hanako@example.org", 32)
    Customer.objects.filter(pk=customer.pk).update(email_index=old_index)
    (production_keys / "index-pii.bin").unlink()
    keys.key_provider_reset()
    assert any("pii-index" in message for message in _check_errors())
    # when the upgrade's create_keys runs
    out = io.StringIO()
    call_command("create_keys", stdout=out)
    # then it made the PII key, recomputed the index, and the customer is found by e-mail again
    assert "created: pii-index" in out.getvalue()
    assert "PII blind indexes recomputed: 1 row(s)" in out.getvalue()
    assert bytes(Customer.objects.get(pk=customer.pk).email_index) != old_index
    assert customer_get_by_email(email="Hanako@example.org").pk == customer.pk
    # and a rerun of the recompute changes nothing
    rerun = io.StringIO()
    call_command("reindex_pii", stdout=rerun)
    assert "recomputed: 0 row(s)" in rerun.getvalue()


def test_rotate_keys_rewraps_every_prf_key(isolated_keys, cards, tokenize):
    # given all the PRF keys in use
    provider = keys.key_provider()
    before = {name: provider.prf(name).compute(b"x", 32) for name in keys.PRF_KEYS}
    # when the KEK is rotated and the old key retired
    _rotate("--retire")
    keys.key_provider_reset()
    # then each PRF key is wrapped by the new primary and computes what it did
    provider = keys.key_provider()
    for name in keys.PRF_KEYS:
        assert keys.key_id_of(provider.prf_path(name).read_bytes()) == provider.primary_key_id()
        assert provider.prf(name).compute(b"x", 32) == before[name]
