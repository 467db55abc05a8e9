"""Dovecot configuration for the mailwarden database: a conf.d fragment and its SQL files."""

from .render import CONF_FRAGMENT, DICT_SQL, MASTER_USERS, SQL, render

__all__ = ["CONF_FRAGMENT", "DICT_SQL", "MASTER_USERS", "SQL", "render"]
