"""Rendering the Postfix and Dovecot files, without a database or a daemon.

What the daemons make of the files is proven in tests/integration (postmap, postconf,
doveconf, the queries on every backend); here: dialects, quoting, secrets and paths.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
    WrittenFile,
    check_deployed,
    compare_deployed,
    file_mode,
    redact,
    render_dovecot,
    render_postfix,
    write_rendered,
)
from mailwarden.stack.dialect import connection_from_url
from mailwarden.stack.dovecot import (
    APP_PASSWORDS_SQL,
    CONF_FRAGMENT,
    DICT_SQL,
    MASTER_USERS,
    SQL,
)
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
        "parent_domain_matches_subdomains",
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
    assert set(files) == {CONF_FRAGMENT, SQL, APP_PASSWORDS_SQL, DICT_SQL}
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
        # Mailwarden's script runs ahead of the user's own active one, from that storage.
        "  sieve_before = ~/sieve/mailwarden.sieve",
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
    assert secret == MAP_FILES | {SQL, APP_PASSWORDS_SQL, DICT_SQL, MASTER_USERS}
    # Exactly the files that hold the password (or the master hash) are private.
    for files in (postfix, dovecot):
        for name, text in files.items():
            holds_secret = "s3cret-pw" in text or name == MASTER_USERS
            assert holds_secret is (name in secret), name
    # Without a daemon group to give them to, the secret files are the writer's alone.
    written = write_rendered(postfix, tmp_path / "out")
    modes = {file.relative: stat.S_IMODE(file.path.stat().st_mode) for file in written}
    assert modes == {name: 0o600 if name in MAP_FILES else 0o644 for name in postfix}
    assert {file.relative: file.mode for file in written} == modes
    assert all(file.group is None for file in written)


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


# --- review fixes: sockets, redaction, the daemon's group, repr -------------------------------


def test_a_postgresql_socket_keeps_a_port_of_its_own(tmp_path: Path) -> None:
    # libpq's socket is <directory>/.s.PGSQL.<port>: without the port, 5433 would reach 5432.
    url = f"postgresql://mail:{quote(NASTY_PASSWORD, safe='')}@:5433/mail?host=/var/run/postgresql"
    settings = settings_for(url, tmp_path)
    for name, text in render_dovecot(settings, production(Settings())).items():
        if name not in (SQL, DICT_SQL):
            continue
        line = next(line for line in text.splitlines() if line.startswith("connect = "))
        parsed = psycopg.conninfo.conninfo_to_dict(
            _dovecot_unquote(line.removeprefix("connect = "))
        )
        assert parsed == {
            "host": "/var/run/postgresql",
            "port": "5433",
            "dbname": "mail",
            "user": "mail",
            "password": NASTY_PASSWORD,
        }
    # Postfix's `unix:` form has no port: the map says everything in a postgresql:// URI,
    # which Postfix hands to libpq as it is (user and password included, password last).
    postfix_map = render_postfix(settings, production(Settings()))["mailwarden/relay_domains.cf"]
    hosts = next(line for line in postfix_map.splitlines() if line.startswith("hosts = "))
    uri = hosts.removeprefix("hosts = ")
    assert uri.startswith("postgresql:///mail?") and uri.endswith(quote(NASTY_PASSWORD, safe=""))
    # One word: Postfix splits `hosts` on whitespace and commas.
    assert " " not in uri and "," not in uri
    assert psycopg.conninfo.conninfo_to_dict(uri) == {
        "host": "/var/run/postgresql",
        "port": "5433",
        "dbname": "mail",
        "user": "mail",
        "password": NASTY_PASSWORD,
    }
    # Postfix requires dbname even when the URI names the database.
    assert "\ndbname = mail\n" in postfix_map
    assert "password = " not in postfix_map and "user = " not in postfix_map


def test_a_socket_without_a_port_keeps_the_plain_forms(tmp_path: Path) -> None:
    settings = settings_for("postgresql://mail@/mail?host=/var/run/postgresql", tmp_path)
    postfix_map = render_postfix(settings, production(Settings()))["mailwarden/relay_domains.cf"]
    assert "hosts = unix:/var/run/postgresql\n" in postfix_map
    sql = render_dovecot(settings, production(Settings()))[SQL]
    assert 'connect = "host=/var/run/postgresql dbname=mail user=mail"' in sql
    # A MariaDB socket is a file: its port means nothing there and stays out.
    mariadb = settings_for(
        "mysql://mail:pw@:3307/mail?unix_socket=/run/mysqld/mysqld.sock", tmp_path
    )
    assert (
        'connect = "host=/run/mysqld/mysqld.sock dbname=mail user=mail password=pw"'
        in (render_dovecot(mariadb, production(Settings()))[SQL])
    )


@pytest.mark.parametrize("driver", ["pgsql", "mysql"])
def test_redaction_keeps_the_closing_quote_of_a_dovecot_value(driver: str, tmp_path: Path) -> None:
    password = 'ends-with-quote"' if driver == "mysql" else NASTY_PASSWORD
    scheme = "postgresql" if driver == "pgsql" else "mysql"
    url = f"{scheme}://mail:{quote(password, safe='')}@db.example/mail"
    files = render_dovecot(settings_for(url, tmp_path), production(Settings()))
    for name in (SQL, DICT_SQL):
        hidden = redact(name, files[name])
        line = next(line for line in hidden.splitlines() if line.startswith("connect = "))
        # Still one well-formed quoted value: the preview reads like the real file.
        value = _dovecot_unquote(line.removeprefix("connect = "))
        assert value.endswith("password=<redacted>"), value
        assert password not in hidden and "ends-with" not in hidden


def test_redaction_hides_a_postfix_password_whole_even_its_last_quote(tmp_path: Path) -> None:
    for password in ('"quoted"', "tail\u2028after-a-unicode-line-separator"):
        url = f"postgresql://mail:{quote(password, safe='')}@db.example/mail"
        relay = render_postfix(settings_for(url, tmp_path), production(Settings()))[
            "mailwarden/relay_domains.cf"
        ]
        hidden = redact("mailwarden/relay_domains.cf", relay)
        assert "\npassword = <redacted>\n" in hidden
        assert "quoted" not in hidden and "after-a-unicode" not in hidden
    uri_map = render_postfix(
        settings_for("postgresql://mail:s3cret-pw@:5433/mail?host=/run/pg", tmp_path),
        production(Settings()),
    )["mailwarden/relay_domains.cf"]
    hidden = redact("mailwarden/relay_domains.cf", uri_map)
    assert "s3cret-pw" not in hidden and "&password=<redacted>\n" in hidden


def test_the_database_password_is_not_in_the_connections_repr() -> None:
    connection = connection_from_url("postgresql://mail:s3cret-pw@db.example/mail")
    assert connection.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(connection) and "mail" in repr(connection)


def test_main_cf_keeps_backup_mx_domains_from_relaying_their_subdomains(tmp_path: Path) -> None:
    main = render_postfix(settings_for(URLS["sqlite"], tmp_path), production(Settings()))[MAIN_CF]
    value = main.split("\nparent_domain_matches_subdomains = ", 1)[1].split("\n\n", 1)[0]
    features = [word.strip(",") for word in value.split()]
    # Postfix 3.7's default (postconf -d) without relay_domains; the integration test compares
    # it with the installed Postfix.
    assert features == [
        "debug_peer_list",
        "fast_flush_domains",
        "mynetworks",
        "permit_mx_backup_networks",
        "qmqpd_authorized_clients",
        "smtpd_access_maps",
    ]
    # And the fragment says what a backup MX does not check.
    assert "no relay_recipient_maps" in main and "backscatter" in main


# --- writing for the daemon's group ------------------------------------------------------------


def _group_not_holding(user: str, *exclude: int) -> grp.struct_group:
    """An existing group `user` is not a member of, other than root's and `exclude`."""
    primary = pwd.getpwnam(user).pw_gid
    for group in grp.getgrall():
        if group.gr_gid not in {0, primary, *exclude} and user not in group.gr_mem:
            return group
    pytest.skip(f"no group here that {user} is not a member of")


