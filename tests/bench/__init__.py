"""Command throughput of the payments service layer against the same SQL written by hand with psycopg.

`python -m tests.bench` (or `make bench`) creates a dedicated database `<name>_bench` on the server the Django
settings point at (DATABASE_URL, or the embedded server under `.data/`), migrates it, then runs initiate →
authorize → capture payments with 1 and 8 client processes through each implementation, interleaved, and prints
events/s side by side with the ratio. `--help` lists the options.
"""
