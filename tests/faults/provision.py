"""`python -m tests.faults.provision`, run by the fault suite in one Django process on its own database (as its
owner): migrate, create the vault's keys, set up the application's least-privilege role (as `make run` does),
and issue the API tokens of a merchant and of the finance role. Prints them, and the names of the registered
projections, as JSON on the last line."""

from __future__ import annotations

import io
import json
import os
import sys

MERCHANT_ID = "m-faults"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.services import api_token_issue
    from projections.engine import projections
    from vault.services import role_groups_ensure

    call_command("migrate", interactive=False, verbosity=0)
    call_command("create_keys", verbosity=0)
    # The role's password comes from DATABASE_APP_PASSWORD; its list of grants is not worth printing.
    call_command("db_roles_setup", app_role=os.environ["FAULTS_APP_ROLE"], stdout=io.StringIO())
    role_groups_ensure()
    tokens = {
        "merchant": api_token_issue(username="faults-merchant", merchant_id=MERCHANT_ID),
        "finance": api_token_issue(username="faults-finance", group="finance"),
    }
    sys.stdout.write(json.dumps({"tokens": tokens, "projections": sorted(projections())}) + "\n")


if __name__ == "__main__":
    main()
