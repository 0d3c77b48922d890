"""Command throughput of the payments service layer against the same work written by hand with psycopg.

`python -m tests.bench` (or `make bench`) creates a dedicated database `<name>_bench` on the server the Django
settings point at (DATABASE_URL, or the embedded server under `.data/`), migrates it, vaults a card per client
merchant, then runs initiate → authorize → capture payments with 1 and 8 client processes through each
implementation, interleaved, and prints events/s side by side with the ratio. Both implementations send the
same statements (counted on each client's psycopg connection, and on the server) and do the same vault crypto.
Then the vault's tokenise / detokenise rates beside raw Tink AEAD, the read side beside raw scans and Redis GETs,
and last the ledger: transfers/s of `ledger.services.transfer_create` beside the same locking and inserts by
hand, between customer balances of a shared pool (`ledger.py`). `--help` lists the options.
"""
