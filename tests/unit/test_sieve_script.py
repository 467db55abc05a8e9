"""The Sieve script renderer, proven with Pigeonhole itself.

Every rendered script is compiled by `sievec` and run by `sieve-test` (both from
dovecot-sieve), which prints the actions the script performs for a message without sending
anything. Hostile subjects and bodies must come out as exactly that subject and that body of
one vacation action, and never as any other command.

Dovecot runs mailwarden's script before the user's own active one (`sieve_before`);
`sieve-test -s` runs that same sequence, which proves how the two combine.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwarden.stack.sieve.script import (
    SIEVE_MAX_REDIRECTS,
    AutoReply,
    Redirect,
    quote,
    render_script,
    required_extensions,
)
from tests.support.services import IN_CI

MESSAGE = (
    "Return-Path: <sender@elsewhere.example>\r\n"
    "From: Sender <sender@elsewhere.example>\r\n"
    "To: user1@a.example\r\n"
    "Subject: hello\r\n"
    "Message-ID: <test-1@elsewhere.example>\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "\r\n"
    "Are you there?\r\n"
)

NASTY = [
    'He said "hi"',
    "back\\slash \\\\ and \\",
    '"; discard; "',
    '"; redirect "evil@attacker.example"; keep; "',
    "${x} ${hex:41} ${unicode:2764}",
    "Zürich – naïve ✓ 日本語 😀",  # noqa: RUF001 - the dash is the point
    "# not a comment; /* nor this */",
    'ends in a backslash \\"',
    "}",
    "text:",
]
NASTY_BODIES = [
    *NASTY,
    "line one\n.\nline three after a lone dot",
    ".\n..\n.",
    "windows\r\nline ends\r\n",
    "old mac\rline ends",
    "\n\nleading blank lines",
    'text:\n"; discard;\n.\nrequire "variables";\n',
    "tab\tseparated\tvalues",
]


# --- the tools ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SieveTools:
    workdir: Path
    config: Path
    # (uid, gid) that sieve-test drops to when the suite runs as root.
    mail_user: tuple[int, int] | None

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_bytes(text.encode("utf-8"))
        path.chmod(0o644)
        return path

    def compile(self, script: str) -> subprocess.CompletedProcess[str]:
        source = self.write("compile.sieve", script)
        return subprocess.run(
            ["sievec", "-c", str(self.config), str(source), str(self.workdir / "compile.svbin")],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def _sieve_test(
        self, source: Path, message: str, *, before: Path | None = None, expect_success: bool = True
    ) -> tuple[str, str]:
        """sieve-test's report (stdout, CRLF made LF) and its log (stderr)."""
        mail = self.write("message.eml", message)
        # -s: a script that runs before the main one, in the same sequence. Given by its bare
        # name, relative to the working directory: sieve-test 0.5.19 fails to open an -s script
        # whose path holds a slash ("failed to open script: internal error occurred").
        before_args = ["-s", before.name] if before is not None else []
        argv = ["sieve-test", "-c", str(self.config), "-C"]
        if self.mail_user is not None:
            # sieve-test refuses to run as root; mail access needs an unprivileged user.
            uid, gid = self.mail_user
            argv += ["-o", f"mail_uid={uid}", "-o", f"mail_gid={gid}"]
        argv += [
            "-o",
            f"mail_location=maildir:{self.workdir}/mail",
            "-r",
            "user1@a.example",
            "-f",
            "sender@elsewhere.example",
            *before_args,
            str(source),
            str(mail),
        ]
        result = subprocess.run(
            argv, capture_output=True, timeout=30, check=False, cwd=self.workdir
        )
        stdout = result.stdout.decode("utf-8").replace("\r\n", "\n")
        if expect_success:
            assert result.returncode == 0, f"sieve-test failed:\n{result.stderr!r}\n{stdout}"
        return stdout, result.stderr.decode("utf-8", "replace")

    def run(self, script: str, message: str = MESSAGE, *, expect_success: bool = True) -> Actions:
        compiled = self.compile(script)
        assert compiled.returncode == 0, f"sievec refused:\n{compiled.stderr}\n{script}"
        source = self.write("run.sieve", script)
        stdout, log = self._sieve_test(source, message, expect_success=expect_success)
        return Actions.parse(stdout, log)

    def run_sequence(self, mailwarden: str, personal: str) -> Sequence:
        """Run `mailwarden` before `personal`, as Dovecot's `sieve_before` does at delivery."""
        for script in (mailwarden, personal):
            compiled = self.compile(script)
            assert compiled.returncode == 0, f"sievec refused:\n{compiled.stderr}\n{script}"
        before = self.write("mailwarden.sieve", mailwarden)
        source = self.write("personal.sieve", personal)
        stdout, log = self._sieve_test(source, MESSAGE, before=before)
        return Sequence.parse(stdout, log)


