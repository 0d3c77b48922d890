"""Vault throughput beside the raw AEAD it is built on, in one process, interleaved over rounds.

tokenise = validate + blind index + new data key, wrapped by the KEK + encrypt + INSERT; detokenise = SELECT
+ unwrap + decrypt + audit INSERT. The raw figures are one Tink AES256_GCM encrypt / decrypt of the same
16-digit number with the same associated data, no database: the ratio shows what the vault's key handling and
its table cost on top of the cipher. Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

import tink
from tink import aead

MERCHANT = "bench-vault"


def _luhn_complete(prefix: str) -> str:
    total = 0
    for position, char in enumerate(reversed(prefix + "0")):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return prefix + str((10 - total % 10) % 10)


def _numbers(seed: int) -> itertools.count:
    rng = random.Random(seed)  # noqa: S311 - test card numbers, not secrets
    return (_luhn_complete("4" + "".join(rng.choice("0123456789") for _ in range(14))) for _ in itertools.count())


def _rate(operation: Callable[[], object], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - started)


def run(*, seconds: float, rounds: int, out: Callable[[str], None]) -> None:
    from vault import services

    numbers = _numbers(seed=7)
    actor = services.SystemActor("bench")
    tokens: list[str] = []

    def tokenize() -> None:
        card = services.card_tokenize(card_number=next(numbers), exp_month=12, exp_year=2040, merchant_id=MERCHANT)
        tokens.append(card.token)

    cycle = itertools.count()

    def detokenize() -> None:
        services.card_detokenize(token=tokens[next(cycle) % len(tokens)], purpose="bench", actor=actor)

    primitive = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    plaintext, context = b"4242424242424242", b"vault.card:tok_benchbenchbenchbench1234:number"
    ciphertext = primitive.encrypt(plaintext, context)

    rates: dict[str, list[float]] = {"tokenise": [], "detokenise": [], "raw encrypt": [], "raw decrypt": []}
    for _ in range(rounds):
        rates["tokenise"].append(_rate(tokenize, seconds))
        rates["raw encrypt"].append(_rate(lambda: primitive.encrypt(plaintext, context), seconds))
        rates["detokenise"].append(_rate(detokenize, seconds))
        rates["raw decrypt"].append(_rate(lambda: primitive.decrypt(ciphertext, context), seconds))

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    out("")
    out("vault, 1 client (median of rounds)")
    out(f"{'operation':<12}{'vault ops/s':>14}{'raw AEAD ops/s':>17}{'ratio':>10}")
    for name, raw in (("tokenise", "raw encrypt"), ("detokenise", "raw decrypt")):
        vault_rate, raw_rate = median(rates[name]), median(rates[raw])
        out(f"{name:<12}{vault_rate:>14,.0f}{raw_rate:>17,.0f}{vault_rate / raw_rate:>10.4f}")
