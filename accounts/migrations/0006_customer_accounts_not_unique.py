from django.db import migrations

# A customer may hold several accounts of a kind in a currency; a merchant's payable account (where payments are
# booked) and the company's accounts stay one per kind and currency. The ledger tables are unmanaged, so the
# change is SQL here and in the model's Meta for the reader.
PARTIAL_SQL = """
ALTER TABLE accounts_account DROP CONSTRAINT accounts_account_one_per_owner_kind;
CREATE UNIQUE INDEX accounts_account_one_per_owner_kind ON accounts_account (owner_type, owner_id, kind, currency)
    WHERE owner_type IN ('company', 'merchant');
"""

WHOLE_SQL = """
DROP INDEX accounts_account_one_per_owner_kind;
ALTER TABLE accounts_account ADD CONSTRAINT accounts_account_one_per_owner_kind
    UNIQUE (owner_type, owner_id, kind, currency);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_finance_role"),
    ]

    operations = [migrations.RunSQL(PARTIAL_SQL, WHOLE_SQL)]
