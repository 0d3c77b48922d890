"""System checks of the vault: in production, missing keys stop `manage.py check`, `migrate` and the server
before they can create new ones and make every vaulted card unreadable."""

from django.conf import settings
from django.core import checks


@checks.register("vault")
def vault_keys_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.VAULT_KEYS_CREATE_MISSING:
        return []  # development: a missing key is created on first use, with a WARNING in the log
    from vault import keys

    try:
        missing = keys.key_provider().missing()
    except Exception as error:  # noqa: BLE001 - an unreadable key store is reported, not a traceback
        return [checks.Error(f"the vault's keys cannot be read: {type(error).__name__}", id="vault.E010")]
    return [
        checks.Error(
            f"{what} is missing",
            hint=(
                "restore the key volume (or VAULT_KEK_KEYSET) of this installation; on a first install or an "
                "upgrade that introduced the key, run `manage.py create_keys`"
            ),
            id="vault.E011",
        )
        for what in missing
    ]
