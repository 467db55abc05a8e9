"""`mailwarden admin ...` and `--as ADMIN` on every backend."""

from __future__ import annotations

from sqlalchemy import Engine

from mailwarden.kernel.passwords import verify_password
from tests.functional.cli_helpers import OTHER_PASSWORD, PASSWORD, Cli, password_hash


def _hash(engine: Engine, username: str) -> str:
    return password_hash(engine, "admins", "username", username)


def test_it_adds_lists_shows_edits_and_removes_admins(cli: Cli, engine: Engine) -> None:
    cli.add_domain("a.example")
    cli.add_domain("b.example")
    text = cli.ok(
        "admin", "add", "root", "--role", "superadmin", "--password-stdin", input=PASSWORD + "\n"
    ).stdout
    assert "Added superadmin root." in text
    carol = cli.json(
        "admin",
        "add",
        "Carol",
        "--role",
        "domain-admin",
        "--domain",
        "a.example",
        "--random-password",
    )
    assert (carol["username"], carol["role"], carol["domains"]) == (
        "carol",
        "domain-admin",
        ["a.example"],
    )
    assert verify_password(carol["password"], _hash(engine, "carol"))
    assert verify_password(PASSWORD, _hash(engine, "root"))

    listed = cli.json("admin", "list")
    assert [(a["username"], a["role"], a["domains"]) for a in listed] == [
        ("carol", "domain-admin", ["a.example"]),
        ("root", "superadmin", []),
    ]
    assert cli.json("admin", "show", "carol")["domains"] == ["a.example"]

    edited = cli.json("admin", "edit", "carol", "--add-domain", "b.example")
    assert edited["domains"] == ["a.example", "b.example"]
    edited = cli.json("admin", "edit", "carol", "--remove-domain", "a.example", "--inactive")
    assert (edited["domains"], edited["active"]) == (["b.example"], False)

    result = cli.ok("admin", "passwd", "carol", "--password-stdin", input=OTHER_PASSWORD + "\n")
    assert "Password of carol changed." in result.stdout
    assert verify_password(OTHER_PASSWORD, _hash(engine, "carol"))
    generated = cli.json("admin", "passwd", "root", "--random-password")
    assert generated["username"] == "root"
    assert verify_password(generated["password"], _hash(engine, "root"))

    outputs = "\n".join(
        cli.ok(*args).stdout
        for args in [
            ("admin", "list", "--json"),
            ("admin", "show", "root", "--json"),
            ("audit", "list", "--json"),
        ]
    )
    for secret in (_hash(engine, "root"), _hash(engine, "carol"), generated["password"]):
        assert secret not in outputs
    assert OTHER_PASSWORD not in outputs and PASSWORD not in outputs

    plan = cli.ok("admin", "remove", "carol").stdout
    assert "remove admin carol" in plan
    assert [a["username"] for a in cli.json("admin", "list")] == ["root"]


def test_dry_runs_of_admin_changes_change_nothing(cli: Cli, engine: Engine) -> None:
    cli.add_domain("a.example")
    cli.add_domain("b.example")
    cli.add_admin("root", "superadmin")
    cli.add_admin("carol", "domain-admin", "a.example")
    listed = cli.json("admin", "list")
    stored = _hash(engine, "carol")
    before = cli.audit_ids()

    plan = cli.ok(
        "admin",
        "add",
        "dave",
        "--role",
        "domain-admin",
        "--domain",
        "b.example",
        "--random-password",
        "--dry-run",
    ).stdout
    assert "Dry run" in plan and "create admin dave" in plan and "shown once" not in plan
    plan = cli.ok(
        "admin", "edit", "carol", "--add-domain", "b.example", "--inactive", "--dry-run"
    ).stdout
    assert "change admin carol" in plan and "b.example" in plan
    plan = cli.ok(
        "admin", "passwd", "carol", "--password-stdin", "--dry-run", input=OTHER_PASSWORD + "\n"
    ).stdout
    assert "Dry run" in plan and "admin carol" in plan
    plan = cli.ok("admin", "remove", "carol", "--dry-run").stdout
    assert "Dry run" in plan and "remove admin carol" in plan

    assert cli.json("admin", "list") == listed
    assert _hash(engine, "carol") == stored
    assert cli.refused("admin", "show", "dave") == "mailwarden: admin not found: dave"
    assert cli.audit_ids() == before