def _written(files: list[WrittenFile]) -> dict[str, tuple[int, int, str | None]]:
    """relative path -> (mode on disk, gid on disk, group reported)."""
    return {
        file.relative: (
            stat.S_IMODE(file.path.stat().st_mode),
            file.path.stat().st_gid,
            file.group,
        )
        for file in files
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another group needs root")
def test_as_root_secret_files_are_given_to_the_daemon_group(tmp_path: Path) -> None:
    daemon = _group_not_holding("root")
    files = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))
    written = _written(write_rendered(files, tmp_path / "out", group=daemon.gr_name))
    for name, (mode, gid, group) in written.items():
        if name in MAP_FILES:
            assert (mode, gid, group) == (0o640, daemon.gr_gid, daemon.gr_name), name
        else:
            assert (mode, group) == (0o644, None), name


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is for root only")
def test_as_root_a_missing_daemon_group_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    files = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))
    with pytest.raises(ValidationError) as caught:
        write_rendered(files, tmp_path / "out", group="mailwarden-no-such-group")
    assert caught.value.field == "group" and caught.value.rule == "unknown_group"
    assert "mailwarden-no-such-group" in str(caught.value)
    assert not (tmp_path / "out").exists()


def in_unprivileged_process(
    action: Callable[[Path], Any], *, primary_group: str, extra_groups: list[int]
) -> Any:
    """`action(directory)` in a forked process that runs as `nobody` (real uid, gid and groups
    dropped, as for a user logged in without privileges), in a fresh directory it owns; returns
    what `action` returned (JSON-able). The interpreter itself is not reachable by `nobody`
    here, so the child is forked rather than executed."""
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    nobody = pwd.getpwnam("nobody")
    gid = grp.getgrnam(primary_group).gr_gid
    directory = Path(tempfile.mkdtemp(prefix="mw-unprivileged-"))
    os.chown(directory, nobody.pw_uid, gid)
    reader, writer = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            payload = b'{"error": "the child failed before reporting"}'
            try:
                os.close(reader)
                os.setgroups(extra_groups)
                os.setgid(gid)
                os.setuid(nobody.pw_uid)
                payload = json.dumps({"value": action(directory)}).encode()
            except BaseException as exc:
                payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            finally:
                # Never return into pytest: the child ends here, without running cleanups
                # that belong to the parent (database connections, temporary directories).
                try:
                    os.write(writer, payload)
                finally:
                    os._exit(0)
        os.close(writer)
        writer = -1
        with os.fdopen(reader, "rb") as stream:
            payload = stream.read()
        reader = -1
        os.waitpid(pid, 0)
    finally:
        for descriptor in (reader, writer):
            if descriptor != -1:
                os.close(descriptor)
        shutil.rmtree(directory)
    outcome = json.loads(payload)
    assert "error" not in outcome, outcome.get("error")
    return outcome["value"]


