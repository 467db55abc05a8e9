"""Rendering the Postfix and Dovecot files, without a database or a daemon.

What the daemons make of the files is proven in tests/integration (postmap, postconf,
doveconf, the queries on every backend); here: dialects, quoting, secrets and paths.
"""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.passwords import Scheme, verify_password
from mailwarden.settings import Settings
from mailwarden.stack.config import (
    Daemon,
    Difference,
    FileStatus,
    check_deployed,
    compare_deployed,
    file_mode,
    redact,
    render_dovecot,
    render_postfix,
    write_rendered,
)
from mailwarden.stack.dovecot import CONF_FRAGMENT, DICT_SQL, MASTER_USERS, SQL
from mailwarden.stack.postfix import MAIN_CF, MASTER_CF
from mailwarden.stack.target import POSTFIX_SPOOL, DeployTarget, TcpPort, UnixSocket

# Quotes, a backslash, `#`, `$` and a space: everything a config parser may take for syntax.
NASTY_PASSWORD = "p'a\"s s#w\\o$rd"
URLS = {
    "pgsql": "postgresql://mail:s3cret-pw@db.example:5433/mail",
    "mysql": "mysql://mail:s3cret-pw@127.0.0.1/mail",
    "sqlite": "sqlite:////var/lib/mailwarden/mail.db",
}
MAP_FILES = {
    "mailwarden/virtual_mailbox_domains.cf",
    "mailwarden/virtual_mailbox_maps.cf",
    "mailwarden/virtual_alias_domains.cf",
    "mailwarden/virtual_alias_maps.cf",
    "mailwarden/virtual_alias_mailboxes.cf",
    "mailwarden/virtual_alias_domain_maps.cf",
    "mailwarden/virtual_alias_domain_catchall_maps.cf",
    "mailwarden/relay_domains.cf",
    "mailwarden/transport_maps.cf",
    "mailwarden/smtpd_sender_login_maps.cf",
}


def settings_for(url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=url, password_scheme=Scheme.SHA256_CRYPT, **extra
    )


def production(settings: Settings) -> DeployTarget:
    return DeployTarget.production(settings)


def queries_of(files: dict[str, str]) -> list[str]:
    return [
        text.split("\nquery = ", 1)[1]
        for name, text in files.items()
        if name.startswith("mailwarden/")
    ]


# --- Postfix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", sorted(URLS))
def test_postfix_renders_every_file_in_the_dialect_of_the_database(
    driver: str, tmp_path: Path
) -> None:
    files = render_postfix(settings_for(URLS[driver], tmp_path), production(Settings()))
    assert set(files) == {MAIN_CF, MASTER_CF} | MAP_FILES
    queries = "\n".join(queries_of(files))
    if driver == "mysql":
        # `||` is a logical OR in MariaDB.
        assert "||" not in queries and "CONCAT(" in queries
    else:
        # SQLite has no concat() (before 3.44): `||` works on both.
        assert "CONCAT(" not in queries and "||" in queries
    if driver == "pgsql":
        assert "active = 1" not in queries and "d.active" in queries
    else:
        assert "active = 1" in queries and "backup_mx = 0" in queries
    for name in MAP_FILES:
        assert f"proxy:{driver}:/etc/postfix/{name}" in files[MAIN_CF]


def test_postfix_connection_lines_per_driver(tmp_path: Path) -> None:
    pgsql = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))
    lines = pgsql["mailwarden/virtual_alias_maps.cf"].splitlines()
    assert "hosts = inet:db.example:5433" in lines
    assert "user = mail" in lines and "dbname = mail" in lines
    assert "password = s3cret-pw" in lines
    socket_url = "postgresql://mail@/mail?host=/var/run/postgresql"
    local = render_postfix(settings_for(socket_url, tmp_path), production(Settings()))
    assert "hosts = unix:/var/run/postgresql" in local["mailwarden/relay_domains.cf"]
    mariadb = render_postfix(
        settings_for("mariadb://mail:pw@[::1]:3306/mail?charset=utf8mb4", tmp_path),
        production(Settings()),
    )
    assert "hosts = inet:[::1]:3306" in mariadb["mailwarden/relay_domains.cf"]


