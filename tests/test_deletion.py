"""Deleting across databases: every on_delete rule and entry point, against the twins.

Each test writes the same rows into the crossdb world (users in default,
posts in blog_db, the rest in shop_db) and the plain-ForeignKey world (all in
default), runs the same operation on both and compares surviving rows,
signals and the counts ``delete()`` returns.
"""

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db import connections
from django.db.models import ProtectedError, RestrictedError
from django.test import override_settings

from crossdb.testing import capture_queries
from tests.ondelete.worlds import (
    CROSS,
    TWIN,
    build,
    counts,
    home_alias,
    name_of,
    recorded_signals,
    snapshot,
)

pytestmark = pytest.mark.django_db(databases="__all__")

ALIASES = ("default", "blog_db", "shop_db")


def both(operation, guards=False, signals=False):
    """Run ``operation(world, users)`` on both worlds; return their outcomes."""
    outcomes = []
    for world in (CROSS, TWIN):
        users = build(world, guards=guards)
        with recorded_signals() as sent:
            if not signals:
                sent = None
            try:
                result = counts(operation(world, users))
            except (ProtectedError, RestrictedError) as error:
                blocking = getattr(error, "protected_objects", None)
                if blocking is None:
                    blocking = error.restricted_objects
                result = (type(error), sorted((name_of(type(o)), str(o.pk)) for o in blocking))
        outcomes.append((result, snapshot(world), sent))
    return outcomes


def _signals_without_using(sent):
    return [entry[:3] for entry in sent]


def _in_django_order(sent, twin_sent):
    """Assert ``sent`` is ``twin_sent`` with each alias's share sent in turn.

    Each alias's share is deleted by Django's own ``delete()``: the same
    signals, each row's pre_delete before its post_delete, and within one
    alias Django's order.
    """
    assert sorted(_signals_without_using(sent)) == sorted(_signals_without_using(twin_sent))
    rank = {entry: i for i, entry in enumerate(_signals_without_using(twin_sent))}
    by_alias = {}
    for entry in sent:
        by_alias.setdefault(entry[3], []).append(rank[entry[:3]])
    for ranks in by_alias.values():
        assert ranks == sorted(ranks)


OPERATIONS = {
    "instance": lambda w, u: u["ann"].delete(),
    "queryset of users": lambda w, u: User.objects.filter(
        pk__in=[u["ann"].pk, u["cat"].pk]
    ).delete(),
    "every user": lambda w, u: User.objects.filter(
        pk__in=[user.pk for user in u.values()]
    ).delete(),
    "posts, cascading to comments, mentions, quotes and replies": lambda w, u: (
        w.Post.objects.filter(title__in=["a2", "b1"]).delete()
    ),
    "user without dependents": lambda w, u: u["cat"].delete(),
    "restricted post": lambda w, u: w.Post.objects.filter(title="a1").delete(),
    "restricted album": lambda w, u: w.Album.objects.get(label="album ann").delete(),
    "album without tracks": lambda w, u: w.Album.objects.get(label="album bob").delete(),
}


@pytest.mark.parametrize("signals", [False, True], ids=["fast deletes", "signal receivers"])
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_same_rows_counts_and_signals_as_plain_foreign_keys(operation, signals):
    (cross, cross_state, cross_sent), (twin, twin_state, twin_sent) = both(
        operation, signals=signals
    )
    if isinstance(cross[0], type):
        # Blocked: same error; blocking rows compared by model (pks differ).
        assert cross[0] is twin[0]
        assert [name for name, _ in cross[1]] == [name for name, _ in twin[1]]
    else:
        assert cross == twin
    assert cross_state == twin_state
    if signals:
        _in_django_order(cross_sent, twin_sent)


def test_protect_anywhere_deletes_nothing_anywhere():
    build(CROSS, guards=True)
    before = snapshot(CROSS)
    targets = User.objects.filter(username__in=["ann", "bob"])
    with capture_queries() as queries:
        with pytest.raises(ProtectedError) as error:
            targets.delete()
    assert {type(obj) for obj in error.value.protected_objects} == {CROSS.Guard}
    assert "'Guard.user'" in str(error.value)
    assert snapshot(CROSS) == before
    for alias in ALIASES:
        writes = [sql for sql in queries.sql(alias) if not sql.lstrip().startswith("SELECT")]
        assert writes == [], alias


def test_restrict_lists_the_restricted_rows_and_deletes_nothing():
    build(CROSS)
    before = snapshot(CROSS)
    post = CROSS.Post.objects.get(title="a1")
    with pytest.raises(RestrictedError) as error:
        post.delete()
    assert [obj.label for obj in error.value.restricted_objects] == ["track ann"]
    assert "'Track.post'" in str(error.value)
    assert snapshot(CROSS) == before


