"""Every file of an instance: the instance settings wrapped around `mailwarden config` output."""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.settings import Settings
from mailwarden.stack import postfix
from mailwarden.stack.config import render_dovecot, render_postfix

from .instance import (
    DOVECOT_CONF,
    POSTFIX_MAIN_CF,
    POSTFIX_MASTER_CF,
    StackLayout,
    deploy_target,
    dovecot_conf,
    postfix_main_cf,
    postfix_master_cf,
)
from .ports import StackPorts


@dataclass(frozen=True, slots=True)
class StackFiles:
    """Every file by path relative to the instance's Postfix and Dovecot directories.

    `mailwarden config` output, installed as a production host would install it, plus the
    instance's own main.cf, master.cf and dovecot.conf that embed or include it.
    """

    postfix: dict[str, str]
    dovecot: dict[str, str]


def render_stack(
    settings: Settings, layout: StackLayout, ports: StackPorts, *, fast_auth_failures: bool
) -> StackFiles:
    """Render; the caller has checked Permission.STACK_CONFIG (the files hold credentials).

    Every value that ends up in a file is validated here (database URL, paths, account names,
    the master user): a ValidationError leaves nothing written.
    """
    target = deploy_target(layout, ports, settings)
    generated_postfix = render_postfix(settings, target)
    generated_dovecot = render_dovecot(settings, target)
    return StackFiles(
        postfix={
            **generated_postfix,
            POSTFIX_MAIN_CF: postfix_main_cf(layout, ports, generated_postfix[postfix.MAIN_CF]),
            POSTFIX_MASTER_CF: postfix_master_cf(
                layout, ports, generated_postfix[postfix.MASTER_CF]
            ),
        },
        dovecot={
            **generated_dovecot,
            DOVECOT_CONF: dovecot_conf(layout, ports, fast_auth_failures=fast_auth_failures),
        },
    )
