"""The domain modules and the kernel's pure modules load no framework, checked in a fresh interpreter: what a
contract checker sees statically misses a package __init__ that imports one at run time."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

FRAMEWORKS = ("django", "rest_framework", "psycopg", "celery", "kombu", "redis", "django_redis")
PURE_KERNEL = ("fintech.events", "fintech.money")
DOMAINS = tuple(f"{path.parent.name}.domain" for path in sorted(Path(settings.BASE_DIR).glob("*/domain.py")))


def _frameworks_loaded_by(module: str) -> list[str]:
    probe = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(FRAMEWORKS)!r}))))"
    )
    # -I would drop the project from sys.path; a clean environment without DJANGO_SETTINGS_MODULE is enough.
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed probe
        [sys.executable, "-c", probe],
        cwd=settings.BASE_DIR,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_every_app_has_its_domain_module_checked():
    assert {"payments.domain", "vault.domain", "accounts.domain"} <= set(DOMAINS)


@pytest.mark.parametrize("module", DOMAINS + PURE_KERNEL)
def test_module_loads_no_framework(module):
    assert _frameworks_loaded_by(module) == []
