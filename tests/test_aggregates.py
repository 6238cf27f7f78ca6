"""Aggregates across a reverse crossdb relation, against the plain-ForeignKey twin."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db.models import Avg, Count, DecimalField, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.test import override_settings

from crossdb import CrossDatabaseLimitError, CrossDatabaseQueryError
from tests.blog.models import Post
from tests.query_helpers import build_world
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")

CROSSDB, TWIN = "blog_posts", "twin_posts"


def _p(rel, path=""):
    return f"{rel}__{path}" if path else rel


class _Float(float):
    """An average, equal within MySQL's rounding of AVG() (div_precision_increment=4)."""

    def __eq__(self, other):
        return isinstance(other, float) and abs(self - other) <= 1e-4 * max(1.0, abs(other))

    __hash__ = float.__hash__

    def __repr__(self):
        return f"{float(self):.6g}"


def _normal(value):
    if isinstance(value, float) or (value is not None and type(value).__name__ == "Decimal"):
        return _Float(value)
    return value


def rows(queryset, *fields):
    """Return ``queryset``'s rows as tuples of plain values (floats rounded)."""
    return [tuple(_normal(value) for value in row) for row in queryset.values_list(*fields)]


# (name, build(rel) -> queryset of users, fields read)
ANNOTATE_CASES = {
    "count": (lambda r: User.objects.annotate(n=Count(r)), ("username", "n")),
    "count_column": (lambda r: User.objects.annotate(n=Count(_p(r, "editor"))), ("username", "n")),
    "count_distinct": (
        lambda r: User.objects.annotate(n=Count(_p(r, "score"), distinct=True)),
        ("username", "n"),
    ),
    "count_pk_distinct": (
        lambda r: User.objects.annotate(n=Count(r, distinct=True)),
        ("username", "n"),
    ),
    "sum": (lambda r: User.objects.annotate(s=Sum(_p(r, "score"))), ("username", "s")),
    "sum_distinct": (
        lambda r: User.objects.annotate(s=Sum(_p(r, "score"), distinct=True)),
        ("username", "s"),
    ),
    "sum_default": (
        lambda r: User.objects.annotate(s=Sum(_p(r, "score"), default=0)),
        ("username", "s"),
    ),
    "avg": (lambda r: User.objects.annotate(a=Avg(_p(r, "score"))), ("username", "a")),
    "avg_output_field": (
        # Django's suite: aggregation test_expression_on_aggregation.
        lambda r: User.objects.annotate(
            a=Greatest(Avg(_p(r, "score"), output_field=DecimalField()), Value(Decimal(2)))
        ),
        ("username", "a"),
    ),
    "avg_output_field_grouped": (
        lambda r: User.objects.values("is_staff").annotate(
            a=Avg(_p(r, "score"), output_field=DecimalField())
        ),
        ("is_staff", "a"),
    ),
    "min_max": (
        lambda r: User.objects.annotate(lo=Min(_p(r, "score")), hi=Max(_p(r, "score"))),
        ("username", "lo", "hi"),
    ),
    "filtered": (
        lambda r: User.objects.annotate(
            n=Count(r, filter=Q(**{_p(r, "published"): True})),
            s=Sum(
                _p(r, "score"),
                filter=Q(**{_p(r, "score__gte"): 3}) | Q(**{_p(r, "title"): "delta"}),
            ),
        ),
        ("username", "n", "s"),
    ),
    "having": (
        lambda r: User.objects.annotate(n=Count(r)).filter(n__gt=1),
        ("username", "n"),
    ),
    "having_exclude": (
        lambda r: User.objects.annotate(s=Sum(_p(r, "score"))).exclude(s__lt=6),
        ("username", "s"),
    ),
    "arithmetic": (
        lambda r: User.objects.annotate(n=Count(r)).annotate(m=F("n") * 10 + F("id") - F("id")),
        ("username", "m"),
    ),
    "inline_arithmetic": (
        lambda r: User.objects.annotate(m=Count(r) * 2 + Coalesce(Max(_p(r, "score")), Value(0))),
        ("username", "m"),
    ),
    "local_filter_first": (
        lambda r: User.objects.filter(is_staff=False).annotate(n=Count(r)),
        ("username", "n"),
    ),
    "alias": (
        lambda r: User.objects.alias(n=Count(r)).filter(n__gte=2),
        ("username",),
    ),
    "far_join": (
        lambda r: User.objects.annotate(n=Count(_p(r, "comments"))),
        ("username", "n"),
    ),
    "with_local_many": (
        # Another multi-valued JOIN multiplies the counted rows, in Django as here.
        lambda r: User.objects.annotate(n=Count(r), g=Count("groups")),
        ("username", "n", "g"),
    ),
    "values_grouped": (
        lambda r: User.objects.values("is_staff").annotate(
            n=Count(r), s=Sum(_p(r, "score")), a=Avg(_p(r, "score")), hi=Max(_p(r, "score"))
        ),
        ("is_staff", "n", "s", "a", "hi"),
    ),
}


