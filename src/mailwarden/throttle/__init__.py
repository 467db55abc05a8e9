"""Counting failed authentication per account and per client address, shared by every worker."""
