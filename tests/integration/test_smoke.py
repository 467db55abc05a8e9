from mailwarden.mailboxes import service as mailboxes


def test_it_builds_the_world_on_every_backend(world, make_uow):
    with make_uow() as uow:
        page = mailboxes.list_mailboxes(uow, world.superadmin, limit=10)
    assert [m.address for m in page.items] == [
        "postmaster@a.example",
        "user1@a.example",
        "user1@b.example",
    ]