def test_sqlite_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = render_postfix(
        settings_for("sqlite:///relative/mail.db", tmp_path), production(Settings())
    )
    assert f"dbpath = {tmp_path}/relative/mail.db" in files["mailwarden/virtual_mailbox_maps.cf"]
    default = render_postfix(Settings(data_dir=tmp_path), production(Settings()))
    assert f"dbpath = {tmp_path}/mailwarden.db" in default["mailwarden/relay_domains.cf"]


def test_main_cf_holds_only_what_mailwarden_needs(tmp_path: Path) -> None:
    main = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))[MAIN_CF]
    settings = {line.split(" =")[0] for line in main.splitlines() if line and line[0].isalpha()}
    assert settings == {
        "virtual_mailbox_domains",
        "virtual_mailbox_maps",
        "virtual_transport",
        "virtual_alias_domains",
        "virtual_alias_maps",
        "relay_domains",
        "transport_maps",
        "smtpd_sasl_type",
        "smtpd_sasl_path",
        "smtpd_sender_login_maps",
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
        "mailwarden_submission_tls",
    }
    # Sockets below the spool are relative, so a chrooted service finds them too.
    assert "virtual_transport = lmtp:unix:private/dovecot-lmtp" in main
    assert "smtpd_sasl_type = dovecot" in main
    assert "smtpd_sasl_path = private/auth" in main
    assert "mailwarden_submission_tls = encrypt" in main
    assert "s3cret-pw" not in main
    # The alias tables in the order that makes a mailbox beat a catch-all.
    alias_maps = main.split("virtual_alias_maps =", 1)[1].split("\n\n", 1)[0]
    order = [word.rsplit("/", 1)[1].rstrip(",") for word in alias_maps.split()]
    assert order == [
        "virtual_alias_maps.cf",
        "virtual_alias_mailboxes.cf",
        "virtual_alias_domain_maps.cf",
        "virtual_alias_domain_catchall_maps.cf",
    ]
    assert main.startswith("# BEGIN mailwarden") and main.rstrip().endswith("# END mailwarden")


def test_endpoints_follow_the_target(tmp_path: Path) -> None:
    settings = settings_for(URLS["pgsql"], tmp_path)
    tcp = replace(
        production(Settings()),
        lmtp=TcpPort("127.0.0.1", 10024),
        sasl=TcpPort("::1", 10025),
        submission_service="127.0.0.1:10587",
    )
    files = render_postfix(settings, tcp)
    assert "virtual_transport = lmtp:inet:127.0.0.1:10024" in files[MAIN_CF]
    assert "smtpd_sasl_path = inet:[::1]:10025" in files[MAIN_CF]
    assert "\n127.0.0.1:10587 inet n" in files[MASTER_CF]
    outside = replace(production(Settings()), lmtp=UnixSocket(Path("/run/dovecot/lmtp")))
    assert (
        "virtual_transport = lmtp:unix:/run/dovecot/lmtp"
        in render_postfix(settings, outside)[MAIN_CF]
    )
    private_spool = replace(
        production(Settings()),
        postfix_spool=tmp_path / "spool",
        sasl=UnixSocket(tmp_path / "spool/private/auth"),
    )
    assert "smtpd_sasl_path = private/auth" in render_postfix(settings, private_spool)[MAIN_CF]


def test_submission_requires_auth_tls_and_owned_senders(tmp_path: Path) -> None:
    master = render_postfix(settings_for(URLS["sqlite"], tmp_path), production(Settings()))[
        MASTER_CF
    ]
    service = [line for line in master.splitlines() if line and not line.startswith("#")]
    assert service[0].split()[:2] == ["submission", "inet"]
    options = dict(line.split("-o ", 1)[1].split("=", 1) for line in service[1:])
    assert options["smtpd_sasl_auth_enable"] == "yes"
    assert options["smtpd_tls_security_level"] == "$mailwarden_submission_tls"
    assert options["smtpd_sender_restrictions"].endswith("reject_sender_login_mismatch")
    assert options["smtpd_client_restrictions"] == "permit_sasl_authenticated,reject"
    assert options["smtpd_relay_restrictions"] == "permit_sasl_authenticated,reject"