def _ordered(queryset, fields):
    return (
        queryset.order_by(*[f for f in fields if f != "username"], "username")
        if ("username" in fields)
        else queryset.order_by(*fields)
    )


@pytest.mark.parametrize("carrier", ["json", "table"])
@pytest.mark.parametrize("name", sorted(ANNOTATE_CASES))
def test_annotate_matches_the_twin(name, carrier, stale_users, monkeypatch):
    """Each case as one parameter (a few pairs) and through the pair table (many pairs)."""
    from crossdb import transport

    if carrier == "table":
        monkeypatch.setattr(transport, "MYSQL_PAIRS_TABLE_ROWS", 0)
        monkeypatch.setattr(transport, "SQLITE_PAIRS_TABLE_ROWS", 0)
    build_world()
    stale_users()
    build, fields = ANNOTATE_CASES[name]
    got = rows(_ordered(build(CROSSDB), fields), *fields)
    assert got == rows(_ordered(build(TWIN), fields), *fields)
    assert got


@pytest.mark.parametrize("name", ["avg_output_field", "avg_output_field_grouped"])
def test_an_average_s_output_field_is_the_type_django_answers_in(name):
    build_world()
    build, fields = ANNOTATE_CASES[name]
    got = [type(v) for row in _ordered(build(CROSSDB), fields).values_list(*fields) for v in row]
    twin = [type(v) for row in _ordered(build(TWIN), fields).values_list(*fields) for v in row]
    assert got == twin


@pytest.mark.parametrize("rel", [CROSSDB, TWIN])
def test_ordering_slicing_count_and_exists(rel):
    build_world()
    queryset = User.objects.annotate(n=Count(rel)).filter(n__gt=0).order_by("-n", "username")
    assert [(u.username, u.n) for u in queryset[:2]] == [("ann", 2), ("bob", 2)]
    assert [u.username for u in queryset[1:3]] == ["bob", "cat"]
    assert queryset.count() == 3
    assert queryset.exists()
    assert not queryset.filter(n__gt=2).exists()
    assert User.objects.annotate(n=Count(rel)).count() == 5


def test_order_by_an_annotation_like_a_drf_ordering_parameter():
    build_world()
    for param in ("n", "-n"):
        got = User.objects.annotate(n=Count(CROSSDB)).order_by(param, "username")
        twin = User.objects.annotate(n=Count(TWIN)).order_by(param, "username")
        assert rows(got, "username", "n") == rows(twin, "username", "n")


def test_empty_far_side_counts_zero_and_sums_none():
    User.objects.create(username="solo")
    user = User.objects.annotate(
        n=Count(CROSSDB), s=Sum(_p(CROSSDB, "score")), hi=Max(_p(CROSSDB, "score"))
    ).get()
    assert (user.n, user.s, user.hi) == (0, None, None)
    assert User.objects.aggregate(n=Count(CROSSDB), s=Sum(_p(CROSSDB, "score"))) == {
        "n": 0,
        "s": None,
    }


AGGREGATE_CASES = {
    "count": lambda r: {"n": Count(r)},
    "count_pk_distinct": lambda r: {"n": Count(r, distinct=True)},
    "sum_avg": lambda r: {"s": Sum(_p(r, "score")), "a": Avg(_p(r, "score"))},
    "min_max": lambda r: {"lo": Min(_p(r, "score")), "hi": Max(_p(r, "score"))},
    "filtered": lambda r: {"n": Count(r, filter=Q(**{_p(r, "published"): False}))},
    "default": lambda r: {
        "s": Sum(_p(r, "score"), filter=Q(**{_p(r, "score__gt"): 99}), default=0)
    },
}


@pytest.mark.parametrize("name", sorted(AGGREGATE_CASES))
@pytest.mark.parametrize("users", ["all", "filtered"])
def test_aggregate_matches_the_twin(name, users, stale_users):
    build_world()
    stale_users()

    def base():
        queryset = User.objects.order_by("username")
        if users == "filtered":
            return queryset.filter(username__in=["ann", "cat", "eve"])
        return queryset

    got = base().aggregate(**AGGREGATE_CASES[name](CROSSDB))
    twin = base().aggregate(**AGGREGATE_CASES[name](TWIN))
    assert {k: _normal(v) for k, v in got.items()} == {k: _normal(v) for k, v in twin.items()}