def write_unprivileged(
    files: dict[str, str], group: str, *, primary_group: str, extra_groups: list[int]
) -> tuple[dict[str, tuple[int, int, str | None]], int]:
    """write_rendered run by `nobody`: what it wrote (mode, gid, group reported) and the gid
    it ran with."""

    def write(directory: Path) -> tuple[dict[str, tuple[int, int, str | None]], int]:
        return _written(write_rendered(files, directory / "out", group=group)), os.getgid()

    # Through JSON, the tuples came back as lists.
    written, writer_gid = in_unprivileged_process(
        write, primary_group=primary_group, extra_groups=extra_groups
    )
    return {name: (mode, gid, given) for name, (mode, gid, given) in written.items()}, writer_gid


def test_a_writer_outside_the_daemon_group_keeps_secret_files_private(tmp_path: Path) -> None:
    try:
        shared = grp.getgrnam("users")
    except KeyError:
        pytest.skip("no `users` group here")
    daemon = _group_not_holding("nobody", shared.gr_gid)
    files = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))
    written, writer_gid = write_unprivileged(
        files, daemon.gr_name, primary_group="users", extra_groups=[]
    )
    for name, (mode, gid, group) in written.items():
        if name in MAP_FILES:
            # Not 0640 with group `users`: every member of that group would read the password.
            assert (mode, gid, group) == (0o600, writer_gid, None), name
        else:
            assert mode == 0o644, name


def test_a_writer_in_the_daemon_group_gives_secret_files_to_it(tmp_path: Path) -> None:
    daemon = _group_not_holding("nobody")
    files = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))
    written, _ = write_unprivileged(
        files, daemon.gr_name, primary_group="nogroup", extra_groups=[daemon.gr_gid]
    )
    secret = {written[name] for name in MAP_FILES}
    assert secret == {(0o640, daemon.gr_gid, daemon.gr_name)}


def test_without_root_a_missing_daemon_group_leaves_the_files_private(tmp_path: Path) -> None:
    # Staging files on a host without Postfix is fine: they are installed elsewhere.
    files = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))
    written, _ = write_unprivileged(
        files, "mailwarden-no-such-group", primary_group="nogroup", extra_groups=[]
    )
    assert {written[name][0] for name in MAP_FILES} == {0o600}


def test_check_reports_a_secret_readable_through_another_group_than_the_daemons(
    tmp_path: Path,
) -> None:
    files = render_postfix(settings_for(URLS["pgsql"], tmp_path), production(Settings()))
    out = tmp_path / "etc"
    write_rendered(files, out)
    relay = out / "mailwarden/relay_domains.cf"
    relay.chmod(0o640)
    file_group = grp.getgrgid(relay.stat().st_gid).gr_name
    daemon = _group_not_holding(pwd.getpwuid(os.geteuid()).pw_name, relay.stat().st_gid)
    # Group-readable by the daemon's own group: as it should be.
    assert check_deployed(files, out, group=file_group) == []
    differences = check_deployed(files, out, group=daemon.gr_name)
    assert [d.file for d in differences] == ["mailwarden/relay_domains.cf"]
    assert differences[0].status is FileStatus.DIFFERS
    assert f"mode 0640 and group {file_group}" in differences[0].diff
    assert f"should be 0640 with group {daemon.gr_name}" in differences[0].diff
    # Private files (0600, as written without the group) are fine whatever their group.
    relay.chmod(0o600)
    assert check_deployed(files, out, group=daemon.gr_name) == []
