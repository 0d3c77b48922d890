def test_settings_use_postgresql_outcome(settings):
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
