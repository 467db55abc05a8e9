"""Dovecot configuration for the mailwarden database: a conf.d fragment and its SQL files."""

from .render import APP_PASSWORDS_SQL, CONF_FRAGMENT, DICT_SQL, MASTER_USERS, SQL, render

__all__ = ["APP_PASSWORDS_SQL", "CONF_FRAGMENT", "DICT_SQL", "MASTER_USERS", "SQL", "render"]
