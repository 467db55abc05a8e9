# ruff: noqa: S608 - query templates for Dovecot, which substitutes and quotes the login itself
# (%Lu); the only other inserted text is validated paths and SQL syntax.
"""Render the Dovecot files: `conf.d/90-mailwarden.conf` and the files it points to.

- `mailwarden-sql.conf.ext`: passdb and userdb queries (holds the database password).
- `mailwarden-app-passwords-sql.conf.ext`: the passdb of app passwords, consulted when the
  mailbox's own password failed. It holds the database password too.
- `mailwarden-dict-sql.conf.ext`: quota_clone writes usage to `quota_usage` through dict-sql.
- `mailwarden-master-users`: only when a Sieve master password is configured. That master user
  exists for ManageSieve alone (a `protocol sieve` passdb): mailwarden logs in with SASL PLAIN,
  authzid = the mailbox, authcid = the master user. Dovecot then looks the mailbox up in the SQL
  passdb too (`result_success = continue`), so removed or inactive mailboxes stay locked.
"""

from __future__ import annotations

import pwd
import re
from typing import Final

from mailwarden.apppasswords.tokens import PUBLIC_ID_LENGTH
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.passwords import hash_password
from mailwarden.settings import Settings
from mailwarden.stack.dialect import (
    DatabaseConnection,
    Dialect,
    check_tcp,
    connection_from_url,
    dovecot_quote,
    safe_path,
    split_clauses,
)
from mailwarden.stack.sieve.script import SCRIPT_NAME, SIEVE_BEFORE, SIEVE_STORAGE
from mailwarden.stack.target import DeployTarget, Endpoint, TcpPort, UnixSocket

CONF_FRAGMENT: Final = "conf.d/90-mailwarden.conf"
SQL: Final = "mailwarden-sql.conf.ext"
APP_PASSWORDS_SQL: Final = "mailwarden-app-passwords-sql.conf.ext"
DICT_SQL: Final = "mailwarden-dict-sql.conf.ext"
MASTER_USERS: Final = "mailwarden-master-users"

# The dict name mail processes reach through the dict service (`proxy::mailwarden-quota`).
QUOTA_DICT: Final = "mailwarden-quota"
# Dovecot refuses mail_uid below first_valid_uid (default 500); Debian's `adduser --system`
# hands out lower uids, so the fragment lowers the bound to the vmail user's own uid.
_DOVECOT_FIRST_VALID_UID: Final = 500

_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?")
_MASTER_USER = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


def render(settings: Settings, target: DeployTarget) -> dict[str, str]:
    """Every Dovecot file, by path relative to `target.dovecot_dir`."""
    connection = connection_from_url(settings.effective_database_url)
    dovecot_dir = safe_path(target.dovecot_dir, "dovecot_dir")
    mail_root = safe_path(target.mail_root, "mail_root")
    vmail_user = _system_name(target.vmail_user, "vmail_user")
    vmail_group = _system_name(target.vmail_group, "vmail_group")
    master = _master_user_line(settings)

    files = {
        CONF_FRAGMENT: _fragment(
            connection,
            target,
            dovecot_dir=dovecot_dir,
            vmail_user=vmail_user,
            vmail_group=vmail_group,
            with_master_user=master is not None,
        ),
        SQL: _sql_ext(connection, settings, mail_root),
        APP_PASSWORDS_SQL: _app_passwords_sql_ext(connection, settings),
        DICT_SQL: _dict_sql_ext(connection),
    }
    if master is not None:
        files[MASTER_USERS] = master
    return files


# --- queries ---------------------------------------------------------------------------------


def password_query(dialect: Dialect) -> str:
    return (
        "SELECT m.address AS user, m.password_hash AS password"
        " FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
        f" WHERE m.address = '%Lu' AND {dialect.live_mailbox('m', 'd')}"
    )


def app_password_query(dialect: Dialect) -> str:
    """The app password whose public id starts the given password (%w: the plaintext of PLAIN
    and LOGIN), of the live mailbox %Lu. Dovecot verifies the hash of the whole text.

    The prefix is cut in SQL, from the whole password quoted as one literal. Dovecot's own
    `%8w` would be simpler but is unsafe: Dovecot escapes a value for the driver before it
    truncates it, so a password whose first characters need escaping would be cut inside an
    escape sequence and end the literal early (SQL injection).
    """
    given_prefix = dialect.prefix("'%w'", PUBLIC_ID_LENGTH)
    return (
        "SELECT m.address AS user, a.password_hash AS password"
        " FROM app_passwords a JOIN mailboxes m ON m.id = a.mailbox_id"
        " JOIN domains d ON d.id = m.domain_id"
        f" WHERE a.public_id = {given_prefix}"
        f" AND m.address = '%Lu' AND {dialect.live_mailbox('m', 'd')}"
    )


