"""The files of one private Postfix + Dovecot instance.

Everything about mail (maps, passdb/userdb, quota, Sieve, SMTP AUTH) comes from the files
`mailwarden config` renders for a production host; the devstack only describes a different host
to it (a `DeployTarget` with its own directories and loopback ports) and wraps the result in the
instance settings below: where queues, state and logs live, and which ports to listen on. The
generated files are used verbatim, but for one line: the submission TLS level, `none` here.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mailwarden.settings import Settings
from mailwarden.stack.dovecot import CONF_FRAGMENT
from mailwarden.stack.postfix import MAIN_CF, MASTER_CF
from mailwarden.stack.postfix.render import TLS_PARAMETER
from mailwarden.stack.target import DeployTarget, TcpPort, UnixSocket

from .ports import HOST, StackPorts

# The part of a unix socket path the kernel accepts (sun_path is 108 bytes, NUL included).
MAX_SOCKET_PATH = 107
# The longest socket name Dovecot creates below base_dir ("login/managesieve-login", ...),
# with room to spare.
_LONGEST_DOVECOT_SOCKET = 32
# Where outbound mail goes: a closed loopback port, so mail for other domains waits in the
# deferred queue (where `postqueue` shows it) and never leaves the machine.
UNREACHABLE_RELAY = f"[{HOST}]:9"
# The instance's own files, around the generated ones: relative to postfix_dir and dovecot_dir.
POSTFIX_MAIN_CF = "main.cf"
POSTFIX_MASTER_CF = "master.cf"
DOVECOT_CONF = "dovecot.conf"


@dataclass(frozen=True, slots=True)
class StackLayout:
    """Every path of an instance, below one directory."""

    root: Path

    @classmethod
    def at(cls, directory: Path) -> StackLayout:
        """The layout at `directory` made absolute; symlinks are not resolved (up, down and
        status refuse them)."""
        return cls(Path(os.path.abspath(directory)))

    @property
    def postfix_dir(self) -> Path:
        return self.root / "postfix"

    @property
    def postfix_queue(self) -> Path:
        return self.root / "postfix-queue"

    @property
    def postfix_data(self) -> Path:
        return self.root / "postfix-data"

    @property
    def dovecot_dir(self) -> Path:
        return self.root / "dovecot"

    @property
    def dovecot_conf(self) -> Path:
        return self.dovecot_dir / DOVECOT_CONF

    @property
    def dovecot_base(self) -> Path:
        return self.root / "dovecot-run"

    @property
    def dovecot_state(self) -> Path:
        return self.root / "dovecot-state"

    @property
    def mail_root(self) -> Path:
        return self.root / "mail"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def postfix_log(self) -> Path:
        return self.log_dir / "postfix.log"

    @property
    def dovecot_log(self) -> Path:
        return self.log_dir / "dovecot.log"

    @property
    def startup_log(self) -> Path:
        # What the start commands themselves print, before the daemons log on their own.
        return self.log_dir / "startup.log"

    @property
    def sieve_password_file(self) -> Path:
        return self.root / "sieve-master-password"

    @property
    def state_file(self) -> Path:
        # The ports of the running instance, so `down` and `status` need only --dir.
        return self.root / "devstack.json"

    @property
    def postfix_pid_file(self) -> Path:
        return self.postfix_queue / "pid" / "master.pid"

    @property
    def dovecot_pid_file(self) -> Path:
        return self.dovecot_base / "master.pid"

    def directory_names(self) -> frozenset[str]:
        """The directories directly below root that belong to the instance."""
        paths = (
            self.postfix_dir,
            self.postfix_queue,
            self.postfix_data,
            self.dovecot_dir,
            self.dovecot_base,
            self.dovecot_state,
            self.mail_root,
            self.log_dir,
        )
        return frozenset(path.name for path in paths)

    @property
    def instance_name(self) -> str:
        # Unique per directory, so that two devstacks (two test workers) never share one name.
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return f"mailwarden-devstack-{digest}"

    def socket_path_problem(self) -> str | None:
        """Why this directory is too deep for the unix sockets inside it, or None."""
        longest = max(
            len(str(self.dovecot_base)) + _LONGEST_DOVECOT_SOCKET,
            len(str(self.postfix_queue / "private" / "auth")),
        )
        if longest <= MAX_SOCKET_PATH:
            return None
        return (
            f"{self.root} is too long a path: unix sockets below it would exceed "
            f"{MAX_SOCKET_PATH} bytes; choose a shorter --dir (e.g. under /tmp)"
        )


def deploy_target(layout: StackLayout, ports: StackPorts, settings: Settings) -> DeployTarget:
    """The host description `mailwarden config` renders for, pointing into this instance."""
    return DeployTarget(
        postfix_dir=layout.postfix_dir,
        dovecot_dir=layout.dovecot_dir,
        mail_root=layout.mail_root,
        vmail_user=settings.vmail_user,
        vmail_group=settings.vmail_group,
        postfix_spool=layout.postfix_queue,
        lmtp=TcpPort(HOST, ports.lmtp),
        sasl=UnixSocket(layout.postfix_queue / "private" / "auth"),
        sieve_submission=f"{HOST}:{ports.smtp}",
        submission_service=f"{HOST}:{ports.submission}",
    )


def postfix_main_cf(layout: StackLayout, ports: StackPorts, generated: str) -> str:
    """main.cf of the instance: its own settings around the generated main.cf fragment."""
    return f"""\