@dataclass(frozen=True)
class Actions:
    """What sieve-test says the script does."""

    output: str
    # The first line of each performed action (" * send vacation message:", ...).
    performed: list[str]
    redirects: list[str]
    implicit_keep: bool
    # What sieve-test logged: runtime errors and the final result.
    log: str

    @classmethod
    def parse(cls, output: str, log: str) -> Actions:
        performed_part, _, keep_part = output.partition("\nImplicit keep:\n")
        # Action lines start with " * "; the vacation text sits between START and END MESSAGE,
        # so lines of the body (which may look like anything) are cut out first.
        skeleton = re.sub(r"START MESSAGE\n.*?\nEND MESSAGE\n", "", performed_part, flags=re.S)
        performed = [line for line in skeleton.splitlines() if line.startswith(" * ")]
        redirects = re.findall(r"^ \* redirect message to: <([^>]*)>$", skeleton, flags=re.M)
        # The last script of a sequence stores the kept message; an earlier one only reports
        # that the keep is still pending (" * keep"), so the next script runs.
        keeps = "store message in folder: INBOX" in keep_part or " * keep\n" in keep_part
        return cls(output, performed, redirects, keeps, log)

    def vacations(self) -> int:
        return sum(line == " * send vacation message:" for line in self.performed)

    def stored_in(self) -> list[str]:
        return [
            line.removeprefix(" * store message in folder: ")
            for line in self.performed
            if line.startswith(" * store message in folder: ")
        ]

    def has_reply(self, subject: str, body: str, days: int) -> bool:
        expected_body = body.replace("\r\n", "\n").replace("\r", "\n")
        return (
            f"    => seconds : {days * 86400}\n    => subject : {subject}\n" in self.output
            and f"START MESSAGE\n{expected_body}\nEND MESSAGE\n" in self.output
        )


@dataclass(frozen=True)
class Sequence:
    """What sieve-test says each script of a sequence does, by file name, in running order."""

    scripts: dict[str, Actions]
    log: str

    @classmethod
    def parse(cls, output: str, log: str) -> Sequence:
        parts = re.split(r"^## Executing script: (\S+)\n", output, flags=re.M)
        # parts: [preamble, name, report, name, report, ...]
        names = [Path(name).name for name in parts[1::2]]
        reports = parts[2::2]
        return cls({n: Actions.parse(r, log) for n, r in zip(names, reports, strict=True)}, log)

    @property
    def ran(self) -> list[str]:
        return list(self.scripts)

    def of(self, name: str) -> Actions:
        return self.scripts[name]


def _tools_or_skip() -> None:
    missing = [tool for tool in ("sievec", "sieve-test") if shutil.which(tool) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (Debian package dovecot-sieve)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: a missing tool fails the run)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def tools() -> Iterator[SieveTools]:
    _tools_or_skip()
    # sieve-test drops privileges to the mail user, who must reach these files (and may store
    # the compiled binary next to them): pytest's temporary directories are private, so this
    # one is made by hand and given to that user.
    workdir = Path(tempfile.mkdtemp(prefix="mw-sieve-"))
    try:
        mail_user = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            mail_user = (nobody.pw_uid, nobody.pw_gid)
            os.chown(workdir, *mail_user)
        workdir.chmod(0o755)
        config = workdir / "dovecot.conf"
        config.write_text(f"base_dir = {workdir}/run\nlog_path = /dev/stderr\n")
        config.chmod(0o644)
        yield SieveTools(workdir, config, mail_user)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def reply(
    subject: str = "Away", body: str = "I am away.", days: int = 7, **dates: date
) -> AutoReply:
    return AutoReply(subject=subject, body=body, days=days, **dates)


