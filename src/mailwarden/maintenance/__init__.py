"""Periodic housekeeping that a timer runs: purging removed mailboxes."""