def test_aggregate_over_an_annotation():
    build_world()
    got = User.objects.annotate(n=Count(CROSSDB)).aggregate(total=Sum("n"), most=Max("n"))
    assert got == User.objects.annotate(n=Count(TWIN)).aggregate(total=Sum("n"), most=Max("n"))


def test_one_far_query_per_relation_whatever_the_rows(queries):
    build_world()
    for index in range(30):
        user = User.objects.create(username=f"u{index}")
        Post.objects.create(title=f"t{index}", author=user, score=index)
    queryset = User.objects.annotate(
        n=Count(CROSSDB), s=Sum(_p(CROSSDB, "score")), e=Count("edited_posts")
    ).order_by("-s")
    with queries() as q:
        result = list(queryset)
    assert len(result) == 35
    counts = q.counts()
    # blog_posts and edited_posts: one grouped query each on blog_db.
    assert counts["blog_db"] == 2
    assert counts["default"] == 1
    assert counts["shop_db"] == 0
    assert all("GROUP BY" in sql for sql in q.sql("blog_db"))


def test_the_far_groups_are_bounded_by_crossdb_max_ids():
    build_world()
    with override_settings(CROSSDB_MAX_IDS=2):
        with pytest.raises(CrossDatabaseLimitError, match="CROSSDB_MAX_IDS=2"):
            list(User.objects.annotate(n=Count(CROSSDB)))


def test_a_dangling_key_counts_for_no_user():
    build_world()
    ghost = User.objects.create(username="ghost")
    Post.objects.create(title="orphan", author=ghost)
    User.objects.filter(pk=ghost.pk)._raw_delete("default")
    assert sum(u.n for u in User.objects.annotate(n=Count(CROSSDB))) == 6


RAISES = {
    # filter() then annotate() across one relation aggregates the filter's rows
    # (tests/test_query_rows.py); with filter= or Min of a string it is refused.
    "filter_then_annotate": lambda: User.objects.filter(blog_posts__score__gte=3).annotate(
        n=Count("blog_posts", filter=Q(blog_posts__published=True))
    ),
    "filter_then_min_of_a_string": lambda: User.objects.filter(blog_posts__score__gte=3).annotate(
        first=Min("blog_posts__title")
    ),
    "grouped_distinct": lambda: User.objects.values("is_staff").annotate(
        n=Count("blog_posts__score", distinct=True)
    ),
    "aggregate_sum_distinct": lambda: User.objects.aggregate(
        s=Sum("blog_posts__score", distinct=True)
    ),
    "local_condition": lambda: User.objects.annotate(
        n=Count("blog_posts", filter=Q(is_staff=True))
    ),
    # Django slices (or de-duplicates) the JOINed rows, not the users.
    "aggregate_sliced": lambda: User.objects.order_by("username")[:3].aggregate(
        n=Count("blog_posts")
    ),
    "aggregate_distinct": lambda: User.objects.distinct().aggregate(n=Count("blog_posts")),
    "aggregate_over_grouped": lambda: User.objects.annotate(g=Count("groups")).aggregate(
        n=Count("blog_posts")
    ),
    "mixed_in_one": lambda: User.objects.annotate(n=Sum(F("blog_posts__score") + F("id"))),
}


@pytest.mark.parametrize("name", sorted(RAISES))
def test_what_cannot_be_split_raises_naming_the_path(name):
    build_world()
    with pytest.raises(CrossDatabaseQueryError) as error:
        result = RAISES[name]()
        if hasattr(result, "query"):
            list(result)
    assert "auth.User" in str(error.value)


def test_exclude_across_the_relation_keeps_the_aggregate():
    build_world()
    got = User.objects.exclude(blog_posts__published=False).annotate(n=Count(CROSSDB))
    twin = User.objects.exclude(twin_posts__published=False).annotate(n=Count(TWIN))
    assert rows(got.order_by("username"), "username", "n") == rows(
        twin.order_by("username"), "username", "n"
    )


# -- the admin changelist sorted by an annotated count --

from django.contrib import admin  # noqa: E402
from django.test import RequestFactory  # noqa: E402


def _user_admin(rel):
    class PostCountAdmin(admin.ModelAdmin):
        list_display = ("username", "post_count")

        def get_queryset(self, request):
            return super().get_queryset(request).annotate(n=Count(rel))

        @admin.display(ordering="n")
        def post_count(self, user):
            return user.n

    return PostCountAdmin(User, admin.AdminSite(name=f"aggregates_{rel}"))


