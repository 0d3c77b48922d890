"""Least privilege: connected as the application's role (made by `db_roles_setup`), nothing can disable a
trigger, alter a table or rewrite the event store, the ledger or the audit, while the app's commands work.

Roles are global to the cluster: each test makes one of its own, with a unique name, and drops it after."""

from __future__ import annotations

import contextlib
import io
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts import services as accounts_services
from fintech import eventstore
from fintech.money import Money
from fintech.run import url_as
from fintech.services import idempotency_records_purge
from ledger import services
from ledger.domain import AccountKind
from projections.balances import BALANCES
from projections.engine import projection_run
from projections.services import projection_replay
from tests.accounts.helpers import customer_details
from tests.fintech.helpers import AGGREGATE_TYPE, KernelNoted
from tests.vault.helpers import VISA
from vault import services as vault_services

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = "user:db-roles-test"


@pytest.fixture
def app_role(transactional_db) -> Iterator[tuple[str, str]]:
    """A login role of this test's own, set up as the application's; dropped at teardown."""
    name, password = f"fintech_app_{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(24)
    out = io.StringIO()
    call_command("db_roles_setup", "--app-role", name, f"--password={password}", stdout=out)
    assert f"role {name}:" in out.getvalue()
    yield name, password
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {name}")
        cursor.execute(f"DROP ROLE {name}")


def _connect(role: str, password: str) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=role,
        password=password,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=True,
    )


@contextlib.contextmanager
def _django_as(role: str, password: str) -> Iterator[None]:
    """Django's default connection logged in as `role` for the block (the owner again afterwards)."""
    settings = connection.settings_dict
    saved = settings["USER"], settings["PASSWORD"]
    connection.close()
    settings["USER"], settings["PASSWORD"] = role, password
    try:
        yield
    finally:
        connection.close()
        settings["USER"], settings["PASSWORD"] = saved


@pytest.fixture
def funded_accounts():
    def open_(funded: int = 0):
        customer = accounts_services.customer_register(**customer_details(), actor=ACTOR)
        account = services.account_open(
            owner_type="customer",
            owner_id=str(customer.id),
            currency="JPY",
            kind=AccountKind.CUSTOMER_BALANCE,
            actor=ACTOR,
        )
        if funded:
            services.account_deposit(account_id=account.id, amount=Money(funded, "JPY"), actor=ACTOR)
        return account

    return open_(5_000), open_()


