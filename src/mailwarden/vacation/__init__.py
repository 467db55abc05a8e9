"""Vacation auto-replies, stored here and applied as the mailbox's Sieve script."""