def test_restrict_allowed_when_the_row_is_also_cascaded_across_aliases():
    """Deleting the artist reaches the track through post (RESTRICT) and artist (CASCADE)."""
    users = build(CROSS)
    users["ann"].delete()
    assert not CROSS.Track.objects.exists()
    assert list(CROSS.Album.objects.values_list("label", flat=True)) == ["album bob"]


def test_restrict_refused_when_another_users_row_is_restricted():
    users = build(CROSS)
    CROSS.Track.objects.filter(label="track ann").update(artist_id=users["bob"].pk)
    with pytest.raises(RestrictedError):
        users["ann"].delete()
    assert User.objects.filter(username="ann").exists()
    assert CROSS.Post.objects.filter(author_id=users["ann"].pk).count() == 2


def test_signals_carry_the_alias_of_each_row():
    users = build(CROSS)
    with recorded_signals() as sent:
        users["ann"].delete()
    seen = {(name, using) for _signal, name, _row, using in sent}
    expected = {
        (name_of(model), home_alias(model))
        for model in (User, CROSS.Post, CROSS.Comment, CROSS.Mention, CROSS.Badge, CROSS.Note)
    }
    assert expected <= seen
    assert all(using == home_alias(getattr(CROSS, name, User)) for name, using in seen)


def test_chain_across_three_aliases_is_transitive():
    users = build(CROSS)
    total, per_model = users["ann"].delete()
    assert per_model["blog.Post"] == 2
    assert per_model["ondelete.Quote"] == 1
    assert per_model["ondelete.Reply"] == 1
    assert per_model["shop.Mention"] == 1
    assert per_model["blog.Comment"] == 2  # bob's comment on a1, ann's on b1
    assert total == sum(per_model.values())
    assert list(CROSS.Reply.objects.all()) == []
    assert list(CROSS.Quote.objects.values_list("label", flat=True)) == ["quote b1"]


def test_rules_that_keep_the_row():
    users = build(CROSS)
    ghost = User.objects.get(username="ghost")
    ann_pk = users["ann"].pk
    users["ann"].delete()
    ref = CROSS.Ref.objects.get(label="ref ann")
    assert ref.set_null_id is None
    assert ref.set_default_id == ghost.pk
    assert ref.set_value_id is None
    assert ref.set_callable_id == ghost.pk
    assert ref.do_nothing_id == ann_pk
    untouched = CROSS.Ref.objects.get(label="ref bob")
    assert untouched.set_null_id == users["bob"].pk


def test_no_statement_names_a_table_of_another_alias():
    build(CROSS)
    tables = {
        model._meta.db_table: home_alias(model)
        for model in (User, *(getattr(CROSS, name) for name in ("Post", "Comment", "Mention")))
    } | {
        getattr(CROSS, name)._meta.db_table: home_alias(getattr(CROSS, name))
        for name in ("Ref", "Note", "Quote")
    }
    with capture_queries() as queries:
        User.objects.filter(username__in=["ann", "bob", "cat"]).delete()
    for alias in ALIASES:
        for sql in queries.sql(alias):
            for table, home in tables.items():
                if home != alias:
                    assert f"{table}`" not in sql and f'{table}"' not in sql, (alias, sql)


def test_fast_deletes_where_django_uses_them():
    """Badges and notes have no dependents and no receivers: deleted without a SELECT."""
    build(CROSS)
    build(TWIN)
    for world in (CROSS, TWIN):
        ann = User.objects.get(username=f"{world.prefix}ann")
        with capture_queries() as queries:
            ann.delete()
        for model in (world.Badge, world.Note):
            table = model._meta.db_table
            statements = [sql for sql in queries.sql(home_alias(model)) if table in sql]
            assert [sql.split()[0] for sql in statements] == ["DELETE"], (world.prefix, statements)


def test_dependents_are_looked_up_once_per_relation():
    """One SELECT per relation on the dependents' alias, whatever the number of users."""
    build(CROSS)
    with capture_queries() as queries:
        User.objects.filter(username__in=["ann", "bob", "cat"]).delete()
    post_selects = [
        sql
        for sql in queries.sql(home_alias(CROSS.Post))
        if sql.startswith("SELECT")
        and CROSS.Post._meta.db_table in sql.split("WHERE")[0]
        # The lock on the posts, taken before their own dependents are read.
        and not sql.endswith("FOR UPDATE")
    ]
    assert len(post_selects) == 1


