"""Mail log analytics: pflogsumm-class summaries of Postfix and Dovecot logs."""

from .engine import summarize
from .sources import LocalLogFile, LogSource, rotated_set
from .summary import DovecotActivity, HourBucket, LogSummary, SmtpAuthFailures, TrafficCounts

__all__ = [
    "DovecotActivity",
    "HourBucket",
    "LocalLogFile",
    "LogSource",
    "LogSummary",
    "SmtpAuthFailures",
    "TrafficCounts",
    "rotated_set",
    "summarize",
]