def test_it_refuses_bad_admin_input(cli: Cli) -> None:
    cli.add_domain("a.example")
    cli.add_admin("root", "superadmin")
    state = cli.state()

    def add(*args: str, password: str = PASSWORD) -> str:
        return cli.refused("admin", "add", *args, "--password-stdin", input=password + "\n")

    assert add("dave", "--role", "domain-admin") == (
        "mailwarden: domains: a domain admin needs at least one domain [required]"
    )
    assert add("dave", "--role", "superadmin", "--domain", "a.example").endswith(
        "[not_for_superadmin]"
    )
    assert add("root", "--role", "superadmin") == (
        "mailwarden: username: admin root exists already [exists]"
    )
    assert add("dave", "--role", "domain-admin", "--domain", "nope.example") == (
        "mailwarden: domain not found: nope.example"
    )
    assert add("bad name", "--role", "superadmin").endswith("[whitespace]")
    assert add("bad/name", "--role", "superadmin").endswith("[invalid_username]")
    assert add("dave", "--role", "superadmin", password="short").endswith("[too_short]")
    assert add("dave", "--role", "superadmin", password="").endswith("[required]")

    expected = "mailwarden: admin not found: ghost"
    assert cli.refused("admin", "show", "ghost") == expected
    assert cli.refused("admin", "edit", "ghost", "--inactive") == expected
    assert cli.refused("admin", "passwd", "ghost", "--random-password") == expected
    assert cli.refused("admin", "remove", "ghost") == expected
    assert cli.refused("admin", "remove", "root") == (
        "mailwarden: username: this is the last active superadmin [last_superadmin]"
    )
    assert cli.state() == state


def _two_tenants(cli: Cli) -> None:
    """carol manages a.example only; b.example belongs to someone else."""
    cli.add_domain("a.example")
    cli.add_domain("b.example")
    cli.add_mailbox("alice@a.example")
    cli.add_mailbox("bob@b.example")
    cli.add_mailbox("secret-bob@b.example")
    cli.ok("alias", "add", "info@a.example", "alice@a.example")
    cli.ok("alias", "add", "sales@b.example", "bob@b.example")
    cli.ok("alias-domain", "add", "b-alias.example", "b.example")
    cli.add_admin("carol", "domain-admin", "a.example")


def test_a_domain_admin_sees_only_its_domains(cli: Cli) -> None:
    _two_tenants(cli)
    outputs = []
    for args in [
        ("domain", "list", "--json"),
        ("domain", "list"),
        ("mailbox", "list", "--json"),
        ("mailbox", "list", "--all", "--json"),
        ("mailbox", "list", "--search", "bob"),
        ("alias", "list", "--json"),
        ("alias", "list", "--search", "b.example"),
        ("alias-domain", "list", "--json"),
        ("admin", "list", "--json"),
        ("audit", "list", "--json"),
        ("audit", "list", "--all", "--json"),
    ]:
        result = cli.ok(*args, as_admin="carol")
        outputs.append(result.stdout + result.stderr)
    combined = "\n".join(outputs)
    assert "b.example" not in combined
    assert "bob" not in combined

    assert [d["name"] for d in cli.json("domain", "list", as_admin="carol")] == ["a.example"]
    assert [m["address"] for m in cli.json("mailbox", "list", as_admin="carol")] == [
        "alice@a.example"
    ]
    assert [a["address"] for a in cli.json("alias", "list", as_admin="carol")] == ["info@a.example"]
    assert [a["username"] for a in cli.json("admin", "list", as_admin="carol")] == ["carol"]

    for args in [
        ("domain", "show", "b.example"),
        ("mailbox", "list", "--domain", "b.example"),
        ("mailbox", "show", "bob@b.example"),
        ("alias", "show", "sales@b.example"),
        ("alias-domain", "list", "--target", "b.example"),
    ]:
        line = cli.refused(*args, as_admin="carol")
        assert "not found" in line or "not permitted" in line, line


