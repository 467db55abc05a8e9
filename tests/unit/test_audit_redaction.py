from mailwarden.kernel.audit import REDACTED, redact
from mailwarden.kernel.unit_of_work import diff


def test_it_redacts_secrets_at_any_depth():
    values = {
        "address": "a@example.org",
        "password_hash": "{SHA512-CRYPT}$6$x$y",
        "nested": {"api_key": "mw_123", "totp_secret": "JBSWY3DP", "ok": 1},
    }
    clean = redact(values)
    assert clean == {
        "address": "a@example.org",
        "password_hash": REDACTED,
        "nested": {"api_key": REDACTED, "totp_secret": REDACTED, "ok": 1},
    }
    assert values["password_hash"].startswith("{SHA512")  # the input is not modified


def test_it_diffs_only_changed_fields():
    assert diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}
