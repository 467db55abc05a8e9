"""End a mailbox's open IMAP/POP3/ManageSieve sessions when it stops being usable.

Removing or deactivating a mailbox refuses new logins at once (the passdb query checks it), but
a client that is already logged in (an IDLE connection lasts for days) would keep reading mail.
`doveadm kick` ends those sessions. It talks to the Dovecot on this host, so it only runs when
`doveadm_config` names that Dovecot's configuration: mailwarden may run elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess

from mailwarden.kernel.errors import FollowUpFailed
from mailwarden.settings import Settings

# doveadm kick's exit status when no session matched: nothing to end is not a failure.
_NOBODY_KICKED = 68
_TIMEOUT_SECONDS = 15


def end_sessions(settings: Settings, user_mask: str) -> None:
    """Kick every session whose user matches `user_mask` (an address, or `*@domain`)."""
    if settings.doveadm_config is None:
        return
    what = f"ending the open sessions of {user_mask}"
    doveadm = shutil.which("doveadm")
    if doveadm is None:
        raise FollowUpFailed(what, "doveadm not found (Debian package dovecot-core)")
    argv = [doveadm, "-c", str(settings.doveadm_config), "kick", "--", user_mask]
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argv; the mask is one element after --
            argv,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FollowUpFailed(what, f"doveadm kick did not run: {exc}") from None
    if done.returncode not in (0, _NOBODY_KICKED):
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise FollowUpFailed(
            what, f"doveadm kick exited {done.returncode}: {detail[-1] if detail else ''}"
        )
