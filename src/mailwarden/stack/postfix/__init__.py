"""Postfix configuration for the mailwarden database: main.cf and master.cf fragments, SQL maps."""

from .render import MAIN_CF, MASTER_CF, render

__all__ = ["MAIN_CF", "MASTER_CF", "render"]