# --- quoting, without the tools -----------------------------------------------------------------


def test_it_escapes_only_backslash_and_double_quote() -> None:
    assert quote('a"b\\c; {x} ${y}') == '"a\\"b\\\\c; {x} ${y}"'
    assert quote("") == '""'
    assert quote("ünïcode ✓") == '"ünïcode ✓"'


def test_it_writes_every_line_break_of_a_text_as_crlf() -> None:
    assert quote("a\nb\r\nc\rd", multiline=True) == '"a\r\nb\r\nc\r\nd"'


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\r\nb"])
def test_it_refuses_line_breaks_in_one_line_values(value: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        quote(value)


@pytest.mark.parametrize("value", ["a\x00b", "lone \ud800 surrogate"])
def test_it_refuses_what_no_sieve_string_can_hold(value: str) -> None:
    with pytest.raises(ValueError):
        quote(value, multiline=True)


def test_it_renders_nothing_when_nothing_is_enabled() -> None:
    assert render_script(None, None) is None


@pytest.mark.parametrize(
    ("auto_reply", "redirect", "extensions"),
    [
        (reply(), None, ["vacation"]),
        (reply(starts_on=date(2025, 7, 1)), None, ["date", "relational", "vacation"]),
        (reply(ends_on=date(2025, 7, 1)), None, ["date", "relational", "vacation"]),
        (None, Redirect(("a@b.example",), keep_copy=True), ["copy"]),
        (None, Redirect(("a@b.example",), keep_copy=False), []),
        (reply(), Redirect(("a@b.example",), keep_copy=True), ["copy", "vacation"]),
    ],
)
def test_it_requires_exactly_the_extensions_it_uses(
    auto_reply: AutoReply | None, redirect: Redirect | None, extensions: list[str]
) -> None:
    assert required_extensions(auto_reply, redirect) == extensions
    script = render_script(auto_reply, redirect)
    assert script is not None
    requires = [line for line in script.split("\r\n") if line.startswith("require")]
    if extensions:
        assert requires == ["require [" + ", ".join(f'"{e}"' for e in extensions) + "];"]
    else:
        assert requires == []
    assert "variables" not in script
    assert "encoded-character" not in script


def test_it_ends_every_line_with_crlf() -> None:
    script = render_script(reply(body="a\nb"), Redirect(("a@b.example",), keep_copy=True))
    assert script is not None
    assert script.endswith("\r\n")
    assert "\n" not in script.replace("\r\n", "")


@pytest.mark.parametrize(
    ("auto_reply", "redirect", "stops"),
    [
        (reply(), None, False),
        (None, Redirect(("a@b.example",), keep_copy=True), False),
        (None, Redirect(("a@b.example",), keep_copy=False), True),
        (reply(), Redirect(("a@b.example",), keep_copy=True), False),
        (reply(), Redirect(("a@b.example",), keep_copy=False), True),
    ],
)
def test_only_forwarding_without_a_copy_ends_the_sequence(
    auto_reply: AutoReply | None, redirect: Redirect | None, stops: bool
) -> None:
    script = render_script(auto_reply, redirect)
    assert script is not None
    assert script.endswith("\r\nstop;\r\n") is stops
    assert script.count("stop;") == (1 if stops else 0)


def test_it_refuses_an_impossible_schedule() -> None:
    with pytest.raises(ValueError, match="before the start"):
        render_script(reply(starts_on=date(2025, 7, 2), ends_on=date(2025, 7, 1)), None)
    with pytest.raises(ValueError, match="days"):
        render_script(reply(days=0), None)
    with pytest.raises(ValueError, match="target"):
        render_script(None, Redirect((), keep_copy=True))


# --- with the real compiler ---------------------------------------------------------------------


@pytest.mark.parametrize("subject", NASTY)
def test_a_hostile_subject_is_exactly_the_subject(tools: SieveTools, subject: str) -> None:
    script = render_script(reply(subject=subject), None)
    assert script is not None
    actions = tools.run(script)
    assert actions.performed == [" * send vacation message:"]
    assert actions.has_reply(subject, "I am away.", 7), actions.output
    assert actions.implicit_keep


@pytest.mark.parametrize("body", NASTY_BODIES)
def test_a_hostile_body_is_exactly_the_body(tools: SieveTools, body: str) -> None:
    script = render_script(reply(body=body, days=3), None)
    assert script is not None
    actions = tools.run(script)
    assert actions.performed == [" * send vacation message:"]
    assert actions.has_reply("Away", body, 3), actions.output
    assert actions.redirects == []
    assert actions.implicit_keep


def test_forwarding_with_a_copy_keeps_the_message(tools: SieveTools) -> None:
    targets = ("a@b.example", "c+tag@d.example")
    script = render_script(None, Redirect(targets, keep_copy=True))
    assert script is not None
    actions = tools.run(script)
    assert actions.redirects == list(targets)
    assert actions.output.count("+ preserve implicit keep") == 2
    assert actions.implicit_keep


def test_forwarding_without_a_copy_cancels_the_implicit_keep(tools: SieveTools) -> None:
    script = render_script(None, Redirect(("a@b.example", "c@d.example"), keep_copy=False))
    assert script is not None
    actions = tools.run(script)
    assert actions.redirects == ["a@b.example", "c@d.example"]
    assert "preserve implicit keep" not in actions.output
    assert not actions.implicit_keep


# A user's own active script: flag the message and file it into a folder of theirs.
PERSONAL = 'require ["fileinto", "imap4flags"];\r\naddflag "\\\\Flagged";\r\nfileinto "Filed";\r\n'
FORWARD_TO = ("deputy@a.example",)


@pytest.mark.parametrize(
    ("auto_reply", "redirect", "personal_runs"),
    [
        (reply(), None, True),
        (None, Redirect(FORWARD_TO, keep_copy=True), True),
        (None, Redirect(FORWARD_TO, keep_copy=False), False),
        (reply(), Redirect(FORWARD_TO, keep_copy=True), True),
        (reply(), Redirect(FORWARD_TO, keep_copy=False), False),
    ],
    ids=["vacation", "forward-copy", "forward-no-copy", "both-copy", "both-no-copy"],
)
def test_the_users_own_script_runs_after_ours_unless_no_copy_is_kept(
    tools: SieveTools, auto_reply: AutoReply | None, redirect: Redirect | None, personal_runs: bool
) -> None:
    script = render_script(auto_reply, redirect)
    assert script is not None
    sequence = tools.run_sequence(script, PERSONAL)
    ours = sequence.of("mailwarden.sieve")
    assert ours.vacations() == (0 if auto_reply is None else 1)
    assert ours.redirects == ([] if redirect is None else list(FORWARD_TO))
    assert ours.stored_in() == []
    if personal_runs:
        # Our script leaves the keep pending; the user's rules then decide where it goes.
        assert sequence.ran == ["mailwarden.sieve", "personal.sieve"]
        assert ours.implicit_keep
        personal = sequence.of("personal.sieve")
        assert personal.stored_in() == ["Filed"]
        assert "        + add IMAP flags: \\flagged\n" in personal.output
        assert not personal.implicit_keep  # filed into Filed only, not also into INBOX
    else:
        # Forwarded, no copy: the sequence ends with our script and nothing is stored.
        assert sequence.ran == ["mailwarden.sieve"]
        assert not ours.implicit_keep
    assert "final result: success" in sequence.log


def test_pigeonhole_runs_exactly_as_many_redirects_as_forwarding_allows(
    tools: SieveTools,
) -> None:
    targets = tuple(f"t{n}@x.example" for n in range(SIEVE_MAX_REDIRECTS + 1))
    allowed = render_script(None, Redirect(targets[:-1], keep_copy=False))
    assert allowed is not None
    assert tools.run(allowed).redirects == list(targets[:-1])
    # One more compiles, but running it fails and forwards nothing: the service refuses it.
    over = render_script(None, Redirect(targets, keep_copy=False))
    assert over is not None
    assert tools.compile(over).returncode == 0
    actions = tools.run(over, expect_success=False)
    assert actions.redirects == []
    assert "number of redirect actions exceeds policy limit" in actions.log
    assert "resolved with successful implicit keep" in actions.log


def test_vacation_and_forwarding_together(tools: SieveTools) -> None:
    script = render_script(
        reply(subject="Out", body="Gone fishing.", days=14),
        Redirect(("deputy@a.example",), keep_copy=False),
    )
    assert script is not None
    actions = tools.run(script)
    assert actions.vacations() == 1
    assert actions.has_reply("Out", "Gone fishing.", 14)
    assert actions.redirects == ["deputy@a.example"]
    assert not actions.implicit_keep


# The dates are the server's local calendar days, like those of `currentdate`; two days of
# margin keep a run across midnight from flaking.
TODAY = date.today()
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("dates", "replies"),
    [
        ({"starts_on": TODAY - 2 * DAY, "ends_on": TODAY + 2 * DAY}, True),
        ({"starts_on": TODAY - 2 * DAY}, True),
        ({"ends_on": TODAY + 2 * DAY}, True),
        ({"starts_on": TODAY + 2 * DAY, "ends_on": TODAY + 9 * DAY}, False),
        ({"starts_on": TODAY - 9 * DAY, "ends_on": TODAY - 2 * DAY}, False),
        ({"starts_on": TODAY + 2 * DAY}, False),
        ({"ends_on": TODAY - 2 * DAY}, False),
    ],
)
def test_the_reply_runs_only_between_its_dates(
    tools: SieveTools, dates: dict[str, date], replies: bool
) -> None:
    script = render_script(reply(**dates), Redirect(("a@b.example",), keep_copy=True))
    assert script is not None
    actions = tools.run(script)
    assert actions.vacations() == (1 if replies else 0)
    # Forwarding does not depend on the dates.
    assert actions.redirects == ["a@b.example"]


