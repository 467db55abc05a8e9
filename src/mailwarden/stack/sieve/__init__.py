"""Sieve for vacation and forwarding: the script (script.py), a ManageSieve client
(managesieve.py), and the bridge from the stored settings to the server (sync.py)."""
