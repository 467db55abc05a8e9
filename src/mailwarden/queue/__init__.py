"""Postfix's mail queue on a registered host: list, show, hold, release, requeue, delete, flush."""
