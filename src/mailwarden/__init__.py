"""mailwarden: the owner of the SQL database that Postfix, Dovecot and SOGo read."""

__version__ = "0.1.0"
