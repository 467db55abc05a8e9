"""Every value that reaches a command line or a connection is checked here first."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import Final

from mailwarden.kernel.errors import ValidationError

HOST_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?")
# POSIX portable user names, as useradd accepts them.
USER_NAME: Final = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
DNS_NAME: Final = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
FINGERPRINT: Final = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
MAX_PATH_CHARS: Final = 1024
MAX_LOG_PATHS: Final = 16


def check_host_name(name: str, field: str = "name") -> str:
    if not HOST_NAME.fullmatch(name):
        raise ValidationError(
            field,
            "invalid_host_name",
            "use 1-63 lower-case letters, digits, dots and hyphens, starting and ending with a "
            "letter or digit (e.g. mx1 or mx1.example.org)",
        )
    return name


def check_address(address: str, field: str) -> str:
    """A DNS name or an IP address (IPv6 without brackets)."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    if not DNS_NAME.fullmatch(address) or address.startswith("-"):
        raise ValidationError(
            field, "invalid_address", f"{address!r} is no host name or IP address"
        )
    return address.lower()


def check_port(port: int, field: str) -> int:
    if not 1 <= port <= 65535:
        raise ValidationError(field, "out_of_range", "a port is between 1 and 65535")
    return port


@dataclass(frozen=True, slots=True)
class SshTarget:
    user: str
    address: str
    port: int


def parse_ssh_target(target: str, field: str = "ssh_target") -> SshTarget:
    """USER@HOST[:PORT], with an IPv6 address in brackets: root@[2001:db8::1]:2222."""
    user, at, rest = target.partition("@")
    if not at:
        raise ValidationError(field, "invalid_ssh_target", "write it as USER@HOST[:PORT]")
    if not USER_NAME.fullmatch(user):
        raise ValidationError(
            field, "invalid_user", f"{user!r} is no user name (lower-case letters, digits, _.-)"
        )
    port = 22
    if rest.startswith("["):
        address, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise ValidationError(field, "invalid_ssh_target", "an IPv6 address needs its ]")
        if after:
            if not after.startswith(":"):
                raise ValidationError(field, "invalid_ssh_target", "write it as USER@[IPv6]:PORT")
            port = _port_text(after[1:], field)
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise ValidationError(
                field, "invalid_address", f"{address!r} is no IPv6 address"
            ) from None
    else:
        address, colon, port_text = rest.partition(":")
        if colon:
            port = _port_text(port_text, field)
        address = check_address(address, field)
    return SshTarget(user, address, port)


def _port_text(text: str, field: str) -> int:
    if not text.isdigit() or len(text) > 5:
        raise ValidationError(field, "invalid_port", f"{text!r} is no port number")
    return check_port(int(text), field)


def check_absolute_path(path: str, field: str) -> str:
    """An absolute path without `..` or control characters, returned normalized (`/a//b/./c`
    becomes `/a/b/c`); it starts with `/`, so it is never taken for an option."""
    if len(path) > MAX_PATH_CHARS:
        raise ValidationError(field, "too_long", f"at most {MAX_PATH_CHARS} characters")
    if any(ord(character) < 32 or ord(character) == 127 for character in path):
        raise ValidationError(field, "control_character", "a path holds no control characters")
    if not path.startswith("/"):
        raise ValidationError(field, "not_absolute", f"{path!r} must be an absolute path")
    if ".." in path.split("/"):
        # Refused rather than resolved: /srv/../etc names another place than it seems to.
        raise ValidationError(field, "parent_reference", "a path may not contain ..")
    return posixpath.normpath(path)


def check_log_paths(paths: list[str], field: str = "log_paths") -> list[str]:
    if not paths:
        raise ValidationError(field, "required", "name at least one log file")
    if len(paths) > MAX_LOG_PATHS:
        raise ValidationError(field, "too_many", f"at most {MAX_LOG_PATHS} log files")
    checked = [check_absolute_path(path, field) for path in paths]
    if len(set(checked)) != len(checked):
        raise ValidationError(field, "duplicate", "a log file is named twice")
    return checked


def check_fingerprint(text: str, field: str = "host_key_fingerprint") -> str:
    if not FINGERPRINT.fullmatch(text):
        raise ValidationError(
            field, "invalid_fingerprint", "write it as ssh-keygen -lf prints it: SHA256:<43 chars>"
        )
    return text
