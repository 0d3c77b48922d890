"""`python -m tests.bench`: service layer vs hand-written SQL, 1 and 8 client processes, printed side by side."""

from __future__ import annotations

import argparse
import collections
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field

from tests.bench import database, ledger
from tests.bench.database import Work, describe, describe_tables
from tests.bench.handsql import VaultKeys
from tests.bench.worker import (
    HAND_SQL,
    SERVICE,
    TARGET_CLIENTS,
    ClientSpec,
    client_main,
    spawn_clients,
    target_verdict,
)

WARM_PAYMENTS = 5  # psycopg's prepare_threshold
VAULT_SECONDS = 2.0  # at most, per vault measurement
READ_SECONDS = 1.0  # at most, per read-side measurement
PROJECTION_EVENTS = 100_000
ARCHIVE_EVENTS = 100_000
SERVE_SECONDS = 3.0  # at most, per wrk run
IMPORT_PAYMENTS = 10_000
SCALE_EVENTS = [100_000, 1_000_000]


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Totals:
    payments: int = 0
    seconds: float = 0.0
    rounds: list[float] = field(default_factory=list)  # events/s of each round

    @property
    def events_per_second(self) -> float:
        return 3 * self.payments / self.seconds if self.seconds else 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Command throughput of the payments service layer (events/s) and of the ledger's transfers "
        "(transfers/s) against the same SQL by hand, then the vault and the read side beside their raw parts.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--seconds", type=float, default=4.0, help="duration of each measurement (default 4)")
    mode.add_argument(
        "--payments",
        type=int,
        help="payments (in the ledger section, transfers) per client in each measurement, instead of --seconds",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the four runs (default 3)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="client processes (default 1 8)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help=f"unmeasured payments per client first (default 3; transfers: at least {ledger.WARM_TRANSFERS})",
    )
    sections = parser.add_mutually_exclusive_group()
    sections.add_argument("--skip-projections", action="store_true", help="leave out the read-side section")
    sections.add_argument(
        "--projections-only", action="store_true", help="only the read-side section (no commands, no vault, no ledger)"
    )
    sections.add_argument(
        "--ledger-only", action="store_true", help="only the ledger section (no payments, no vault, no read side)"
    )
    sections.add_argument("--archive-only", action="store_true", help="only the archive section")
    sections.add_argument(
        "--serve-only", action="store_true", help="only the read path through the production server (wrk)"
    )
    parser.add_argument("--skip-serve", action="store_true", help="leave out the production server's read path")
    sections.add_argument("--import-only", action="store_true", help="only the import_payments section")
    sections.add_argument("--scale-only", action="store_true", help="only the costs against the log's size")
    sections.add_argument(
        "--webhooks-only", action="store_true", help="only the webhook deliveries and event bus section"
    )
    parser.add_argument(
        "--skip-webhooks", action="store_true", help="leave out the webhook deliveries and event bus section"
    )
    parser.add_argument(
        "--webhook-payments",
        type=int,
        default=300,
        help="captured payments per round in the webhooks section, three deliveries each (default 300)",
    )
    parser.add_argument("--skip-scale", action="store_true", help="leave out the costs against the log's size")
    parser.add_argument(
        "--scale-events",
        type=int,
        nargs="+",
        default=SCALE_EVENTS,
        help="log sizes the size-bound costs are measured at (default 100,000 and 1,000,000)",
    )
    parser.add_argument("--skip-import", action="store_true", help="leave out the import_payments section")
    parser.add_argument(
        "--import-payments",
        type=int,
        default=IMPORT_PAYMENTS,
        help=f"payments in the imported file (default {IMPORT_PAYMENTS:,})",
    )
    parser.add_argument("--skip-archive", action="store_true", help="leave out the archive section")
    parser.add_argument(
        "--archive-events",
        type=int,
        default=ARCHIVE_EVENTS,
        help=f"events in the archived month (default {ARCHIVE_EVENTS:,})",
    )
    parser.add_argument("--skip-ledger", action="store_true", help="leave out the ledger section")
    parser.add_argument(
        "--ledger-accounts",
        type=int,
        default=ledger.ACCOUNTS,
        help=f"customer accounts in the pool the ledger clients share (default {ledger.ACCOUNTS})",
    )
    parser.add_argument(
        "--projection-events",
        type=int,
        default=PROJECTION_EVENTS,
        help=f"events appended for the projection catch-up (default {PROJECTION_EVENTS:,})",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or min(args.clients) < 1 or (args.payments is not None and args.payments < 1):
        parser.error("rounds, clients and payments must be positive, warmup not negative")
    if args.projection_events < 1:
        parser.error("--projection-events must be positive")
    if args.skip_ledger and (args.ledger_only or args.projections_only):
        parser.error("--skip-ledger goes with neither --ledger-only nor --projections-only")
    if args.ledger_accounts < 2:
        parser.error("--ledger-accounts must be 2 or more")
    return args


def run_clients(spec: ClientSpec, clients: int) -> tuple[int, float, list[uuid.UUID]]:
    """Start `clients` processes, release them together; returns (payments, wall seconds, all payment ids)."""
    collected, seconds = spawn_clients(client_main, spec, clients)
    ids = [uuid.UUID(bytes=r.payment_ids[i : i + 16]) for r in collected for i in range(0, len(r.payment_ids), 16)]
    return sum(r.payments for r in collected), seconds, ids


def vault_keys_of_settings() -> VaultKeys:
    """The service's KEK, as the settings place it, for the hand clients (which never import Django)."""
    from django.conf import settings

    return VaultKeys(
        provider=settings.VAULT_KEY_PROVIDER,
        directory=str(settings.VAULT_KEYS_DIR),
        keyset_json=settings.VAULT_KEK_KEYSET,
        aws_kms_key_uri=settings.VAULT_AWS_KMS_KEY_URI,
    )


def card_tokens(merchant_prefix: str, clients: int) -> tuple[str, ...]:
    """Vault the test card once for each client's merchant (`<prefix>-<index>`), before the clients start."""
    from django.db import connection

    from tests.bench import service

    try:
        return tuple(service.card_token(merchant_id=f"{merchant_prefix}-{index}") for index in range(clients))
    finally:
        connection.close()


def work_per_payment(conninfo: str, vault_keys: VaultKeys) -> dict[str, Work]:
    """What one payment costs the database through each implementation, counted the same way: statements on
    the client's psycopg connection, transactions and table work on the server. After WARM_PAYMENTS unmeasured
    payments, so that psycopg has prepared every statement (its prepare is a round trip of its own)."""
    from django.db import connection

    from fintech.db import own_connection_close, raw_cursor_forget
    from tests.bench import service
    from tests.bench.handsql import HandWrittenPayments

    (token,) = card_tokens("m-bench-trace", 1)
    merchant = "m-bench-trace-0"

    # Both write the audit row on a second connection, closed after each measured payment: its backend then
    # leaves, flushing its counters, as the server-side figures need (the statements counted are the first
    # connection's).
    def service_pay() -> None:
        # Its statements go through cursors the counter made: not through the one raw_cursor kept from before.
        raw_cursor_forget()
        service.pay(merchant_id=merchant, token=token)
        own_connection_close()

    def hand_pay() -> None:
        hand.pay(merchant_id=merchant, token=token)
        hand.close_audit_connection()

    try:
        for _ in range(WARM_PAYMENTS):
            service.pay(merchant_id=merchant, token=token)
        connection.ensure_connection()
        service_work = database.measure_work(connection.connection, service_pay)
    finally:
        connection.close()
        own_connection_close()
    hand = HandWrittenPayments(conninfo, vault_keys)
    try:
        for _ in range(WARM_PAYMENTS):
            hand.pay(merchant_id=merchant, token=token)
        hand_work = database.measure_work(hand.conn, hand_pay)
    finally:
        hand.close()
    return {SERVICE: service_work, HAND_SQL: hand_work}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The bench measures the production configuration: no query logging, quiet logs.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    started = time.monotonic()

    bench = database.prepare()
    mode = f"{args.payments} payments per client" if args.payments else f"{args.seconds:g} s per run"
    version = database.server_version(bench.url)
    out(
        f"bench database {bench.name} on {bench.server or 'localhost'} (PostgreSQL {version}), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    out(f"{mode}, {args.rounds} interleaved rounds, {args.warmup} warm-up payments per client, spawned processes")

    sections = chosen_sections(args)
    if "commands" in sections:
        run_commands_and_vault(args, bench)
    if "projections" in sections:
        from tests.bench import projections  # on the bench database, in this process

        projections.run(
            url=bench.url,
            events=args.projection_events,
            seconds=min(args.seconds, READ_SECONDS),
            rounds=args.rounds,
            out=out,
        )
    transfers = 0
    if "ledger" in sections:
        transfers = ledger.run(
            url=bench.url,
            accounts=args.ledger_accounts,
            clients=args.clients,
            rounds=args.rounds,
            seconds=args.seconds,
            transfers=args.payments,
            warmup=args.warmup,
            out=out,
        )
    if "archive" in sections:
        from tests.bench import archive  # on the bench database, in this process

        archive.run(url=bench.url, events=args.archive_events, rounds=args.rounds, out=out)
    if "import" in sections:
        from tests.bench import imports  # on the bench database, in this process

        imports.run(url=bench.url, payments=args.import_payments, rounds=args.rounds, out=out)
    if "serve" in sections:
        from tests.bench import serve  # fixtures on the bench database, then a server of its own

        serve.run(url=bench.url, seconds=min(args.seconds, SERVE_SECONDS), rounds=args.rounds, out=out)
    if "webhooks" in sections:
        from tests.bench import webhooks  # on the bench database, in this process, and a receiver of its own

        webhooks.run(payments=args.webhook_payments, rounds=args.rounds, out=out)
        from tests.bench import bus  # the relay to the machine's RabbitMQ, in this process

        bus.run(payments=args.webhook_payments, rounds=args.rounds, out=out)
    if "scale" in sections:
        from tests.bench import scale  # on the bench database, in this process; last: it fills the log

        scale.run(url=bench.url, sizes=sorted(args.scale_events), out=out)
    out()
    if "commands" in sections:
        out("all payments verified (3 events, stream at version 3, one granted detokenisation audit row)")
    if transfers:
        out(
            f"all {transfers:,} transfers verified (entry of two postings summing to zero, transfer row, three "
            "events); after each run every balance equal to its postings and to its stream's last event, totals kept"
        )
    out(f"total time {time.monotonic() - started:.0f} s")
    return 0


SECTIONS = ("commands", "projections", "ledger", "archive", "import", "serve", "webhooks", "scale")


def chosen_sections(args: argparse.Namespace) -> set[str]:
    """The sections to run: the one an --X-only names, else all but those a --skip-X names (--skip-projections
    and --skip-ledger also leave out what runs with them)."""
    only = {
        "projections": args.projections_only,
        "ledger": args.ledger_only,
        "archive": args.archive_only,
        "serve": args.serve_only,
        "import": args.import_only,
        "scale": args.scale_only,
        "webhooks": args.webhooks_only,
    }
    named = {section for section, chosen in only.items() if chosen}
    if named:
        return named
    skipped = {
        "projections": args.skip_projections,
        "ledger": args.skip_ledger,
        "archive": args.skip_archive,
        "serve": args.skip_serve,
        "import": args.skip_import,
        "scale": args.skip_scale,
        "webhooks": args.skip_webhooks,
    }
    return {section for section in SECTIONS if not skipped.get(section, False)}


def run_commands_and_vault(args: argparse.Namespace, bench: database.BenchDatabase) -> None:
    """Command throughput, service layer against hand-written SQL, then the vault beside raw AEAD."""
    vault_keys = vault_keys_of_settings()
    work = work_per_payment(bench.url, vault_keys)
    for implementation in (SERVICE, HAND_SQL):
        out(f"statements per payment, {implementation + ':':<9} {describe(work[implementation])}")
    if work[SERVICE].transactions is not None:
        same = "the same" if work[SERVICE].tables == work[HAND_SQL].tables else "DIFFERENT"
        out(f"  per table (partitions summed), scans/rows in/updated ({same}): {describe_tables(work[SERVICE])}")
        if same != "the same":
            out(f"  hand SQL: {describe_tables(work[HAND_SQL])}")
    out()

    totals: dict[tuple[str, int], Totals] = collections.defaultdict(Totals)
    for round_number in range(args.rounds):
        # Alternate which implementation goes first, so drift (table growth, autovacuum) is shared.
        order = (SERVICE, HAND_SQL) if round_number % 2 == 0 else (HAND_SQL, SERVICE)
        merchant_prefix = f"m-bench-r{round_number}"
        # Client i of either implementation pays for merchant `<prefix>-i` with the card vaulted here.
        tokens = card_tokens(merchant_prefix, max(args.clients))
        for clients in args.clients:
            for implementation in order:
                spec = ClientSpec(
                    implementation=implementation,
                    conninfo=bench.url,
                    merchant_id=merchant_prefix,
                    payments=args.payments,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    tokens=tokens,
                    vault_keys=vault_keys,
                )
                audits_after = database.audit_high_water(bench.url)
                payments, seconds, ids = run_clients(spec, clients)
                database.verify(bench.url, ids, audits_after=audits_after, tokens=tokens)
                database.verify_through_service(ids[:: max(1, len(ids) // 20)])
                total = totals[(implementation, clients)]
                total.payments += payments
                total.seconds += seconds
                total.rounds.append(3 * payments / seconds)
                out(
                    f"round {round_number + 1}/{args.rounds}  {implementation:<8}  {clients} clients  "
                    f"{payments:>6} payments in {seconds:6.2f} s  {3 * payments / seconds:8.0f} events/s  verified"
                )

    out()
    out(f"{'clients':<8} {'service events/s':>17} {'hand SQL events/s':>18} {'ratio':>6}   ratio in each round")
    for clients in args.clients:
        service, hand = totals[(SERVICE, clients)], totals[(HAND_SQL, clients)]
        paired = " ".join(f"{s / h:.2f}" for s, h in zip(service.rounds, hand.rounds, strict=True))
        ratio = service.events_per_second / hand.events_per_second
        out(f"{clients:<8} {service.events_per_second:>17.0f} {hand.events_per_second:>18.0f} {ratio:>6.2f}   {paired}")
    out()
    if TARGET_CLIENTS in args.clients:
        service, hand = totals[(SERVICE, TARGET_CLIENTS)], totals[(HAND_SQL, TARGET_CLIENTS)]
        out(target_verdict("payments (service layer)", service.rounds, hand.rounds))
        out()

    from tests.bench import vault  # on the bench database, in this process

    vault.run(seconds=min(args.seconds, VAULT_SECONDS), rounds=args.rounds, out=out)


if __name__ == "__main__":
    sys.exit(main())