# mailwarden devstack: a private Postfix instance in {layout.root}.
# Instance settings, then `mailwarden config` output verbatim except for the submission TLS
# level (this instance has no certificate).
# Listeners: smtp {ports.smtp}, submission {ports.submission} (master.cf).
compatibility_level = 3.7
queue_directory = {layout.postfix_queue}
data_directory = {layout.postfix_data}
mail_owner = postfix
setgid_group = postdrop
myhostname = devstack.mailwarden.test
mydomain = mailwarden.test
myorigin = $myhostname
inet_interfaces = {HOST}
inet_protocols = ipv4
mydestination =
local_recipient_maps =
mynetworks = 127.0.0.0/8
relayhost = {UNREACHABLE_RELAY}
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
# No DNS on a loopback-only test machine: never wait for a reverse lookup of 127.0.0.1.
smtpd_peername_lookup = no
maillog_file = {layout.postfix_log}
maillog_file_prefixes = {layout.log_dir}
smtpd_tls_security_level = none
smtp_tls_security_level = none

# ---- begin `mailwarden config`: {MAIN_CF} ----
{_with_submission_tls_off(generated).rstrip()}
# ---- end `mailwarden config` ----
"""


_TLS_SETTING = re.compile(rf"^{TLS_PARAMETER}[ \t]*=.*$", re.MULTILINE)


def _with_submission_tls_off(generated: str) -> str:
    """The fragment with its submission TLS level set to `none`, in place.

    Set again after the fragment, the parameter would work too, but Postfix then warns about
    the duplicate on every command and daemon start, which buries the logs the devstack is for.
    """
    setting = (
        "# devstack: no certificate here, so the submission service offers AUTH in clear text\n"
        "# (loopback only).\n"
        f"{TLS_PARAMETER} = none"
    )
    if _TLS_SETTING.search(generated):
        return _TLS_SETTING.sub(lambda _: setting, generated, count=1)
    return f"{generated.rstrip()}\n{setting}\n"


# chroot is off everywhere: a chroot would need copies of /etc files in the queue directory.
_MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
  -o syslog_name=postfix/$service_name
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_master_cf(layout: StackLayout, ports: StackPorts, generated: str) -> str:
    """master.cf of the instance: its own services, then the generated master.cf fragment."""
    return (
        f"# mailwarden devstack: services of the private Postfix instance in {layout.root}.\n"
        f"{HOST}:{ports.smtp} inet n - n - - smtpd\n"
        f"{_MASTER_SERVICES}\n"
        f"# ---- begin `mailwarden config`: {MASTER_CF} ----\n"
        f"{generated.rstrip()}\n"
        "# ---- end `mailwarden config` ----\n"
    )


FAST_AUTH_FAILURES_HELP = "for test suites: no delay or penalty after a failed login"


def dovecot_conf(layout: StackLayout, ports: StackPorts, *, fast_auth_failures: bool) -> str:
    """dovecot.conf of the instance; it includes the generated conf.d fragment."""
    fast = ""
    if fast_auth_failures:
        # Dovecot delays a failed login by auth_failure_delay (2 s), and anvil adds a per-IP
        # penalty that doubles up to 15 s: wrong-password tests from 127.0.0.1 would crawl.
        # With the delay at 0 a failure is answered at the auth process's next 0.5 s tick;
        # anvil's penalty socket with mode 0 turns the penalty tracking off.
        fast = """
# --fast-auth-failures: for test suites only.
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""
    return f"""\
# mailwarden devstack: a private Dovecot instance in {layout.root}.
# Instance settings first; {CONF_FRAGMENT} is `mailwarden config` output.
instance_name = {layout.instance_name}
base_dir = {layout.dovecot_base}
state_dir = {layout.dovecot_state}
listen = {HOST}
protocols = imap pop3 lmtp sieve
log_path = {layout.dovecot_log}
auth_verbose = yes
# No certificate here: clear-text logins, on loopback only.
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
# A SQLite database is shared through group postfix (Postfix reads it, quota_clone writes it).
service dict {{
  extra_groups = postfix
}}
service dict-async {{
  extra_groups = postfix
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {ports.imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {HOST}
    port = {ports.pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    address = {HOST}
    port = {ports.sieve}
  }}
}}
{fast}
!include {CONF_FRAGMENT}
"""
