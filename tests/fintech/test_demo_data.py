from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)


def test_load_demo_data_loads_once_with_payments_and_ledger_accounts():
    from ledger.models import Account

    out = StringIO()
    call_command("load_demo_data", stdout=out)
    text = out.getvalue()
    assert "finance API token" in text
    accounts = text.split("customer accounts")[1].split()[:2]
    balances = {str(a.id): a.available for a in Account.objects.filter(id__in=accounts)}
    assert sorted(balances.values()) == [12_000, 38_000]
    again = StringIO()
    call_command("load_demo_data", stdout=again)
    assert "already loaded" in again.getvalue()