def test_the_date_bounds_are_inclusive(tools: SieveTools) -> None:
    script = render_script(reply(starts_on=TODAY, ends_on=TODAY), None)
    assert script is not None
    # Unless the day changes between rendering and running, today is inside [today, today].
    if date.today() == TODAY:
        assert tools.run(script).vacations() == 1


# --- generated text -----------------------------------------------------------------------------

# What the services accept: a subject is one line without controls; a body is text with tabs
# and line breaks (any spelling), but no other controls. Surrogates are not text at all.
SUBJECT_CHARACTERS = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
BODY_PIECES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40),
    st.sampled_from(['"', "\\", "\n", "\r\n", "\r", "\t", ".", "\n.\n", "${x}", '"; discard; "']),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    subject=st.text(SUBJECT_CHARACTERS, min_size=1, max_size=120).filter(lambda s: s.strip()),
    body=st.lists(BODY_PIECES, min_size=1, max_size=12).map("".join).filter(lambda s: s.strip()),
    days=st.integers(min_value=1, max_value=365),
    keep_copy=st.booleans(),
)
def test_any_accepted_text_compiles_and_is_sent_verbatim(
    tools: SieveTools, subject: str, body: str, days: int, keep_copy: bool
) -> None:
    script = render_script(
        reply(subject=subject, body=body, days=days), Redirect(("a@b.example",), keep_copy)
    )
    assert script is not None
    actions = tools.run(script)
    assert actions.vacations() == 1
    assert actions.has_reply(subject, body, days), actions.output
    assert actions.redirects == ["a@b.example"]
    assert actions.implicit_keep is keep_copy
    assert len(actions.performed) == 2