# --- Dovecot ---------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", sorted(URLS))
def test_dovecot_renders_every_file_in_the_dialect_of_the_database(
    driver: str, tmp_path: Path
) -> None:
    files = render_dovecot(settings_for(URLS[driver], tmp_path), production(Settings()))
    assert set(files) == {CONF_FRAGMENT, SQL, DICT_SQL}
    sql = files[SQL]
    assert f"driver = {driver}" in sql
    assert "default_pass_scheme = SHA256-CRYPT" in sql
    assert f"mailwarden-quota = {driver}:/etc/dovecot/{DICT_SQL}" in files[CONF_FRAGMENT]
    if driver == "mysql":
        assert "CONCAT('/var/vmail/', m.maildir) AS home" in sql and "||" not in sql
    else:
        assert "'/var/vmail/' || m.maildir AS home" in sql
    if driver == "sqlite":
        assert 'connect = "/var/lib/mailwarden/mail.db"' in sql


def test_the_fragment_wires_quota_sieve_and_the_listeners(tmp_path: Path) -> None:
    fragment = render_dovecot(settings_for(URLS["pgsql"], tmp_path), production(Settings()))[
        CONF_FRAGMENT
    ]
    for line in (
        "mail_location = maildir:~/Maildir",
        "mail_uid = vmail",
        "mail_plugins = $mail_plugins quota quota_clone",
        "  mail_plugins = $mail_plugins imap_quota",
        "  mail_plugins = $mail_plugins sieve",
        "  quota = count:User quota",
        "  quota_vsizes = yes",
        "  quota_clone_dict = proxy::mailwarden-quota",
        "  sieve = file:~/sieve;active=~/.dovecot.sieve",
        "  sieve_vacation_dont_check_recipient = yes",
        f"  unix_listener {POSTFIX_SPOOL}/private/dovecot-lmtp {{",
        f"  unix_listener {POSTFIX_SPOOL}/private/auth {{",
        "    mode = 0660",
        "  args = /etc/dovecot/mailwarden-sql.conf.ext",
    ):
        assert line in fragment.splitlines(), line
    # No master user unless a password is configured; vacation goes through sendmail.
    assert "master = yes" not in fragment
    assert "submission_host" not in fragment.replace("# Vacation", "")


def test_the_master_user_is_hashed_and_limited_to_managesieve(tmp_path: Path) -> None:
    settings = settings_for(
        URLS["pgsql"], tmp_path, sieve_master_password=SecretStr("master secret")
    )
    target = replace(production(Settings()), sieve_submission="127.0.0.1:10587")
    files = render_dovecot(settings, target)
    user, _, stored = files[MASTER_USERS].rstrip("\n").partition(":")
    assert user == "mailwarden-sieve"
    assert stored.startswith("{SHA256-CRYPT}") and verify_password("master secret", stored)
    fragment = files[CONF_FRAGMENT]
    sieve_block = fragment.split("protocol sieve {", 1)[1].split("\n}\n", 1)[0]
    assert "master = yes" in sieve_block and "result_success = continue" in sieve_block
    assert f"args = /etc/dovecot/{MASTER_USERS}" in sieve_block
    assert "submission_host = 127.0.0.1:10587" in fragment
    assert "master secret" not in "".join(files.values())


def _dovecot_unquote(value: str) -> str:
    """What Dovecot's settings reader makes of a double-quoted value (str_unescape)."""
    assert value.startswith('"') and value.endswith('"')
    inner, out, index = value[1:-1], [], 0
    while index < len(inner):
        if inner[index] == "\\" and index + 1 < len(inner):
            index += 1
        out.append(inner[index])
        index += 1
    return "".join(out)


