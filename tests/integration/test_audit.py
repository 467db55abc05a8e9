from datetime import timedelta

import pytest

from mailwarden.audit import service as audit
from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxUpdate
from tests.factories.world import PASSWORD

operator = Actor.local_operator()


def test_it_records_actor_channel_action_and_object(make_uow, world):
    with make_uow() as uow:
        mailboxes.update(uow, world.domain_admin, "user1@a.example", MailboxUpdate(name="Uno"))
        uow.finish()
    with make_uow() as uow:
        newest = audit.list_entries(uow, world.superadmin, limit=1).items[0]
    assert (newest.actor, newest.actor_role, newest.channel) == ("alice", "domain-admin", "cli")
    assert (newest.action, newest.object_key, newest.domain) == (
        "mailbox.update",
        "user1@a.example",
        "a.example",
    )
    assert newest.before == {**newest.before, "name": ""}
    assert newest.after["name"] == "Uno"


def test_a_domain_admin_sees_only_its_domains_history(make_uow, world):
    with make_uow() as uow:
        own = audit.list_entries(uow, world.domain_admin, limit=500).items
        everything = audit.list_entries(uow, world.superadmin, limit=500).items
    assert own and all(entry.domain == "a.example" for entry in own)
    assert {e.domain for e in everything} >= {"a.example", "b.example", None}
    # Admin accounts are system objects: no domain admin reads their history.
    assert not [e for e in own if e.object_type == "admin"]


def test_it_pages_newest_first(make_uow, world):
    with make_uow() as uow:
        first = audit.list_entries(uow, operator, limit=3)
        second = audit.list_entries(uow, operator, limit=3, before_id=int(first.next_cursor))
    ids = [e.id for e in first.items + second.items]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6


def test_it_filters_by_actor_action_object_and_time(make_uow, world):
    with make_uow() as uow:
        mailboxes.create(
            uow, world.outsider, parse(MailboxCreate, {"address": "z@b.example"}), password=PASSWORD
        )
        uow.finish()
    with make_uow() as uow:
        by_actor = audit.list_entries(uow, operator, actor_name="BOB").items
        by_action = audit.list_entries(uow, operator, action="alias.create").items
        by_object = audit.list_entries(uow, operator, object_key="Z@b.example").items
        future = audit.list_entries(uow, operator, since=utcnow() + timedelta(hours=1)).items
        past = audit.list_entries(uow, operator, until=utcnow() - timedelta(hours=1)).items
    assert [e.object_key for e in by_actor] == ["z@b.example"]
    assert sorted(e.object_key for e in by_action) == ["info@a.example", "info@b.example"]
    assert [e.action for e in by_object] == ["mailbox.create"]
    assert future == [] and past == []


def test_it_refuses_a_bad_cursor(make_uow, world):
    with make_uow() as uow, pytest.raises(ValidationError) as caught:
        audit.list_entries(uow, operator, before_id=0)
    assert caught.value.field == "cursor"