@pytest.mark.parametrize("params", [{}, {"o": "2"}, {"o": "-2.1"}])
def test_the_admin_changelist_sorts_by_an_annotated_count(params):
    build_world()
    superuser = User.objects.create_superuser("root", "root@x.org", "pw")
    answers = []
    for rel in (CROSSDB, TWIN):
        request = RequestFactory().get("/", params)
        request.user = superuser
        changelist = _user_admin(rel).get_changelist_instance(request)
        changelist.get_results(request)
        answers.append(
            ([(u.username, u.n) for u in changelist.result_list], changelist.result_count)
        )
    assert answers[0] == answers[1]
    assert answers[0][1] == 6
    if params.get("o") == "-2.1":
        assert [n for _name, n in answers[0][0]][:3] == [2, 2, 2]


def test_many_groups_travel_through_the_backend_s_large_carrier(monkeypatch):
    """SQLite and MySQL/MariaDB load many pairs into an indexed temporary table: same answers."""
    from crossdb import transport

    monkeypatch.setattr(transport, "MYSQL_PAIRS_TABLE_ROWS", 3)
    monkeypatch.setattr(transport, "SQLITE_PAIRS_TABLE_ROWS", 3)
    build_world()
    for index in range(12):
        user = User.objects.create(username=f"many{index}")
        Post.objects.create(title=f"m{index}", author=user, score=index)
        TwinPost.objects.create(title=f"m{index}", author=user, score=index)
    for _repeat in range(2):  # a second run on the same connection reuses nothing stale
        got = User.objects.annotate(n=Count(CROSSDB), hi=Max(_p(CROSSDB, "score")))
        twin = User.objects.annotate(n=Count(TWIN), hi=Max(_p(TWIN, "score")))
        fields = ("username", "n", "hi")
        assert rows(got.order_by("-hi", "username"), *fields) == rows(
            twin.order_by("-hi", "username"), *fields
        )


def test_more_pair_tables_than_a_connection_keeps(monkeypatch):
    """Older pair tables are dropped as new ones are made: every run keeps answering."""
    from crossdb import transport

    monkeypatch.setattr(transport, "MYSQL_PAIRS_TABLE_ROWS", 0)
    monkeypatch.setattr(transport, "SQLITE_PAIRS_TABLE_ROWS", 0)
    build_world()
    expected = rows(User.objects.annotate(n=Count(TWIN)).order_by("username"), "username", "n")
    for _run in range(transport._KEPT_PAIR_TABLES + 2):
        got = User.objects.annotate(n=Count(CROSSDB)).order_by("username")
        assert rows(got, "username", "n") == expected


@pytest.mark.parametrize("engine", ["memory", "innodb"])
def test_pairs_loaded_in_pieces_under_a_small_packet_limit(engine, monkeypatch):
    """MySQL/MariaDB load the pair table from JSON texts each under max_allowed_packet."""
    from crossdb import transport

    monkeypatch.setattr(transport, "MYSQL_PAIRS_TABLE_ROWS", 0)
    monkeypatch.setattr(transport, "SQLITE_PAIRS_TABLE_ROWS", 0)
    # A packet a little above the statement's margin: a few pairs a text.
    monkeypatch.setattr(transport, "max_packet", lambda connection: 64 * 1024 + 40)
    if engine == "innodb":
        monkeypatch.setattr(transport, "_fits_memory", lambda *args: False)
    build_world()
    for index in range(12):
        user = User.objects.create(username=f"piece{index}")
        for score in range(index % 3):
            Post.objects.create(title=f"p{index}-{score}", author=user, score=score)
            TwinPost.objects.create(title=f"p{index}-{score}", author=user, score=score)
    fields = ("username", "n", "hi")
    got = User.objects.annotate(n=Count(CROSSDB), hi=Max(_p(CROSSDB, "score")))
    twin = User.objects.annotate(n=Count(TWIN), hi=Max(_p(TWIN, "score")))
    assert rows(got.order_by("username"), *fields) == rows(twin.order_by("username"), *fields)
    pieces = list(transport._json_chunks([(i, i) for i in range(40)], 64 * 1024 + 40))
    assert len(pieces) > 1
    assert [row for piece in pieces for row in json.loads(piece)] == [[i, i] for i in range(40)]


