"""Integrity on write: a crossdb key pointing at a missing target fails as a constraint would.

These tests commit for real (``transaction=True``): inside the test case's
own transaction a deferred check, like a deferred constraint, would never be
reached.  Each behaviour is compared with the plain-ForeignKey twin inside
``default`` where Django's own constraint answers.
"""

import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db.models import CASCADE, F
from django.test import override_settings

from crossdb import integrity
from crossdb.fields import CrossDatabaseForeignKey
from tests.blog.models import Post
from tests.shop.models import Badge, Mention, Profile
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

GHOST = 987654  # an id no user has


@pytest.fixture
def ann():
    return User.objects.create(username="ann")


def selects(q, alias):
    return [sql for sql in q.sql(alias) if sql.lstrip().upper().startswith("SELECT")]


def assert_names(error, label, value, alias):
    message = str(error.value)
    assert f"{label} points at" in message
    assert f"={value!r}" in message
    assert f"database {alias!r}" in message


# -- each way of writing --------------------------------------------------


def test_create_of_a_missing_target_raises_and_writes_nothing_as_the_twin(ann):
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            TwinPost.objects.create(title="t", author_id=GHOST)
    with pytest.raises(integrity.MissingTargetError) as error:
        Post.objects.create(title="p", author_id=GHOST)
    assert isinstance(error.value, IntegrityError)
    assert_names(error, "blog.Post.author", GHOST, "default")
    assert (Post.objects.count(), TwinPost.objects.count()) == (0, 0)


def test_create_of_an_existing_target_checks_it_with_one_query_on_the_write_alias(ann, queries):
    with queries("default", "blog_db", "shop_db") as q:
        post = Post.objects.create(title="p", author=ann)
    assert len(selects(q, "default")) == 1
    assert selects(q, "blog_db") == selects(q, "shop_db") == []
    assert Post.objects.get().author_id == post.author_id == ann.pk


def test_save_of_a_changed_key_raises_and_leaves_the_row(ann):
    post = Post.objects.create(title="p", author=ann)
    post.author_id = GHOST
    with pytest.raises(IntegrityError) as error:
        post.save()
    assert_names(error, "blog.Post.author", GHOST, "default")
    assert Post.objects.get().author_id == ann.pk


def test_bulk_create_checks_every_row_in_one_query_per_batch_and_writes_nothing(ann, queries):
    bob = User.objects.create(username="bob")
    rows = [Post(title=f"p{n}", author_id=(ann.pk, bob.pk)[n % 2]) for n in range(40)]
    with queries("default") as q:
        Post.objects.bulk_create(rows, batch_size=10)
    # One check per field and transaction: the ids of all four batches in one query.
    assert len(selects(q, "default")) == 1
    assert Post.objects.count() == 40

    rows = [Post(title=f"q{n}", author=ann) for n in range(5)] + [Post(title="x", author_id=GHOST)]
    with pytest.raises(IntegrityError) as error:
        Post.objects.bulk_create(rows, batch_size=2)
    assert_names(error, "blog.Post.author", GHOST, "default")
    assert Post.objects.count() == 40


def test_bulk_update_of_a_missing_target_raises_and_changes_nothing(ann, queries):
    bob = User.objects.create(username="bob")
    posts = Post.objects.bulk_create([Post(title=f"p{n}", author=ann) for n in range(4)])
    posts = list(Post.objects.all())
    for post in posts:
        post.author = bob
    with queries("default", "blog_db") as q:
        Post.objects.bulk_update(posts, ["author"], batch_size=2)
    # The values come from bulk_update's CASE, not from reading the rows back.
    assert len(selects(q, "default")) == 1
    assert len(selects(q, "blog_db")) == 0
    assert set(Post.objects.values_list("author_id", flat=True)) == {bob.pk}
    posts[-1].author_id = GHOST
    with pytest.raises(IntegrityError) as error:
        Post.objects.bulk_update(posts, ["author"])
    assert_names(error, "blog.Post.author", GHOST, "default")
    assert set(Post.objects.values_list("author_id", flat=True)) == {bob.pk}


