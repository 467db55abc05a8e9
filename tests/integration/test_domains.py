import pytest

from mailwarden.aliases import service as aliases
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate, DomainUpdate
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate
from tests.factories.world import GIB, PASSWORD

operator = Actor.local_operator()


def add(uow, name, **values):
    return domains.create(uow, operator, parse(DomainCreate, {"name": name, **values}))


def test_it_stores_idn_domains_as_ascii_and_finds_both_forms(uow):
    created = add(uow, "Bücher.Example")
    assert created.name == "xn--bcher-kva.example"
    assert domains.get(uow, operator, "xn--bcher-kva.example").name == created.name
    assert domains.get(uow, operator, "bücher.example").name == created.name


@pytest.mark.parametrize("duplicate", ["EXAMPLE.org", "example.org.", "Example.Org."])
def test_it_refuses_duplicates_that_differ_by_case_or_trailing_dot(uow, duplicate):
    add(uow, "example.org")
    with pytest.raises(Conflict) as caught:
        add(uow, duplicate)
    assert (caught.value.field, caught.value.rule) == ("name", "exists")


def test_it_refuses_an_invalid_name_naming_field_and_rule(uow):
    with pytest.raises(ValidationError) as caught:
        add(uow, "localhost")
    assert caught.value.field == "name"


def test_it_refuses_unknown_fields_so_nothing_is_mass_assigned():
    with pytest.raises(ValidationError) as caught:
        parse(DomainCreate, {"name": "example.org", "id": 7})
    assert caught.value.field == "id"
    assert caught.value.rule == "extra_forbidden"


@pytest.mark.parametrize("field", ["max_mailboxes", "quota_bytes", "default_mailbox_quota_bytes"])
def test_it_refuses_negative_limits(field):
    with pytest.raises(ValidationError) as caught:
        parse(DomainCreate, {"name": "example.org", field: -1})
    assert caught.value.field == field


def test_it_requires_a_default_mailbox_quota_within_a_domain_quota(uow):
    with pytest.raises(ValidationError) as caught:
        add(uow, "example.org", quota_bytes=10 * GIB)
    assert caught.value.rule == "required_with_domain_quota"
    with pytest.raises(LimitExceeded) as caught:
        add(uow, "example.org", quota_bytes=10 * GIB, default_mailbox_quota_bytes=11 * GIB)
    assert caught.value.rule == "exceeds_domain_quota"


def test_it_refuses_limits_below_current_usage(uow, world):
    with pytest.raises(LimitExceeded) as caught:
        domains.update(uow, operator, "a.example", DomainUpdate(max_mailboxes=1))
    assert (caught.value.field, caught.value.rule) == ("max_mailboxes", "below_usage")
    with pytest.raises(LimitExceeded) as caught:
        domains.update(uow, operator, "a.example", DomainUpdate(quota_bytes=1 * GIB))
    assert (caught.value.field, caught.value.rule) == ("quota_bytes", "below_allocated")


def test_it_refuses_a_domain_quota_while_mailboxes_are_unlimited(uow, world):
    with pytest.raises(LimitExceeded) as caught:
        domains.update(
            uow,
            operator,
            "b.example",
            DomainUpdate(quota_bytes=5 * GIB, default_mailbox_quota_bytes=GIB),
        )
    assert caught.value.rule == "unlimited_mailboxes_exist"


def test_it_updates_and_records_only_what_changed(make_uow, world):
    with make_uow() as uow:
        domains.update(uow, operator, "a.example", DomainUpdate(description="Shop", max_aliases=9))
        plan = uow.finish()
    assert [(c.kind.value, c.key) for c in plan] == [("update", "a.example")]
    assert plan[0].changes == {"description": ["", "Shop"], "max_aliases": [5, 9]}


def test_it_refuses_to_remove_a_domain_that_is_not_empty(uow, world):
    with pytest.raises(Conflict) as caught:
        domains.remove(uow, operator, "a.example")
    assert caught.value.rule == "not_empty"


