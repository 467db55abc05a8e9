"""A private Postfix + Dovecot on loopback, configured from what `mailwarden config` renders.

`up(uow, actor, ...)` requires Permission.STACK_CONFIG, checks the directory, the packages, the
ports and the host, writes the instance files below one directory, starts both daemons and
returns once every listener answers; `down` stops them. Plain functions (ports, packages, the
instance files) are importable on their own for tests.
"""

from .control import StackInfo, down, status, up
from .errors import DevstackError
from .instance import FAST_AUTH_FAILURES_HELP, StackLayout, deploy_target
from .packages import install_command, missing_packages, required_packages
from .ports import HOST, StackPorts, ports_in_use

__all__ = [
    "FAST_AUTH_FAILURES_HELP",
    "HOST",
    "DevstackError",
    "StackInfo",
    "StackLayout",
    "StackPorts",
    "deploy_target",
    "down",
    "install_command",
    "missing_packages",
    "ports_in_use",
    "required_packages",
    "status",
    "up",
]