def test_update_of_the_key_column_is_checked_like_a_constraint(ann):
    Post.objects.create(title="p", author=ann)
    TwinPost.objects.create(title="p", author=ann)
    for model in (TwinPost, Post):
        with pytest.raises(IntegrityError):
            with transaction.atomic(using=model.objects.db):
                model.objects.update(author_id=GHOST)
        assert model.objects.get().author_id == ann.pk
        # Rows matched: none; written: none; a constraint has nothing to refuse.
        assert model.objects.filter(title="none").update(author_id=GHOST) == 0
    with pytest.raises(IntegrityError) as error:
        Post.objects.update(author_id=GHOST)
    assert_names(error, "blog.Post.author", GHOST, "default")
    bob = User.objects.create(username="bob")
    assert Post.objects.update(author=bob, editor=ann) == 1
    assert Post.objects.values_list("author_id", "editor_id").get() == (bob.pk, ann.pk)


def test_update_from_an_expression_checks_the_values_it_writes(ann):
    bob = User.objects.create(username="bob")
    Post.objects.create(title="p", author=ann, editor=bob)
    Post.objects.update(editor=F("author"))
    assert Post.objects.get().editor_id == ann.pk
    User.objects.filter(pk=bob.pk)._raw_delete("default")
    with integrity.unchecked():
        Post.objects.update(author_id=bob.pk)
    with pytest.raises(IntegrityError) as error:
        Post.objects.update(editor=F("author"))
    assert_names(error, "blog.Post.editor", bob.pk, "default")
    assert Post.objects.get().editor_id == ann.pk


def test_null_and_set_null_are_not_checked(ann, queries):
    post = Post.objects.create(title="p", author=ann, editor=ann)
    with queries("default") as q:
        Post.objects.update(editor=None)
    assert selects(q, "default") == []
    assert Post.objects.get(pk=post.pk).editor_id is None


def test_to_field_and_one_to_one_keys_are_checked_on_their_column(ann):
    Badge.objects.create(user=ann, label="ok")
    with pytest.raises(IntegrityError) as error:
        Badge.objects.create(user_id="nobody", label="x")
    assert_names(error, "shop.Badge.user", "nobody", "default")
    with pytest.raises(IntegrityError):
        Profile.objects.create(user_id=GHOST, nickname="x")
    assert (Badge.objects.count(), Profile.objects.count()) == (1, 0)


def test_a_target_in_a_non_default_database_is_checked_there(ann):
    post = Post.objects.create(title="p", author=ann)
    Mention.objects.create(post=post, text="ok")
    with pytest.raises(IntegrityError) as error:
        Mention.objects.create(post_id=GHOST, text="x")
    assert_names(error, "shop.Mention.post", GHOST, "blog_db")
    assert Mention.objects.count() == 1


def test_reads_from_a_replica_never_decide_the_check(ann):
    """Routers may send reads to a replica; the check asks the write alias."""

    class UserReadsToShopDb:
        # shop_db's copy of auth_user does not hold ann: reading it would refuse her.
        def db_for_read(self, model, **hints):
            return "shop_db" if model is User else None

    with override_settings(
        DATABASE_ROUTERS=[UserReadsToShopDb(), "crossdb.routers.AppLabelRouter"]
    ):
        Post.objects.create(title="p", author=ann)
        with pytest.raises(IntegrityError) as error:
            Post.objects.create(title="p", author_id=GHOST)
    assert_names(error, "blog.Post.author", GHOST, "default")
    assert Post.objects.count() == 1


# -- deferred inside a transaction ----------------------------------------


def test_inside_atomic_the_check_waits_for_the_commit_and_its_failure_rolls_back(ann):
    with pytest.raises(IntegrityError) as error:
        with transaction.atomic(using="blog_db"):
            Post.objects.create(title="kept until commit", author=ann)
            Post.objects.create(title="dangles", author_id=GHOST)
            assert Post.objects.count() == 2  # no error yet: deferred
    assert_names(error, "blog.Post.author", GHOST, "default")
    assert Post.objects.count() == 0
    # The connection is usable again, and the failed check is not left pending.
    Post.objects.create(title="after", author=ann)
    assert Post.objects.count() == 1


def test_a_child_may_be_written_before_its_parent_in_one_block():
    with transaction.atomic(using="default"), transaction.atomic(using="blog_db"):
        Post.objects.create(title="first", author_id=GHOST)
        User.objects.create(pk=GHOST, username="late parent")
    assert Post.objects.get().author.username == "late parent"
    # The other nesting: default's transaction commits after blog_db's check ran inside it.
    with transaction.atomic(using="blog_db"), transaction.atomic(using="default"):
        Post.objects.create(title="second", author_id=GHOST + 1)
        User.objects.create(pk=GHOST + 1, username="later parent")
    assert Post.objects.count() == 2


def test_a_parent_deleted_before_the_commit_is_found_missing(ann):
    with pytest.raises(IntegrityError):
        with transaction.atomic(using="default"), transaction.atomic(using="blog_db"):
            Post.objects.create(title="p", author=ann)
            User.objects.filter(pk=ann.pk)._raw_delete("default")
    assert Post.objects.count() == 0
    assert User.objects.filter(pk=ann.pk).exists()


def test_a_savepoint_rolled_back_takes_its_checks_with_it(ann):
    with transaction.atomic(using="blog_db"):
        Post.objects.create(title="kept", author=ann)
        try:
            with transaction.atomic(using="blog_db"):
                Post.objects.create(title="undone", author_id=GHOST)
                raise RuntimeError("undo")
        except RuntimeError:
            pass
    assert list(Post.objects.values_list("title", flat=True)) == ["kept"]


def test_a_rolled_back_transaction_leaves_no_check_behind(ann):
    with pytest.raises(RuntimeError):
        with transaction.atomic(using="blog_db"):
            Post.objects.create(title="undone", author_id=GHOST)
            raise RuntimeError
    with transaction.atomic(using="blog_db"):
        Post.objects.create(title="fine", author=ann)
    assert Post.objects.count() == 1


def test_check_deferred_runs_the_pending_checks_early(ann):
    with transaction.atomic(using="blog_db"):
        Post.objects.create(title="p", author=ann)
        integrity.check_deferred("blog_db")
        Post.objects.create(title="q", author_id=GHOST)
        with pytest.raises(IntegrityError):
            integrity.check_deferred("blog_db")
        transaction.set_rollback(True, using="blog_db")
    assert Post.objects.count() == 0


# -- loaddata ---------------------------------------------------------------


@pytest.fixture
def fixture(tmp_path):
    rows = [
        {"model": "blog.post", "pk": 1, "fields": {"title": "p", "author": GHOST}},
        {"model": "shop.mention", "pk": 1, "fields": {"post": 1, "text": "m"}},
        {"model": "auth.user", "pk": GHOST, "fields": {"username": "fixture", "password": ""}},
    ]
    path = tmp_path / "world.json"
    path.write_text(json.dumps(rows))
    return str(path)


@pytest.mark.parametrize(
    "order",
    [
        ("shop_db", "blog_db", "default"),
        ("default", "blog_db", "shop_db"),
        ("blog_db", "shop_db", "default"),
    ],
)
def test_loaddata_of_crossdb_fixtures_works_in_any_order(fixture, order):
    # One transaction per alias, as one loaddata call is for one database.
    with transaction.atomic(using="default"):
        with transaction.atomic(using="blog_db"), transaction.atomic(using="shop_db"):
            for alias in order:
                call_command("loaddata", fixture, database=alias, verbosity=0)
    mention = Mention.objects.get()
    assert (mention.post.title, mention.post.author.username) == ("p", "fixture")


def test_loaddata_of_a_fixture_whose_targets_are_missing_fails_and_loads_nothing(fixture):
    with pytest.raises(IntegrityError) as error:
        call_command("loaddata", fixture, database="blog_db", verbosity=0)
    assert_names(error, "blog.Post.author", GHOST, "default")
    assert Post.objects.count() == 0


# -- opting out -------------------------------------------------------------


def test_the_setting_the_field_option_and_unchecked_write_dangling_rows_on_purpose(queries):
    with override_settings(CROSSDB_CHECK_INTEGRITY=False), queries("default") as q:
        Post.objects.create(title="setting", author_id=GHOST)
    with integrity.unchecked(), queries("default") as q2:
        Post.objects.bulk_create([Post(title="block", author_id=GHOST)])
        Post.objects.update(author_id=GHOST + 1)
    field = Post._meta.get_field("author")
    field.check_integrity = False
    try:
        Post.objects.create(title="field", author_id=GHOST)
    finally:
        field.check_integrity = True
    assert selects(q, "default") == selects(q2, "default") == []
    assert Post.objects.count() == 3
    with pytest.raises(IntegrityError):
        Post.objects.create(title="checked again", author_id=GHOST)


def test_check_integrity_false_is_kept_in_migrations_and_true_is_not():
    on = CrossDatabaseForeignKey("auth.User", on_delete=CASCADE)
    off = CrossDatabaseForeignKey("auth.User", on_delete=CASCADE, check_integrity=False)
    assert "check_integrity" not in on.deconstruct()[3]
    assert off.deconstruct()[3]["check_integrity"] is False
    assert (on.check_integrity, off.check_integrity) == (True, False)
