"""Production mode: `DJANGO_ENV=production manage.py check --deploy` passes with no warning, and what
production must not run with (no SECRET_KEY, the development one, DEBUG, missing vault keys) stops it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """A production environment on this machine's servers (no embedded ones), keys in a directory of its own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "SECURE_", "VAULT_")) and name not in {"DEBUG", "SECRET_KEY"}
    }
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="example.com",
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
        VAULT_KEYS_DIR=str(tmp_path / "keys"),
    )
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - this interpreter and the project's manage.py
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_check_deploy_passes_without_warnings(production_env):
    # given a first install's keys
    created = _manage(production_env, "create_keys")
    assert created.returncode == 0, created.stderr
    # when the deployment checks run
    result = _manage(production_env, "check", "--deploy")
    # then they pass and warn of nothing
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output
    assert ".W0" not in output
    assert "no issues" in output


def test_production_check_behind_proxy_passes(production_env):
    production_env["SECURE_PROXY_SSL_HEADER"] = "HTTP_X_FORWARDED_PROTO"
    assert _manage(production_env, "create_keys").returncode == 0
    result = _manage(production_env, "check", "--deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set in production"),
        ({"SECRET_KEY": "insecure-development-key-" + "x" * 60}, "SECRET_KEY must be set in production"),
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY must be set in production"),
        ({"DEBUG": "1"}, "DEBUG must be off in production"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must name the production host names"),
        ({"DJANGO_ENV": "prod"}, "DJANGO_ENV must be"),
    ],
    ids=["no-secret-key", "development-secret-key", "short-secret-key", "debug", "no-allowed-hosts", "unknown-env"],
)
def test_production_refuses_unsafe_settings(production_env, change, message):
    production_env.update(change)
    result = _manage(production_env, "check", "--deploy")
    assert result.returncode != 0
    assert message in result.stderr


def test_production_missing_vault_keys_refused_by_check(production_env):
    # given a production deploy without its key volume
    result = _manage(production_env, "check")
    # then the check fails naming the missing KEK, and no key was created
    assert result.returncode != 0
    assert "vault.E011" in result.stderr
    assert "KEK keyset" in result.stderr
    assert not Path(production_env["VAULT_KEYS_DIR"], "kek.json").exists()


def test_production_wsgi_application_refuses_to_load_without_vault_keys(production_env):
    # a WSGI server runs no system checks: the application module itself refuses
    load = (sys.executable, "-c", "import fintech.wsgi")
    missing = subprocess.run(load, cwd=BASE_DIR, env=production_env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert missing.returncode != 0
    assert "vault.E011" in missing.stderr
    assert _manage(production_env, "create_keys").returncode == 0
    present = subprocess.run(load, cwd=BASE_DIR, env=production_env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert present.returncode == 0, present.stderr