@pytest.mark.parametrize("many", [False, True], ids=["json", "table"])
def test_a_string_key_to_field_relation(many, monkeypatch):
    """Badge.user references User.username: the pairs' keys are strings, compared exactly."""
    from crossdb import transport
    from tests.shop.models import Badge
    from tests.twin.models import TwinBadge

    if many:
        monkeypatch.setattr(transport, "MYSQL_PAIRS_TABLE_ROWS", 1)
        monkeypatch.setattr(transport, "SQLITE_PAIRS_TABLE_ROWS", 1)
    world = build_world()
    for label in ("bronze", "tin"):
        Badge.objects.create(user=world.users["ann"], label=label)
        TwinBadge.objects.create(user=world.users["ann"], label=label)
    got = User.objects.annotate(n=Count("badges"), last=Max("badges__label")).order_by("username")
    twin = User.objects.annotate(n=Count("twin_badges"), last=Max("twin_badges__label"))
    fields = ("username", "n", "last")
    assert rows(got, *fields) == rows(twin.order_by("username"), *fields)
    assert rows(got, *fields)[0] == ("ann", 3, "tin")


def test_a_filtered_queryset_reads_the_far_groups_of_its_own_keys(queries):
    build_world()
    queryset = User.objects.filter(username__in=["ann", "eve"]).annotate(n=Count(CROSSDB))
    with queries() as q:
        got = sorted((u.username, u.n) for u in queryset)
    assert got == [("ann", 2), ("eve", 0)]
    # The local keys first, then one far GROUP BY restricted to them.
    assert q.counts()["default"] == 2
    (far,) = q.sql("blog_db")
    assert "GROUP BY" in far
    ann = User.objects.get(username="ann")
    assert str(ann.pk) in far or "ANY" in far or "json_each" in far


def test_a_filter_across_another_database_is_not_evaluated_twice(queries):
    build_world()
    queryset = User.objects.filter(orders__quantity__gte=2).annotate(n=Count(CROSSDB))
    with queries() as q:
        got = sorted((u.username, u.n) for u in queryset)
    twin = User.objects.filter(twin_orders__quantity__gte=2).annotate(n=Count(TWIN))
    assert got == sorted((u.username, u.n) for u in twin)
    assert q.counts()["shop_db"] == 1
    assert q.counts()["blog_db"] == 1


# -- across a local relation first (depth 2): Comment -> post -> Mention on shop_db --

PREFIXED = {
    "comment_post_mentions": lambda m: m.objects.annotate(
        n=Count("post__mentions"), last=Max("post__mentions__text")
    ),
    "comment_post_mentions_having": lambda m: m.objects.annotate(n=Count("post__mentions")).filter(
        n__gt=0
    ),
    "comment_post_mentions_aggregate": lambda m: m.objects.filter(text__startswith="n").annotate(
        n=Count("post__mentions", distinct=True)
    ),
}


@pytest.mark.parametrize("name", sorted(PREFIXED))
def test_an_aggregate_across_a_local_relation_first(name):
    from tests.blog.models import Comment
    from tests.twin.models import TwinComment

    build_world()
    fields = ["text", "n", "last"] if name == "comment_post_mentions" else ["text", "n"]
    got = rows(PREFIXED[name](Comment).order_by("text"), *fields)
    assert got == rows(PREFIXED[name](TwinComment).order_by("text"), *fields)
    assert got
    total = Comment.objects.aggregate(n=Count("post__mentions"))
    assert total == TwinComment.objects.aggregate(n=Count("post__mentions"))


def test_a_forward_crossing_first_is_refused_naming_the_path():
    build_world()
    with pytest.raises(CrossDatabaseQueryError, match="editor__blog_posts"):
        list(Post.objects.annotate(n=Count("editor__blog_posts")))


def test_a_pickled_query_reads_the_far_side_when_it_runs():
    import pickle

    build_world()
    queryset = User.objects.annotate(n=Count(CROSSDB)).filter(n__gt=0).order_by("-n", "username")
    restored = User.objects.all()
    restored.query = pickle.loads(pickle.dumps(queryset.query))
    assert [(u.username, u.n) for u in restored] == [("ann", 2), ("bob", 2), ("cat", 2)]


@pytest.mark.parametrize("combine", ["union", "or"])
def test_combined_annotated_querysets_match_the_twin(combine):
    build_world()

    def build(rel):
        first = User.objects.filter(username="ann").annotate(n=Count(rel))
        second = User.objects.filter(username__in=["cat", "dan"]).annotate(n=Count(rel))
        if combine == "union":
            return sorted(
                first.values_list("username", "n").union(second.values_list("username", "n"))
            )
        return sorted((u.username, u.n) for u in first | second)

    assert build(CROSSDB) == build(TWIN)
    assert build(CROSSDB)[0] == ("ann", 2)