def test_a_password_with_syntax_characters_survives_both_quotings(tmp_path: Path) -> None:
    from urllib.parse import quote

    url = f"postgresql://mail:{quote(NASTY_PASSWORD, safe='')}@db.example/mail"
    files = render_dovecot(settings_for(url, tmp_path), production(Settings()))
    for name in (SQL, DICT_SQL):
        line = next(line for line in files[name].splitlines() if line.startswith("connect = "))
        conninfo = _dovecot_unquote(line.removeprefix("connect = "))
        # libpq's own parser, as Dovecot's pgsql driver hands the string to it.
        parsed = psycopg.conninfo.conninfo_to_dict(conninfo)
        assert parsed["password"] == NASTY_PASSWORD
        assert parsed["host"] == "db.example" and parsed["dbname"] == "mail"
    postfix_map = render_postfix(settings_for(url, tmp_path), production(Settings()))[
        "mailwarden/relay_domains.cf"
    ]
    assert f"password = {NASTY_PASSWORD}\n" in postfix_map


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("mysql://mail:two%20words@db/mail", "unsafe_value"),
        ("postgresql://mail:line%0Abreak@db/mail", "unsafe_value"),
        ("postgresql://mail:%20padded@db/mail", "unsafe_value"),
        ("postgresql://mail@db/mail?sslmode=require", "unsupported_parameter"),
        ("postgresql://mail@/mail", "host_required"),
        ("postgresql://mail@db/", "database_required"),
        ("sqlite://", "database_required"),
        ("oracle://mail@db/mail", "unsupported_backend"),
        ("sqlite:////srv/mail db/x.db", "unsafe_path"),
    ],
)
def test_database_urls_the_daemons_cannot_read_are_refused(
    url: str, rule: str, tmp_path: Path
) -> None:
    settings = settings_for(url, tmp_path)
    for render in (render_postfix, render_dovecot):
        with pytest.raises(ValidationError) as caught:
            render(settings, production(Settings()))
        assert caught.value.field == "database_url" and caught.value.rule == rule
        # The message names the part, never its value.
        assert "two words" not in str(caught.value) and "padded" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mail_root": Path("/var/v mail")}, "mail_root"),
        ({"mail_root": Path("relative/vmail")}, "mail_root"),
        ({"dovecot_dir": Path("/etc/dove'cot")}, "dovecot_dir"),
        ({"vmail_user": "vmail\nmail_uid = root"}, "vmail_user"),
        ({"sieve_submission": "smtp.example:25\nssl = no"}, "sieve_submission"),
        ({"lmtp": TcpPort("127.0.0.1", 0)}, "lmtp"),
    ],
)
def test_target_values_that_would_break_the_dovecot_files_are_refused(
    change: dict[str, object], field: str, tmp_path: Path
) -> None:
    target = replace(production(Settings()), **change)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        render_dovecot(settings_for(URLS["sqlite"], tmp_path), target)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"postfix_dir": Path("/etc/post fix")}, "postfix_dir"),
        ({"submission_service": "submission inet n"}, "submission_service"),
        ({"sasl": UnixSocket(Path("/var/spool/postfix/private/a,b"))}, "sasl"),
    ],
)
def test_target_values_that_would_break_the_postfix_files_are_refused(
    change: dict[str, object], field: str, tmp_path: Path
) -> None:
    target = replace(production(Settings()), **change)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        render_postfix(settings_for(URLS["sqlite"], tmp_path), target)
    assert caught.value.field == field


def test_a_master_user_name_that_breaks_passwd_file_is_refused(tmp_path: Path) -> None:
    settings = settings_for(
        URLS["sqlite"],
        tmp_path,
        sieve_master_user="sieve:0:0",
        sieve_master_password=SecretStr("master secret"),
    )
    with pytest.raises(ValidationError) as caught:
        render_dovecot(settings, production(Settings()))
    assert caught.value.field == "sieve_master_user"


# --- secrets, writing and checking -----------------------------------------------------------


def test_secret_files_are_0640_and_the_rest_0644(tmp_path: Path) -> None:
    settings = settings_for(URLS["pgsql"], tmp_path, sieve_master_password=SecretStr("m-secret"))
    postfix = render_postfix(settings, production(Settings()))
    dovecot = render_dovecot(settings, production(Settings()))
    secret = {name for name in [*postfix, *dovecot] if file_mode(name) == 0o640}
    assert secret == MAP_FILES | {SQL, DICT_SQL, MASTER_USERS}
    # Exactly the files that hold the password (or the master hash) are private.
    for files in (postfix, dovecot):
        for name, text in files.items():
            holds_secret = "s3cret-pw" in text or name == MASTER_USERS
            assert holds_secret is (name in secret), name
    written = write_rendered(postfix, tmp_path / "out")
    modes = {str(p.relative_to(tmp_path / "out")): stat.S_IMODE(p.stat().st_mode) for p in written}
    assert modes == {name: file_mode(name) for name in postfix}


