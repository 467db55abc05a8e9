"""The domain error tree. Faces map it once: exit code, HTTP status, form error.

    MailwardenError
     ├── ValidationError      input breaks a rule; one or more FieldIssue(field, rule, message)
     ├── PermissionDenied     the actor may not do this (or may not know the object exists)
     ├── NotFound             no such object within the actor's scope
     ├── Conflict             the object already exists or the change contradicts stored state
     ├── LimitExceeded        a count or quota limit would be broken (a ValidationError too)
     └── RateLimited          too many failed attempts; try again after `retry_after` seconds

`FollowUpFailed` stands apart: work on a host (a Sieve upload, say) that failed
after the transaction had committed. The change is stored; the face reports the failure as a
warning with its own exit code, never as a refusal.

No error carries an HTTP status or an exit code: that is each face's business.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One broken rule: which field, which rule (a stable slug), and a sentence for people."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.rule}]"


class MailwardenError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ValidationError(MailwardenError):
    """Input broke one or more rules; nothing was changed."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        issue = FieldIssue(field, rule, message)
        super().__init__(str(issue))
        self.issues: list[FieldIssue] = [issue]

    @classmethod
    def many(cls, issues: list[FieldIssue]) -> ValidationError:
        if not issues:
            raise ValueError("ValidationError.many needs at least one issue")
        first = issues[0]
        error = cls(first.field, first.rule, first.message)
        error.issues = list(issues)
        error.message = "; ".join(str(issue) for issue in issues)
        return error

    @property
    def field(self) -> str:
        return self.issues[0].field

    def renamed(self, names: dict[str, str]) -> ValidationError:
        """The same error with fields named as a face calls them (`search` is the API's `q`)."""
        error = type(self).many(
            [FieldIssue(names.get(i.field, i.field), i.rule, i.message) for i in self.issues]
        )
        return error

    @property
    def rule(self) -> str:
        return self.issues[0].rule


class LimitExceeded(ValidationError):
    """A count or quota limit (max mailboxes, domain quota, ...) would be exceeded."""


class PermissionDenied(MailwardenError):
    """The actor lacks the permission; the message never reveals foreign objects."""

    def __init__(self, permission: str, reason: str | None = None) -> None:
        super().__init__(f"not permitted: {permission}" + (f" ({reason})" if reason else ""))
        self.permission = permission
        self.reason = reason


class NotFound(MailwardenError):
    """No such object, or not one the actor is allowed to see (indistinguishable on purpose)."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} not found: {key}")
        self.kind = kind
        self.key = key


class Conflict(MailwardenError):
    """The object exists already, or the change contradicts what is stored."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message} [{rule}]")
        self.field = field
        self.rule = rule


class RateLimited(MailwardenError):
    """Too many failed attempts (logins, API keys) from one account or client address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts; try again in {retry_after} seconds")
        self.retry_after = retry_after


class FollowUpFailed(Exception):
    """Host work queued with `UnitOfWork.after_commit` failed; the stored change stands."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason
