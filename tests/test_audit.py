"""``manage.py crossdb_audit`` and ``crossdb.audit``: dangling references, found and fixed.

Orphans are made the way they happen in production: rows deleted or inserted
with raw SQL behind the ORM's back.
"""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from crossdb import audit, routing
from tests.blog.models import Comment, Post
from tests.shop.models import Badge, Mention
from tests.tooling.models import FALLBACK_GROUP_ID, Ticket, TicketNote

pytestmark = pytest.mark.django_db(databases="__all__")

GHOST = 987654  # an id no row has


def raw(model, sql, params=()):
    """Run ``sql`` (``{table}`` filled in) on ``model``'s alias, behind the ORM's back."""
    connection = connections[routing.db_for_write(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def raw_delete(instance):
    raw(type(instance), "DELETE FROM {table} WHERE id = %s", [instance.pk])


def run(*args, **options):
    """Run crossdb_audit; return (exit status, stdout)."""
    out = StringIO()
    try:
        call_command("crossdb_audit", *args, stdout=out, stderr=StringIO(), **options)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


@pytest.fixture
def people(stale_users):
    ann = User.objects.create(username="ann")
    bob = User.objects.create(username="bob")
    cid = User.objects.create(username="cid")
    # Every user, bob included, also sits in the stale auth_user copies: an
    # audit reading the wrong alias would find bob there.
    stale_users()
    return ann, bob, cid


def test_a_clean_project_exits_zero_and_lists_every_field(people):
    ann, bob, cid = people
    Post.objects.create(title="a", author=ann, editor=bob)
    Comment.objects.create(post=Post.objects.get(), author=cid, text="c")
    status, out, _ = run()
    assert status == 0
    labels = [f"{f.model._meta.label}.{f.name}" for f in audit.select_fields()]
    assert {"blog.Post.author", "shop.Mention.post", "tooling.Ticket.owner"} <= set(labels)
    for label in labels:
        assert f"OK    {label} (" in out
    assert (
        "OK    blog.Post.author (blog_db) -> auth.User (default), on_delete=CASCADE: 1 ids" in out
    )


def test_dangling_authors_are_reported_with_count_and_samples(people, queries):
    ann, bob, cid = people
    Post.objects.create(title="a1", author=ann)
    Post.objects.create(title="b1", author=bob)
    Post.objects.create(title="b2", author=bob, editor=cid)
    raw_delete(bob)
    Post.objects.bulk_create([Post(title="ghost's", author_id=GHOST)])
    with queries() as q:
        status, out, error = run("--model", "blog.Post", "--field", "author")
    assert status == 1
    assert f"3 row(s) point at 2 missing id(s), e.g. {bob.pk!r}, {GHOST!r}" in out
    assert out.startswith("DANGLE blog.Post.author")
    assert error == "3 dangling reference(s) in 1 field(s): blog.Post.author"
    # One chunk: one query for the values, one existence check, one count.
    post_alias, user_alias = routing.db_for_write(Post), routing.db_for_write(User)
    assert "auth_user" not in " ".join(q.sql(post_alias)) or post_alias == user_alias
    if post_alias != user_alias:
        assert q.counts()[post_alias] == 2 and q.counts()[user_alias] == 1
    # Nothing changed without --fix.
    assert Post.objects.filter(author_id=bob.pk).count() == 2


def test_json_output(people):
    ann, bob, _cid = people
    Post.objects.create(title="b", author=bob, editor=bob)
    Post.objects.create(title="a", author=ann, editor=ann)
    raw_delete(bob)
    status, out, _ = run("--json", "--model", "blog.Post")
    assert status == 1
    report = json.loads(out)
    assert report["clean"] is False and report["fix"] is False
    by_field = {entry["field"]: entry for entry in report["fields"]}
    assert set(by_field) == {"author", "editor"}
    assert by_field["author"] == {
        "model": "blog.Post",
        "field": "author",
        "source_alias": routing.db_for_write(Post),
        "target": "auth.User",
        "target_alias": routing.db_for_write(User),
        "on_delete": "CASCADE",
        "action": "delete",
        "checked": 2,
        "dangling_values": 1,
        "dangling_rows": 1,
        "fixed_rows": 0,
        "samples": [bob.pk],
        "errors": [],
    }
    assert by_field["editor"]["on_delete"] == "SET_NULL"
    assert by_field["editor"]["dangling_rows"] == 1


def test_fix_cascade_deletes_through_the_orm_so_dependents_go_too(people):
    ann, bob, cid = people
    keep = Post.objects.create(title="keep", author=ann)
    gone = Post.objects.create(title="gone", author=bob)
    Comment.objects.create(post=gone, author=cid, text="goes with its post")
    Comment.objects.create(post=keep, author=cid, text="stays")
    Mention.objects.create(post=gone, text="cascades into another database")
    raw_delete(bob)
    status, out, _ = run("--model", "blog.Post", "--field", "author", "--fix")
    assert status == 0
    assert "1 row(s) point at 1 missing id(s)" in out and "fixed 1 row(s) (delete)" in out
    assert list(Post.objects.values_list("title", flat=True)) == ["keep"]
    assert list(Comment.objects.values_list("text", flat=True)) == ["stays"]
    assert not Mention.objects.exists()
    assert run("--model", "blog.Post")[0] == 0


@pytest.fixture
def groups():
    Group.objects.create(pk=FALLBACK_GROUP_ID, name="fallback")
    return Group.objects.create(name="live"), Group.objects.create(name="doomed")


def test_fix_applies_each_fields_own_on_delete_rule(groups):
    live, doomed = groups
    everything = {
        name: doomed for name in ("owner", "assignee", "queue", "reviewer", "watcher", "approver")
    }
    Ticket.objects.create(title="dangles everywhere", **everything)
    Ticket.objects.create(title="owned by the live group", **{**everything, "owner": live})
    Ticket.objects.create(title="healthy", owner=live, queue=live)
    raw_delete(doomed)

    status, out, error = run("--model", "tooling.Ticket", "--fix")
    assert status == 1
    # Fields go in name order: approver is counted before owner's CASCADE
    # deletes the first ticket, watcher after.
    assert error == (
        "3 dangling reference(s) in 2 field(s): tooling.Ticket.approver, tooling.Ticket.watcher"
    )
    assert "fixed 2 row(s) (set null)" in out  # assignee: SET_NULL
    assert "fixed 1 row(s) (delete)" in out  # owner: CASCADE
    assert "fixed 1 row(s) (set default)" in out  # queue: SET_DEFAULT
    assert "fixed 1 row(s) (set)" in out  # reviewer: SET(callable)
    assert "left as they are (on_delete=DO_NOTHING)" in out
    assert "left as they are (on_delete=RESTRICT)" in out
    rows = list(
        Ticket.objects.values_list(
            "title", "assignee_id", "queue_id", "reviewer_id", "watcher_id", "approver_id"
        )
    )
    assert rows == [
        (
            "owned by the live group",
            None,
            FALLBACK_GROUP_ID,
            FALLBACK_GROUP_ID,
            doomed.pk,
            doomed.pk,
        ),
        ("healthy", None, live.pk, None, None, None),
    ]
    # What is left is reported only, and a second --fix changes nothing.
    status, out, _ = run("--model", "tooling.Ticket", "--fix", "--json")
    report = {entry["field"]: entry for entry in json.loads(out)["fields"]}
    assert status == 1
    assert {name for name, entry in report.items() if entry["dangling_rows"]} == {
        "watcher",
        "approver",
    }
    assert all(entry["fixed_rows"] == 0 for entry in report.values())


def test_fix_does_not_touch_protected_rows(people):
    from tests.shop.models import Order, Product

    ann, bob, _cid = people
    Order.objects.create(customer=bob, product=Product.objects.create(name="p"))
    raw_delete(bob)
    status, out, _ = run("--model", "shop.Order", "--fix")
    assert status == 1
    assert "left as they are (on_delete=PROTECT)" in out
    assert Order.objects.get().customer_id == bob.pk


def test_fix_reports_a_cascade_blocked_by_protect_and_deletes_nothing(groups):
    live, doomed = groups
    blocked = Ticket.objects.create(title="has a note", owner=doomed, queue=live)
    TicketNote.objects.create(ticket=blocked, text="keeps it")
    free = Ticket.objects.create(title="no note", owner=doomed, queue=live)
    raw_delete(doomed)
    status, out, error = run(
        "--model", "tooling.Ticket", "--field", "owner", "--fix", "--chunk-size", "1"
    )
    # One chunk (one missing id) for both tickets: the collector refuses the
    # whole chunk before writing anything.
    assert status == 1
    assert "fixed 0 row(s) (delete); could not fix: ProtectedError: Cannot delete some" in out
    assert error == "2 dangling reference(s) in 1 field(s): tooling.Ticket.owner"
    assert set(Ticket.objects.values_list("pk", flat=True)) == {blocked.pk, free.pk}
    status, out, _ = run("--model", "tooling.Ticket", "--field", "owner", "--json")
    assert json.loads(out)["fields"][0]["errors"] == []


def test_to_field_references_are_compared_by_that_field(people):
    ann, bob, _cid = people
    Badge.objects.create(user=ann, label="valid")
    Badge.objects.create(user=bob, label="renamed away")
    raw(User, "UPDATE {table} SET username = %s WHERE id = %s", ["robert", bob.pk])
    status, out, _ = run("--model", "shop.Badge", "--json")
    [entry] = json.loads(out)["fields"]
    assert status == 1
    assert (entry["dangling_rows"], entry["samples"]) == (1, ["bob"])


def test_a_reference_into_a_third_database(people):
    ann, _bob, _cid = people
    post = Post.objects.create(title="p", author=ann)
    Mention.objects.create(post=post, text="m")
    raw_delete(post)
    status, out, _ = run("--model", "shop.Mention", "--json")
    [entry] = json.loads(out)["fields"]
    assert (status, entry["target_alias"], entry["samples"]) == (
        1,
        routing.db_for_write(Post),
        [post.pk],
    )


def test_fix_rechecks_before_writing(people, monkeypatch):
    """A target row that reappears between detection and fix is not acted upon."""
    ann, bob, _cid = people
    Post.objects.create(title="b", author=bob)
    raw_delete(bob)
    original = audit._missing
    calls = []

    def missing(targets, column, values):
        calls.append(list(values))
        if len(calls) == 2:  # the re-check before fixing
            User.objects.create(pk=bob.pk, username="bob again")
        return original(targets, column, values)

    monkeypatch.setattr(audit, "_missing", missing)
    [report] = audit.audit([Post], ["author"], fix=True)
    assert (report.dangling_rows, report.fixed_rows, report.clean) == (1, 0, False)
    assert Post.objects.filter(author_id=bob.pk).exists()


def test_streams_in_sorted_chunks_with_bounded_queries(people, queries):
    ann, _bob, _cid = people
    users = User.objects.bulk_create(User(username=f"u{i}") for i in range(23))
    users = list(User.objects.filter(username__startswith="u").order_by("pk"))
    Post.objects.bulk_create(
        Post(title=f"{user.username}-{n}", author_id=user.pk) for user in users for n in range(2)
    )
    dead = users[3::5]  # 4 of 23
    for user in dead:
        raw_delete(user)
    seen_chunks = []

    def progress(report):
        seen_chunks.append(report.checked)

    field = Post._meta.get_field("author")
    with queries() as q:
        report = audit.audit_field(field, chunk_size=4, sample_size=3, progress=progress)
    assert seen_chunks == [4, 8, 12, 16, 20, 23]
    assert report.checked == 23
    assert (report.dangling_values, report.dangling_rows) == (4, 8)
    assert report.samples == [user.pk for user in dead[:3]]
    post_alias, user_alias = routing.db_for_write(Post), routing.db_for_write(User)
    if post_alias != user_alias:
        # Per chunk: the values on the source alias, one existence check on
        # the target alias; a count on the source only for chunks with orphans.
        chunks_with_orphans = len({users.index(user) // 4 for user in dead})
        assert q.count(user_alias) == 6
        assert q.count(post_alias) == 6 + chunks_with_orphans
        assert not any("blog_post" in sql for sql in q.sql(user_alias))
        assert not any("auth_user" in sql for sql in q.sql(post_alias))
    assert ann.pk not in report.samples


def test_ten_thousand_references_on_every_backend(people):
    users = User.objects.bulk_create(User(username=f"bulk{i}") for i in range(400))
    users = list(User.objects.filter(username__startswith="bulk").order_by("pk"))
    Post.objects.bulk_create(
        Post(title="bulk", author_id=users[n % len(users)].pk) for n in range(10_000)
    )
    Post.objects.bulk_create(Post(title="orphan", author_id=GHOST + n) for n in range(150))
    [report] = audit.audit([Post], ["author"], chunk_size=128)
    assert report.checked == 400 + 150
    assert (report.dangling_values, report.dangling_rows) == (150, 150)
    assert report.samples == [GHOST + n for n in range(5)]


def test_verbosity_2_shows_progress(people):
    ann, _bob, _cid = people
    Post.objects.create(title="a", author=ann)
    _status, out, _ = run("--model", "blog.Post", "--field", "author", "--verbosity", "2")
    assert "  blog.Post.author: 1 ids checked, 0 dangling so far" in out


def test_bad_filters_are_command_errors():
    assert run("--model", "blog.Nothing")[0] == 1
    assert "--model 'blog.Nothing'" in run("--model", "blog.Nothing")[2]
    assert run("--model", "blog.Post", "--field", "title")[2] == (
        "No crossdb field matches --model / --field."
    )
    assert "at least 1" in run("--chunk-size", "0")[2]


def test_the_command_exits_non_zero_from_the_command_line(people, capsys, monkeypatch):
    from django.core.management import ManagementUtility

    ann, bob, _ = people
    Post.objects.create(title="b", author=bob)
    raw_delete(bob)
    # The command closes every connection when it ends: not the test's.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "crossdb_audit", "--model", "blog.Post"]).execute()
    assert exited.value.code == 1
    assert "CommandError: 1 dangling reference(s)" in capsys.readouterr().err
