"""Mail forwarding for a mailbox, stored here and applied as the mailbox's Sieve script."""