def user_query(dialect: Dialect, mail_root: str) -> str:
    # No uid/gid: every mailbox runs as mail_uid/mail_gid. Quota 0 means unlimited to Dovecot
    # as it does to mailwarden.
    root = mail_root if mail_root.endswith("/") else f"{mail_root}/"
    home = dialect.concat(f"'{root}'", "m.maildir")
    quota_rule = dialect.concat("'*:bytes='", "m.quota_bytes")
    return (
        f"SELECT m.address AS user, {home} AS home, {quota_rule} AS quota_rule"
        " FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
        f" WHERE m.address = '%Lu' AND {dialect.live_mailbox('m', 'd')}"
    )


def iterate_query(dialect: Dialect) -> str:
    return (
        "SELECT m.address AS user FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
        f" WHERE {dialect.live_mailbox('m', 'd')}"
    )


def _setting_lines(key: str, query: str) -> str:
    # A trailing backslash continues a line in Dovecot's settings files; no clause is split
    # inside a quoted literal, which the parser tracks line by line.
    return f"{key} = " + " \\\n    ".join(split_clauses(query))


# --- files -----------------------------------------------------------------------------------


def _sql_ext(connection: DatabaseConnection, settings: Settings, mail_root: str) -> str:
    dialect = connection.dialect
    return f"""\
# Mailwarden: Dovecot's passdb and userdb in the mailwarden database ({connection.driver}).
# Generated by `mailwarden config dovecot`. Holds the database password: mode 0640, group
# dovecot. Only active mailboxes of active domains that are not removed log in or get mail.
driver = {connection.driver}
connect = {dovecot_quote(connection.dovecot_connect())}
default_pass_scheme = {settings.password_scheme.value}

{_setting_lines("password_query", password_query(dialect))}

# Home: the mail root and the mailbox's maildir column; quota in bytes, 0 = unlimited.
{_setting_lines("user_query", user_query(dialect, mail_root))}

# For doveadm -A and friends.
{_setting_lines("iterate_query", iterate_query(dialect))}
"""


def _app_passwords_sql_ext(connection: DatabaseConnection, settings: Settings) -> str:
    return f"""\
# Mailwarden: app passwords ({connection.driver}), Dovecot's second passdb: asked only when the
# mailbox's own password failed. An app password starts with its public id, which picks the
# one row whose hash is verified. Same conditions as for the mailbox password: an active
# mailbox, not removed, in an active domain. Generated by `mailwarden config dovecot`. Holds
# the database password: mode 0640, group dovecot.
#
# The query carries the password Dovecot was given (%w): with auth_debug = yes Dovecot logs it,
# and so does a database server that logs every statement. Keep both off in production.
driver = {connection.driver}
connect = {dovecot_quote(connection.dovecot_connect())}
default_pass_scheme = {settings.password_scheme.value}

{_setting_lines("password_query", app_password_query(connection.dialect))}
"""


def _dict_sql_ext(connection: DatabaseConnection) -> str:
    return f"""\
# Mailwarden: where quota_clone writes each mailbox's usage ({connection.driver}): table
# quota_usage, one row per mailbox address, read by mailwarden for `mailbox show`.
# Generated by `mailwarden config dovecot`. Holds the database password: mode 0640, group dovecot.
connect = {dovecot_quote(connection.dovecot_connect())}

map {{
  pattern = priv/quota/storage
  table = quota_usage
  username_field = username
  value_field = bytes
}}

map {{
  pattern = priv/quota/messages
  table = quota_usage
  username_field = username
  value_field = messages
}}
"""


def _master_user_line(settings: Settings) -> str | None:
    if settings.sieve_master_password is None:
        return None
    user = settings.sieve_master_user
    if not _MASTER_USER.fullmatch(user):
        raise ValidationError(
            "sieve_master_user",
            "invalid_name",
            "letters, digits and . _ @ + - only, at most 64 (it is a passwd-file user name)",
        )
    hashed = hash_password(
        settings.sieve_master_password.get_secret_value(), settings.password_scheme
    )
    return f"{user}:{hashed}\n"