def test_a_domain_admin_changes_only_its_domains(cli: Cli, engine: Engine) -> None:
    _two_tenants(cli)
    state = cli.state()
    bob_hash = _hash_of_mailbox(engine, "bob@b.example")

    for args, stdin in [
        (("domain", "add", "new.example"), None),
        (("domain", "edit", "b.example", "--description", "mine"), None),
        (("domain", "edit", "a.example", "--max-mailboxes", "5"), None),
        (("domain", "remove", "b.example", "--cascade"), None),
        (("domain", "remove", "a.example", "--cascade"), None),
        (("mailbox", "add", "eve@b.example", "--password-stdin"), PASSWORD + "\n"),
        (("mailbox", "edit", "bob@b.example", "--name", "Hacked"), None),
        (("mailbox", "passwd", "bob@b.example", "--password-stdin"), OTHER_PASSWORD + "\n"),
        (("mailbox", "remove", "bob@b.example"), None),
        (("alias", "add", "steal@b.example", "alice@a.example"), None),
        (("alias", "edit", "sales@b.example", "--add", "alice@a.example"), None),
        (("alias", "remove", "sales@b.example"), None),
        (("alias-domain", "add", "mine.example", "a.example"), None),
        (("alias-domain", "remove", "b-alias.example"), None),
        (
            (
                "admin",
                "add",
                "dave",
                "--role",
                "domain-admin",
                "--domain",
                "a.example",
                "--password-stdin",
            ),
            PASSWORD + "\n",
        ),
        (("admin", "edit", "carol", "--add-domain", "b.example"), None),
    ]:
        line = cli.refused(*args, input=stdin, as_admin="carol")
        assert "not found" in line or "not permitted" in line, (args, line)

    assert cli.refused("domain", "add", "new.example", as_admin="carol") == (
        "mailwarden: not permitted: system:domain:create"
    )
    assert cli.state() == state
    assert _hash_of_mailbox(engine, "bob@b.example") == bob_hash

    # Inside its own domain it may work, and the audit log names it.
    cli.ok("mailbox", "add", "ann@a.example", "--random-password", as_admin="carol")
    cli.ok("domain", "edit", "a.example", "--description", "Carol's", as_admin="carol")
    newest = cli.json("audit", "list", "--limit", "2")
    assert [(e["actor"], e["action"], e["object_key"]) for e in newest] == [
        ("carol", "domain.update", "a.example"),
        ("carol", "mailbox.create", "ann@a.example"),
    ]
    assert newest[0]["actor_role"] == "domain-admin"


def _hash_of_mailbox(engine: Engine, address: str) -> str:
    return password_hash(engine, "mailboxes", "address", address)


def test_as_refuses_unknown_and_inactive_admins(cli: Cli) -> None:
    cli.add_domain("a.example")
    cli.add_admin("carol", "domain-admin", "a.example")
    cli.add_admin("root", "superadmin")
    cli.ok("admin", "edit", "carol", "--inactive")
    state = cli.state()

    for name in ("nobody", "carol"):
        line = cli.refused("domain", "list", as_admin=name)
        assert line.startswith("mailwarden: --as: ") and name in line, line
        line = cli.refused("domain", "add", "x.example", as_admin=name)
        assert line.startswith("mailwarden: --as: ") and name in line, line
    assert cli.state() == state


def test_as_a_superadmin_acts_with_its_name(cli: Cli) -> None:
    cli.add_admin("root", "superadmin")
    created = cli.json("domain", "add", "x.example", as_admin="ROOT")
    assert created["name"] == "x.example"
    newest = cli.json("audit", "list", "--limit", "1")[0]
    assert (newest["actor"], newest["actor_role"], newest["channel"]) == (
        "root",
        "superadmin",
        "cli",
    )
    assert (newest["action"], newest["object_key"]) == ("domain.create", "x.example")