def test_it_removes_a_domain_with_everything_in_it_on_cascade(make_uow, world):
    # Mailboxes get their grace period: the domain stops now and goes with the purge (see
    # tests/integration/test_mailbox_removal.py for the purge's half).
    with make_uow() as uow:
        removal = domains.remove(uow, operator, "a.example", cascade=True)
        plan = uow.finish()
    assert plan[0].changes["mailboxes"] == 2
    assert plan[0].changes["aliases"] == 1
    assert not removal.deleted and removal.mailboxes_removed == 2
    with make_uow() as uow:
        domain = domains.get(uow, operator, "a.example")
        assert (domain.active, domain.deleted_at) == (False, removal.removed_at)
        remaining = mailboxes.list_mailboxes(uow, operator, limit=50).items
        assert [m.address for m in remaining] == ["user1@b.example"]
        assert domains.show(uow, operator, "a.example").aliases == 0


def test_it_pages_domains_by_name_without_gaps_or_repeats(uow):
    names = [f"d{index:02}.example" for index in range(7)]
    for name in reversed(names):
        add(uow, name)
    seen, cursor = [], None
    while True:
        page = domains.list_domains(uow, operator, limit=3, after=cursor)
        seen += [d.name for d in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == names


def test_it_counts_usage_for_show(uow, world):
    usage = domains.show(uow, operator, "a.example")
    assert (usage.mailboxes, usage.aliases, usage.allocated_quota_bytes) == (2, 1, 2 * GIB)


def test_it_keeps_limits_when_the_domain_is_full(uow, world):
    domains.update(uow, operator, "a.example", DomainUpdate(max_mailboxes=2))
    with pytest.raises(LimitExceeded) as caught:
        mailboxes.create(
            uow, operator, parse(MailboxCreate, {"address": "new@a.example"}), password=PASSWORD
        )
    assert (caught.value.field, caught.value.rule) == ("address", "max_mailboxes")


@pytest.mark.parametrize(
    "transport",
    ["smtp:[mx.partner.example]:25", "lmtp:inet:10.0.0.5:24", "relay:[10.1.2.3]", "smtp:"],
)
def test_it_stores_routing_for_a_relayed_domain(uow, transport):
    created = add(uow, "partner.example", backup_mx=True, transport=transport)
    assert (created.backup_mx, created.transport) == (True, transport)
    updated = domains.update(
        uow, operator, "partner.example", parse(DomainUpdate, {"backup_mx": False, "transport": ""})
    )
    assert (updated.backup_mx, updated.transport) == (False, "")


@pytest.mark.parametrize(
    "transport",
    ["smtp:[a] b", "smtp:a,b", 'smtp:"x"', "nocolon", "SMTP:x", "smtp:x\nrelay_domains=x"],
)
def test_it_refuses_a_transport_that_would_break_the_map_answer(uow, transport):
    with pytest.raises(ValidationError) as caught:
        add(uow, "partner.example", transport=transport)
    assert (caught.value.field, caught.value.rule) == ("transport", "invalid_transport")
    with pytest.raises(NotFound):
        domains.get(uow, operator, "partner.example")


@pytest.mark.parametrize("field, value", [("backup_mx", True), ("transport", "smtp:[x.example]")])
def test_only_a_superadmin_changes_where_a_domain_s_mail_goes(uow, world, field, value):
    with pytest.raises(PermissionDenied):
        domains.update(uow, world.domain_admin, "a.example", parse(DomainUpdate, {field: value}))


def test_a_domain_admin_may_repeat_administrative_values_it_does_not_change(uow, world):
    current = domains.get(uow, operator, "a.example")
    unchanged = {
        "max_mailboxes": current.max_mailboxes,
        "quota_bytes": current.quota_bytes,
        "backup_mx": current.backup_mx,
        "description": "The A team",
    }
    updated = domains.update(uow, world.domain_admin, "a.example", parse(DomainUpdate, unchanged))
    assert updated.description == "The A team"
    with pytest.raises(PermissionDenied):
        domains.update(
            uow,
            world.domain_admin,
            "a.example",
            parse(DomainUpdate, unchanged | {"max_mailboxes": current.max_mailboxes + 1}),
        )


def test_a_domain_with_mailboxes_awaiting_purge_is_not_removed(uow, world):
    mailboxes.remove(uow, operator, "user1@a.example")
    with pytest.raises(Conflict) as caught:
        domains.remove(uow, operator, "a.example")
    assert (caught.value.field, caught.value.rule) == ("domain", "pending_purge")
    assert domains.get(uow, operator, "a.example").name == "a.example"
    # With cascade the domain stops at once and the purge deletes it with its last mailbox.
    removal = domains.remove(uow, operator, "a.example", cascade=True)
    assert (removal.deleted, removal.mailboxes_removed, removal.mailboxes_pending) == (False, 1, 1)


def test_a_domain_with_mailboxes_does_not_become_a_backup_mx(uow, world):
    mailboxes.remove(uow, operator, "user1@a.example")
    with pytest.raises(Conflict) as caught:
        domains.update(uow, operator, "a.example", parse(DomainUpdate, {"backup_mx": True}))
    assert (caught.value.field, caught.value.rule) == ("backup_mx", "has_mailboxes")
    assert domains.get(uow, operator, "a.example").backup_mx is False


def test_a_backup_mx_domain_holds_no_mailboxes(uow):
    add(uow, "relayed.example", backup_mx=True)
    with pytest.raises(Conflict) as caught:
        mailboxes.create(
            uow, operator, parse(MailboxCreate, {"address": "x@relayed.example"}), password=PASSWORD
        )
    assert caught.value.rule == "backup_mx_domain"


def test_it_deletes_an_empty_domain_at_once(make_uow):
    with make_uow() as uow:
        add(uow, "empty.example")
        uow.finish()
    with make_uow() as uow:
        removal = domains.remove(uow, operator, "empty.example")
        plan = uow.finish()
    assert (removal.deleted, removal.removed_at, removal.purge_after) == (True, None, None)
    assert [(c.kind.value, c.object_type, c.key) for c in plan] == [
        ("delete", "domain", "empty.example")
    ]
    with make_uow() as uow, pytest.raises(NotFound):
        domains.get(uow, operator, "empty.example")


def test_a_domain_with_only_removed_mailboxes_needs_cascade(make_uow, world):
    with make_uow() as uow:
        aliases.remove(uow, operator, "info@b.example")
        mailboxes.remove(uow, operator, "user1@b.example")
        uow.finish()
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        domains.remove(uow, operator, "b.example")
    assert (caught.value.field, caught.value.rule) == ("domain", "pending_purge")
    assert "cascade" in str(caught.value) and "maintenance purge" in str(caught.value)


def test_cascade_removes_mailboxes_with_one_audit_entry_for_all_of_them(make_uow, world):
    with make_uow() as uow:
        removal = domains.remove(uow, operator, "a.example", cascade=True)
        plan = uow.finish()
    assert [(c.kind.value, c.object_type, c.key) for c in plan] == [
        ("delete", "domain", "a.example"),
        ("delete", "mailbox", "*@a.example"),
    ]
    assert plan[1].changes == {
        "mailboxes": 2,
        "removed_at": removal.removed_at.isoformat(),
        "purge_after": removal.purge_after.isoformat(),
    }
    with make_uow() as uow:
        removed = mailboxes.list_mailboxes(uow, operator, removed=True).items
    assert sorted(m.address for m in removed) == ["postmaster@a.example", "user1@a.example"]
    assert {m.purge_after for m in removed} == {removal.purge_after}


def test_a_domain_admin_cannot_remove_its_domain_even_with_cascade(make_uow, world):
    with make_uow() as uow, pytest.raises(PermissionDenied):
        domains.remove(uow, world.domain_admin, "a.example", cascade=True)
    with make_uow() as uow:
        assert domains.get(uow, operator, "a.example").deleted_at is None


def test_a_domain_awaiting_purge_takes_nothing_new(uow, world):
    from mailwarden.alias_domains import service as alias_domains
    from mailwarden.alias_domains.schemas import AliasDomainCreate
    from mailwarden.aliases import service as aliases
    from mailwarden.aliases.schemas import AliasCreate

    alias = {"address": "x@a.example", "targets": ["y@b.example"]}
    alias_domain = {"alias_domain": "late.example", "target_domain": "a.example"}
    domains.remove(uow, operator, "a.example", cascade=True)
    assert domains.get(uow, operator, "a.example").removed_at is not None
    attempts = [
        lambda: domains.update(uow, operator, "a.example", parse(DomainUpdate, {"active": True})),
        lambda: aliases.create(uow, operator, parse(AliasCreate, alias)),
        lambda: alias_domains.create(uow, operator, parse(AliasDomainCreate, alias_domain)),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict) as caught:
            attempt()
        assert caught.value.rule == "domain_removed"
    assert domains.get(uow, operator, "a.example").active is False