def _system_name(value: str, field: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValidationError(field, "invalid_name", "a user or group name such as vmail")
    return value


def _first_valid_uid(vmail_user: str) -> str:
    try:
        uid = pwd.getpwnam(vmail_user).pw_uid
    except KeyError:
        return (
            f"# The user {vmail_user} does not exist on the host that generated this file. If its\n"
            f"# uid is below {_DOVECOT_FIRST_VALID_UID}, set first_valid_uid to it.\n"
        )
    if uid == 0 or uid >= _DOVECOT_FIRST_VALID_UID:
        return ""
    return (
        f"# {vmail_user} has uid {uid}, below Dovecot's default bound of "
        f"{_DOVECOT_FIRST_VALID_UID}.\nfirst_valid_uid = {uid}\n"
    )


def _listener(endpoint: Endpoint, name: str, mode: str, field: str) -> str:
    if isinstance(endpoint, TcpPort):
        check_tcp(endpoint.host, endpoint.port, field)
        return f"""\
  inet_listener {name} {{
    address = {endpoint.host}
    port = {endpoint.port}
  }}"""
    assert isinstance(endpoint, UnixSocket)
    path = safe_path(endpoint.path, field)
    return f"""\
  unix_listener {path} {{
    mode = {mode}
    user = postfix
    group = postfix
  }}"""


def _submission_host(value: str | None) -> str:
    if value is None:
        return "# Vacation replies and redirects leave through the local sendmail binary.\n"
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not host:
        raise ValidationError("sieve_submission", "invalid_endpoint", "host:port of an SMTP server")
    check_tcp(host.removeprefix("[").removesuffix("]"), int(port), "sieve_submission")
    return (
        "# Vacation replies and redirects are submitted to this SMTP server.\n"
        f"submission_host = {value}\n"
    )


def _fragment(
    connection: DatabaseConnection,
    target: DeployTarget,
    *,
    dovecot_dir: str,
    vmail_user: str,
    vmail_group: str,
    with_master_user: bool,
) -> str:
    sql_path = f"{dovecot_dir}/{SQL}"
    app_passwords_path = f"{dovecot_dir}/{APP_PASSWORDS_SQL}"
    master_passdb = (
        f"""
# ManageSieve only: mailwarden logs in as any mailbox to upload vacation and forwarding
# scripts (SASL PLAIN, authzid = the mailbox, authcid = the master user). The mailbox must
# then also pass the SQL passdb above (result_success = continue): active and not removed.
protocol sieve {{
  passdb {{
    driver = passwd-file
    args = {dovecot_dir}/{MASTER_USERS}
    master = yes
    result_success = continue
  }}
}}
"""
        if with_master_user
        else ""
    )
    return f"""\
# Mailwarden: the Dovecot settings that read the mailwarden database ({connection.driver}).
# Generated by `mailwarden config dovecot`: regenerate rather than edit. Debian's dovecot.conf
# includes conf.d/*.conf; elsewhere add `!include conf.d/90-mailwarden.conf`. Disable other
# passdbs and userdbs (`!include auth-system.conf.ext` in 10-auth.conf) so that only
# mailwarden's mailboxes log in.

# One home per mailbox (mail root + the maildir column), mail in ~/Maildir, Sieve scripts
# beside it; every mailbox runs as {vmail_user}:{vmail_group}.
mail_location = maildir:~/Maildir
mail_uid = {vmail_user}
mail_gid = {vmail_group}
{_first_valid_uid(vmail_user)}
# Mail clients and Postfix's SMTP AUTH both offer PLAIN and LOGIN.
auth_mechanisms = plain login

# The mailbox's own password first; when it fails (or the lookup fails), its app passwords.
passdb {{
  driver = sql
  args = {sql_path}
  result_failure = continue
  result_internalfail = continue
}}

passdb {{
  driver = sql
  args = {app_passwords_path}
}}

userdb {{
  driver = sql
  args = {sql_path}
}}
{master_passdb}
# Quota from the userdb (quota_rule), counted by Dovecot and copied to the quota_usage table.
mail_plugins = $mail_plugins quota quota_clone

protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}

protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}

# A full mailbox is refused at RCPT, so the sender learns it at once.
lmtp_rcpt_check_quota = yes

dict {{
  {QUOTA_DICT} = {connection.driver}:{dovecot_dir}/{DICT_SQL}
}}

plugin {{
  quota = count:User quota
  quota_vsizes = yes
  quota_clone_dict = proxy::{QUOTA_DICT}

  # Each mailbox's Sieve scripts, managed over ManageSieve. The one the user activates is
  # their personal script; mailwarden never activates one.
  sieve = {SIEVE_STORAGE}
  # Mailwarden's vacation and forwarding (the script '{SCRIPT_NAME}' in that storage) runs
  # before the personal script, so the user's own filters keep working; no file, no script.
  sieve_before = {SIEVE_BEFORE}
  # Vacation replies also for mail that arrived through an alias or an alias domain.
  sieve_vacation_dont_check_recipient = yes
}}

{_submission_host(target.sieve_submission)}
# Postfix delivers over LMTP and asks for SMTP AUTH here.
service lmtp {{
{_listener(target.lmtp, "mailwarden-lmtp", "0600", "lmtp")}
}}

service auth {{
{_listener(target.sasl, "mailwarden-auth", "0660", "sasl")}
}}

# Mail processes run as {vmail_user}; they reach the quota dict through this socket.
service dict {{
  unix_listener dict {{
    mode = 0660
    user = {vmail_user}
    group = {vmail_group}
  }}
}}
"""
