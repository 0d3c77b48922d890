from tests.ledger.conftest import customer_account, merchant_account  # noqa: F401 - shared fixtures