def test_adelete_goes_through_the_same_collector():
    users = build(CROSS)
    total, per_model = async_to_sync(users["ann"].adelete)()
    assert per_model["blog.Post"] == 2
    assert not CROSS.Post.objects.filter(author_id=users["ann"].pk).exists()
    total, per_model = async_to_sync(CROSS.Post.objects.filter(title="b1").adelete)()
    assert per_model["blog.Post"] == 1
    assert per_model["ondelete.Quote"] == 1


@pytest.mark.parametrize(
    "operation",
    [
        lambda manager, post: manager.clear(),
        lambda manager, post: manager.clear(bulk=False),
        lambda manager, post: manager.remove(post),
        lambda manager, post: manager.set([]),
        lambda manager, post: manager.set([post]),
    ],
    ids=["clear", "clear(bulk=False)", "remove", "set([])", "set([post])"],
)
def test_related_manager_nullifies_like_a_foreign_key(operation):
    states = []
    for world in (CROSS, TWIN):
        users = build(world)
        manager = getattr(users["bob"], world.edited)
        manager.add(world.Post.objects.get(title="a2"))
        with recorded_signals() as sent:
            operation(manager, world.Post.objects.get(title="a1"))
        states.append((snapshot(world), sent))
    assert states[0] == states[1]


def test_a_model_collected_on_two_aliases_is_refused():
    """Rows of one model on two aliases would collide by pk: refused, not merged."""
    users = build(CROSS)
    # A stale copy of blog_post exists in default (conftest); deleting those
    # rows by hand plus a user whose posts are in blog_db mixes the two.
    from django.db.models.deletion import Collector

    from crossdb.exceptions import CrossDatabaseQueryError

    collector = Collector(using="default")
    stale = CROSS.Post(pk=10**6, title="stale", author_id=users["ann"].pk)
    stale._state.db = "default"
    collector.collect([stale], keep_parents=True, collect_related=False)
    with pytest.raises(CrossDatabaseQueryError, match="on two databases"):
        collector.collect([users["ann"]])
    assert connections["blog_db"].vendor  # nothing was written: the collector never deletes


def test_rows_deleted_away_from_their_models_alias_do_not_cascade_through_crossdb_fields():
    """crossdb fields point at rows on the target's own alias, not at copies elsewhere."""
    build(CROSS)
    b1 = CROSS.Post.objects.get(title="b1")
    # Posts now live in default as far as the routers know: the rows still in
    # blog_db are a copy, and the mentions and quotes point at default's posts.
    rules = {"shop": "shop_db", "ondelete": "shop_db", "tooling": "shop_db"}
    with override_settings(
        DATABASE_ROUTERS=["crossdb.routers.AppLabelRouter"], DATABASE_ROUTING_RULES=rules
    ):
        total, per_model = CROSS.Post.objects.using("blog_db").filter(pk=b1.pk).delete()
    assert per_model == {"blog.Post": 1, "blog.Comment": 2}
    assert CROSS.Mention.objects.filter(post_id=b1.pk).count() == 1
    assert CROSS.Quote.objects.filter(post_id=b1.pk).count() == 1


def test_rows_an_on_delete_function_loads_are_deleted_where_they_were_read(monkeypatch):
    """A home-made on_delete that hands the collector a list, not a queryset."""

    def cascade_as_list(collector, field, sub_objs, using):
        collector.collect(list(sub_objs), source=field.remote_field.model, fail_on_restricted=False)

    users = build(CROSS)
    remote = CROSS.Note._meta.get_field("user").remote_field
    monkeypatch.setattr(remote, "on_delete", cascade_as_list)
    total, per_model = users["ann"].delete()
    assert per_model["ondelete.Note"] == 1
    assert list(CROSS.Note.objects.values_list("label", flat=True)) == ["note cat"]


def test_delete_of_a_grouped_query_with_a_condition_across_deletes_what_the_join_deletes():
    # Inside one database the condition joins, and Django fast-deletes by
    # pk IN (subquery); across, it is a condition on the local key, and the
    # one-table DELETE could not hold the aggregate (Django's own suite,
    # delete_regress Ticket19102Tests.test_ticket_19102_annotate).  Comments
    # have no dependents: the fast path.
    from django.db.models import Count

    from tests.blog.models import Comment
    from tests.query_helpers import build_world
    from tests.twin.models import TwinComment

    build_world()
    for model in (Comment, TwinComment):
        model.objects.order_by("text").filter(author__username__in=["ann", "bob"]).annotate(
            n=Count("text")
        ).filter(n=1, text__startswith="n").delete()
    texts = sorted(Comment.objects.values_list("text", flat=True))
    assert texts == sorted(TwinComment.objects.values_list("text", flat=True))
    assert texts == ["anon", "nice2", "self", "thanks"]
