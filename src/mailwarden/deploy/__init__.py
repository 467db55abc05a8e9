"""Deploying the generated Postfix and Dovecot configuration to a registered mail host."""
