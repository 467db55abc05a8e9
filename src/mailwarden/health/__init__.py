"""Health of the mail hosts: checks, their latest results, and the monitor's incidents."""