def test_redaction_hides_every_password_and_the_master_hash(tmp_path: Path) -> None:
    settings = settings_for(URLS["pgsql"], tmp_path, sieve_master_password=SecretStr("m-secret"))
    files = {
        **render_postfix(settings, production(Settings())),
        **render_dovecot(settings, production(Settings())),
    }
    for name, text in files.items():
        hidden = redact(name, text)
        assert "s3cret-pw" not in hidden and "$5$" not in hidden, name
    assert redact(MASTER_USERS, files[MASTER_USERS]) == "mailwarden-sieve:<redacted>\n"
    assert "password = <redacted>" in redact("x.cf", files["mailwarden/relay_domains.cf"])


def test_check_reports_missing_differing_and_same_files(tmp_path: Path) -> None:
    settings = settings_for(URLS["pgsql"], tmp_path)
    files = render_postfix(settings, production(Settings()))
    out = tmp_path / "etc"
    assert {d.status for d in check_deployed(files, out)} == {FileStatus.MISSING}
    write_rendered(files, out)
    assert check_deployed(files, out) == []
    assert {d.status for d in compare_deployed(files, out)} == {FileStatus.SAME}

    (out / MAIN_CF).write_text(files[MAIN_CF].replace("encrypt", "may"))
    (out / "mailwarden/relay_domains.cf").unlink()
    changed_password = files["mailwarden/transport_maps.cf"].replace("s3cret-pw", "older-pw")
    (out / "mailwarden/transport_maps.cf").write_text(changed_password)
    (out / "mailwarden/transport_maps.cf").chmod(0o640)
    (out / "mailwarden/virtual_alias_maps.cf").chmod(0o644)
    differences = {d.file: d for d in check_deployed(files, out)}
    assert set(differences) == {
        MAIN_CF,
        "mailwarden/relay_domains.cf",
        "mailwarden/transport_maps.cf",
        "mailwarden/virtual_alias_maps.cf",
    }
    assert differences["mailwarden/relay_domains.cf"].status is FileStatus.MISSING
    main = differences[MAIN_CF]
    assert main.status is FileStatus.DIFFERS
    assert "-mailwarden_submission_tls = may" in main.diff
    assert "+mailwarden_submission_tls = encrypt" in main.diff
    # A password-only change is reported without showing either password.
    transport = differences["mailwarden/transport_maps.cf"].diff
    assert "password differs (not shown)" in transport
    assert "older-pw" not in transport and "s3cret-pw" not in transport
    # A world-readable secret is a difference even when its content is right.
    assert "mode 0644" in differences["mailwarden/virtual_alias_maps.cf"].diff


def test_a_redeployed_master_user_counts_as_the_same_when_its_hash_verifies(
    tmp_path: Path,
) -> None:
    settings = settings_for(URLS["sqlite"], tmp_path, sieve_master_password=SecretStr("m-secret"))
    out = tmp_path / "dovecot"
    write_rendered(render_dovecot(settings, production(Settings())), out)
    # Rendering again salts the hash anew: byte comparison alone would call it different.
    again = render_dovecot(settings, production(Settings()))
    assert [d.file for d in check_deployed(again, out)] == [MASTER_USERS]
    assert check_deployed(again, out, sieve_master_password="m-secret") == []
    other = settings_for(URLS["sqlite"], tmp_path, sieve_master_password=SecretStr("new-secret"))
    changed = check_deployed(
        render_dovecot(other, production(Settings())), out, sieve_master_password="new-secret"
    )
    assert changed == [
        Difference(
            MASTER_USERS,
            FileStatus.DIFFERS,
            f"{out / MASTER_USERS}: the master user's password differs (not shown)\n",
        )
    ]


def test_daemon_groups_name_the_readers_of_the_secret_files() -> None:
    assert Daemon.POSTFIX.group == "postfix" and Daemon.DOVECOT.group == "dovecot"
