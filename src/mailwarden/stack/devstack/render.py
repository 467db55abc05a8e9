"""Every file of an instance: the instance settings wrapped around `mailwarden config` output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailwarden.settings import Settings
from mailwarden.stack.config import render_dovecot, render_postfix

from .instance import (
    StackLayout,
    deploy_target,
    dovecot_conf,
    postfix_main_cf,
    postfix_master_cf,
)
from .ports import StackPorts

# Names fixed by `mailwarden config`: the fragments that the instance files embed.
POSTFIX_MAIN_FRAGMENT = "main.cf.mailwarden"
POSTFIX_MASTER_FRAGMENT = "master.cf.mailwarden"
DOVECOT_INCLUDE = "conf.d/90-mailwarden.conf"


@dataclass(frozen=True, slots=True)
class StackFiles:
    # `mailwarden config` output, by path relative to the Postfix and Dovecot directories,
    # installed as a production host would install it.
    postfix: dict[str, str]
    dovecot: dict[str, str]
    # The instance's own main.cf, master.cf and dovecot.conf, by absolute path.
    instance: dict[Path, str]


def render_stack(
    settings: Settings, layout: StackLayout, ports: StackPorts, *, fast_auth_failures: bool
) -> StackFiles:
    target = deploy_target(layout, ports, settings)
    postfix = render_postfix(settings, target)
    dovecot = render_dovecot(settings, target)
    for name, rendered in (
        (POSTFIX_MAIN_FRAGMENT, postfix),
        (POSTFIX_MASTER_FRAGMENT, postfix),
        (DOVECOT_INCLUDE, dovecot),
    ):
        if name not in rendered:
            raise RuntimeError(f"mailwarden config rendered no {name}")
    return StackFiles(
        postfix=postfix,
        dovecot=dovecot,
        instance={
            layout.postfix_dir / "main.cf": postfix_main_cf(
                layout, ports, postfix[POSTFIX_MAIN_FRAGMENT]
            ),
            layout.postfix_dir / "master.cf": postfix_master_cf(
                layout, ports, postfix[POSTFIX_MASTER_FRAGMENT]
            ),
            layout.dovecot_conf: dovecot_conf(layout, ports, fast_auth_failures=fast_auth_failures),
        },
    )