FORBIDDEN = [
    "ALTER TABLE fintech_event DISABLE TRIGGER ALL",
    "ALTER TABLE fintech_event_default DISABLE TRIGGER USER",
    "ALTER TABLE accounts_posting DISABLE TRIGGER ALL",
    "ALTER TABLE vault_detokenizationaudit DISABLE TRIGGER ALL",
    "ALTER TABLE accounts_account ADD COLUMN extra int",
    "DELETE FROM fintech_event",
    "UPDATE fintech_event SET event_data = '{}'",
    "TRUNCATE fintech_event",
    "DELETE FROM fintech_event_default",
    "DELETE FROM fintech_stream",
    "TRUNCATE fintech_stream",
    "UPDATE accounts_posting SET amount = amount",
    "DELETE FROM accounts_posting",
    "DELETE FROM accounts_journalentry",
    "TRUNCATE accounts_journalentry",
    "UPDATE accounts_transfer SET reference = ''",
    "DELETE FROM vault_detokenizationaudit",
    "UPDATE vault_detokenizationaudit SET purpose = ''",
    "TRUNCATE vault_detokenizationaudit",
    "DELETE FROM fintech_staffaudit",
    "UPDATE fintech_staffaudit SET username = ''",
    "TRUNCATE fintech_staffaudit",
    "ALTER TABLE fintech_staffaudit DISABLE TRIGGER ALL",
    "CREATE TABLE fintech_intruder (id int)",
    "DROP TABLE fintech_idempotency",
    "SELECT setval('fintech_event_position_seq', 1)",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_app_role_cannot_rewrite_history_or_change_the_schema(app_role, funded_accounts, statement):
    # given events, postings and an audit row in the database
    vault_services.card_tokenize(card_number=VISA, exp_month=12, exp_year=2035, merchant_id="m-roles")
    # when the app role tries to alter, disable triggers, update, delete or truncate them
    with _connect(*app_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute(statement)
    # then PostgreSQL refuses on privileges (not a trigger that an owner could disable)
    assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value)


def test_app_role_stream_rows_written_only_by_appends(app_role, funded_accounts):
    # the app role may update fintech_stream's version (the append trigger does it as the inserting role), but
    # the stream's own guard refuses a direct update
    with _connect(*app_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="appending events"):
        conn.execute("UPDATE fintech_stream SET version = version + 1")


def test_app_role_runs_the_commands(app_role, funded_accounts):
    alice, bob = funded_accounts
    with _django_as(*app_role):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == app_role[0]
        # an event appended through the event store
        stream = uuid.uuid4()
        noted = KernelNoted(note="as the app", occurred_at=timezone.now())
        [recorded] = eventstore.append(stream, [noted], 0, aggregate_type=AGGREGATE_TYPE)
        assert eventstore.stream_version(stream) == 1
        assert [event.event_id for event in eventstore.load(stream)] == [recorded.event_id]
        # a transfer, with its entry, postings, transfer row and events
        transfer = services.transfer_create(
            from_account=alice.id, to_account=bob.id, amount=Money(1_200, "JPY"), reference="r", actor=ACTOR
        )
        assert transfer.amount == 1_200
        # a card vaulted and detokenised (the audit row inserted)
        card = vault_services.card_tokenize(card_number=VISA, exp_month=12, exp_year=2035, merchant_id="m-app")
        number = vault_services.card_detokenize(
            token=card.token, purpose="check", actor=vault_services.SystemActor("test")
        )
        assert number == VISA
        # the projections and the idempotency purge
        assert projection_run(name=BALANCES, wait=True) > 0
        idempotency_records_purge()
    with connection.cursor() as cursor:
        cursor.execute("SELECT available FROM accounts_account WHERE id = %s", [bob.id])
        assert cursor.fetchone()[0] == 1_200


def test_replayed_projection_table_keeps_app_role_privileges(app_role, funded_accounts):
    # when the owner replays a read model (its tables rebuilt and swapped in)
    projection_replay(name=BALANCES)
    # then the app role can still write them
    with _connect(*app_role) as conn:
        conn.execute("UPDATE projections_balance SET owner_id = owner_id WHERE false")
        conn.execute("DELETE FROM projections_balance WHERE false")


def test_db_roles_setup_is_idempotent_and_refuses_the_owner(app_role):
    out = io.StringIO()
    call_command("db_roles_setup", "--app-role", app_role[0], stdout=out)
    assert "fintech_event: SELECT, INSERT" in out.getvalue()
    assert "accounts_posting: SELECT, INSERT" in out.getvalue()
    assert "fintech_idempotency: SELECT, INSERT, UPDATE, DELETE" in out.getvalue()
    with _connect(*app_role) as conn:
        conn.execute("SELECT count(*) FROM fintech_event")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="must not be the owner"):
        call_command("db_roles_setup", "--app-role", owner)


@pytest.mark.parametrize(
    ("owner", "app"),
    [
        ("postgresql://postgres@127.0.0.1:5432/fintech", "postgresql://fintech_app:p%2Fw@127.0.0.1:5432/fintech"),
        ("postgresql://postgres:@/fintech?host=/tmp/pg", "postgresql://fintech_app:p%2Fw@/fintech?host=/tmp/pg"),
        ("postgresql://u:secret@db:5432/x?sslmode=require", "postgresql://fintech_app:p%2Fw@db:5432/x?sslmode=require"),
    ],
)
def test_run_serves_as_the_app_role_on_the_owners_database(owner, app):
    # make run migrates with the owner's URL and serves with the same database as the app role
    assert url_as(owner, user="fintech_app", password="p/w") == app
