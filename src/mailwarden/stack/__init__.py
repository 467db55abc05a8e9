"""Adapters to the real mail stack: configuration for Postfix and Dovecot, the daemons, Sieve."""
