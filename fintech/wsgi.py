import os

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
application = get_wsgi_application()

# A WSGI server runs no system checks of its own: refuse to serve without the vault's keys (production), as
# runserver and `manage.py check` do, rather than answering every vault request with an error.
_key_errors = [error for error in checks.run_checks(tags=["vault"]) if error.is_serious()]
if _key_errors:
    raise ImproperlyConfigured("; ".join(f"{error.msg} ({error.id})" for error in _key_errors))
