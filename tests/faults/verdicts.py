"""`python -m tests.faults.verdicts`, run by the fault suite on its own servers: the ledger's and the projections'
own verdicts, `reconcile` and `projection_status`, in one Django process (each start costs seconds), printed as
JSON on the last line: {command: {"ok": bool, "output": text}}."""

from __future__ import annotations

import io
import json
import os
import sys

COMMANDS = ("projection_status", "reconcile")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
    import django

    django.setup()
    from django.core.management import CommandError, call_command

    verdicts = {}
    for command in COMMANDS:
        out = io.StringIO()
        try:
            call_command(command, stdout=out)
            ok = True
        except CommandError as error:
            out.write(f"CommandError: {error}\n")
            ok = False
        verdicts[command] = {"ok": ok, "output": out.getvalue()}
    sys.stdout.write(json.dumps(verdicts) + "\n")


if __name__ == "__main__":
    main()
