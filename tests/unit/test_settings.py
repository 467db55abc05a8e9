import pytest
from pydantic import ValidationError

from mailwarden.settings import Settings, normalize_database_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("mysql://u@h/db", "mysql+pymysql://u@h/db"),
        ("mariadb://u@h/db", "mariadb+pymysql://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////var/lib/mail.db", "sqlite:////var/lib/mail.db"),
    ],
)
def test_it_gives_plain_urls_the_installed_driver(url, expected):
    assert normalize_database_url(url) == expected


def test_it_uses_an_sqlite_file_when_nothing_is_set(monkeypatch, tmp_path):
    monkeypatch.delenv("MAILWARDEN_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = Settings()
    assert settings.effective_database_url == f"sqlite:///{tmp_path}/mailwarden/mailwarden.db"


def test_it_reads_a_toml_file_below_the_environment(monkeypatch, tmp_path):
    config = tmp_path / "mailwarden.toml"
    config.write_text(
        'database_url = "postgresql://mail@db/mail"\npassword_scheme = "ARGON2ID"\n'
        "password_min_length = 12\n"
    )
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(config))
    monkeypatch.setenv("MAILWARDEN_PASSWORD_MIN_LENGTH", "14")
    monkeypatch.delenv("MAILWARDEN_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.effective_database_url == "postgresql+psycopg://mail@db/mail"
    assert settings.password_scheme == "ARGON2ID"
    assert settings.password_min_length == 14


def test_it_refuses_unknown_keys_in_the_config_file(monkeypatch, tmp_path):
    config = tmp_path / "mailwarden.toml"
    config.write_text('databse_url = "typo"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(config))
    with pytest.raises(ValidationError, match="databse_url"):
        Settings()


def test_it_refuses_a_missing_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError):
        Settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password_scheme", "SSHA512"),
        ("password_scheme", "PLAIN"),
        ("maildir_template", "/var/mail/{local_part}"),
        ("maildir_template", "{domain}/../{local_part}"),
        ("maildir_template", "{domain}/"),
        ("password_min_length", 0),
    ],
)
def test_it_refuses_unsafe_settings_at_start(field, value, monkeypatch):
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    with pytest.raises(ValidationError):
        Settings(**{field: value})
