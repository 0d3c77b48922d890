import os

from django.core.management.base import BaseCommand, CommandError

from fintech.db_roles import DbRoleError, db_roles_setup


class Command(BaseCommand):
    help = (
        "Create or update the application's database role and grant it least privilege: no UPDATE, DELETE or "
        "TRUNCATE on the event store, the ledger and the audit, no DDL, no trigger control. Run it as the owner "
        "of the tables (the role that migrates), after every migrate; running it again is harmless. The password "
        "comes from --password or DATABASE_APP_PASSWORD; without one the role's password is left as it is."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app-role", default="fintech_app")
        parser.add_argument("--password", default=None)
        parser.add_argument("--nologin", action="store_true", help="a group role (NOLOGIN) to grant to login roles")

    def handle(self, *args, app_role, password, nologin, **options):
        try:
            granted = db_roles_setup(
                app_role=app_role, password=password or os.environ.get("DATABASE_APP_PASSWORD"), login=not nologin
            )
        except DbRoleError as error:
            raise CommandError(str(error)) from None
        for table, privileges in granted.items():
            self.stdout.write(f"{table}: {privileges}", style_func=None)
        self.stdout.write(f"role {app_role}: {len(granted)} tables")
