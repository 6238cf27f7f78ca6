"""order_by() on a column across a single-valued crossdb relation, against the twin."""

import pytest
from django.contrib.auth.models import User
from django.db import connections, models, router
from django.db.models import F
from django.db.models.functions import Lower
from django.test import override_settings
from django.test.utils import isolate_apps

from crossdb import CrossDatabaseForeignKey, CrossDatabaseLimitError, CrossDatabaseQueryError
from tests.blog.models import Comment, Post
from tests.query_helpers import TWIN_MODEL, build_world, natural, twin_lookup
from tests.shop.models import Badge, Mention

pytestmark = pytest.mark.django_db(databases="__all__")

# (model, ordering); each ends with a unique key, since ties are in any order.
CASES = [
    (Post, ("author__username", "id")),
    (Post, ("-author__username", "id")),
    (Post, ("author__is_staff", "-score", "id")),
    (Post, ("-author__last_login", "id")),
    (Post, ("author__shop_profile__nickname", "id")),
    (Comment, ("post__author__username", "-id")),
    (Comment, ("author__email", "id")),
    (Mention, ("post__author__username", "-text")),
    (User, ("shop_profile__nickname", "username")),
    (User, ("-shop_profile__nickname", "username")),
    (Badge, ("-user__email", "id")),
]


def _twin_order(model, item):
    """Return the twin's ordering, with NULLs where the column's own database puts them."""
    descending = item.startswith("-")
    path = item.lstrip("-")
    if "__" not in path:
        return item
    column_model = model
    for name in path.split("__")[:-1]:
        column_model = column_model._meta.get_field(name).related_model
    largest = connections[router.db_for_read(column_model)].features.nulls_order_largest
    expression = F(twin_lookup(model, path))
    # NULLs largest: last going up, first going down.
    if descending:
        return expression.desc(nulls_first=True) if largest else expression.desc(nulls_last=True)
    return expression.asc(nulls_last=True) if largest else expression.asc(nulls_first=True)


def _ids(case):
    return f"{case[0].__name__}:{','.join(case[1])}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(case) for case in CASES])
def test_ordering_matches_the_twin(case, stale_users):
    model, ordering = case
    build_world()
    stale_users()
    twin = TWIN_MODEL[model]
    got = natural(model.objects.order_by(*ordering))
    assert got == natural(twin.objects.order_by(*[_twin_order(model, item) for item in ordering]))
    assert natural(model.objects.order_by(*ordering)[1:3]) == got[1:3]


def test_nullable_keys_sort_where_the_far_database_puts_nulls():
    build_world()
    from tests.twin.models import TwinPost

    got = [p.title for p in Post.objects.order_by("editor__username", "id")]
    twin = [p.title for p in TwinPost.objects.order_by(_twin_order(Post, "editor__username"), "id")]
    # Posts without an editor are where the users' database puts NULLs, even
    # when blog_db's backend puts them elsewhere.
    assert got == twin
    assert (got[0] == "alpha") != connections["default"].features.nulls_order_largest


def test_ordering_with_filters_slices_and_counts(queries):
    build_world()
    queryset = Post.objects.filter(published=True, author__email__endswith="x.org")
    with queries() as q:
        first = queryset.order_by("-author__username", "id")[:2]
        titles = [post.title for post in first]
    assert titles == ["delta", "alpha2"]
    # blog_db: the keys, then the rows; default: the ranks, and the filter
    # across for each of the two blog_db queries.
    assert q.counts() == {"default": 3, "blog_db": 2, "shop_db": 0}
    assert "auth_user" not in " ".join(q.sql("blog_db"))
    assert queryset.order_by("author__username").count() == 3
    assert queryset.filter(title="nothing").order_by("author__username").first() is None


def test_ordering_reads_keys_not_rows(queries):
    world = build_world()
    ann = world.users["ann"]
    Post.objects.bulk_create(Post(title=f"extra {n}", author=ann) for n in range(300))
    with queries() as q:
        last = Post.objects.order_by("-author__username", "-id").last()
    assert last.title == "alpha"
    keys_sql = q.sql("blog_db")[0]
    assert "GROUP BY" in keys_sql and "author_id" in keys_sql
    assert "CASE" in q.sql("blog_db")[1]


@pytest.mark.parametrize(
    "ordering",
    [
        ("editor__username", "id"),
        ("-editor__username", "id"),
        ("author__is_staff", "-id"),
        ("-author__shop_profile__nickname", "title"),
    ],
)
def test_a_page_names_only_the_keys_of_its_rows(ordering, queries):
    """Sliced, the CASE lists the keys of the first rows only; pages still match."""
    build_world()
    whole = [post.title for post in Post.objects.order_by(*ordering)]
    backwards = [post.title for post in Post.objects.order_by(*ordering).reverse()]
    for start, stop in ((0, 1), (0, 2), (1, 3), (2, 5), (0, 6), (4, 10)):
        page = Post.objects.order_by(*ordering)[start:stop]
        assert [post.title for post in page] == whole[start:stop]
        back = Post.objects.order_by(*ordering).reverse()[start:stop]
        assert [post.title for post in back] == backwards[start:stop]
    assert Post.objects.order_by(*ordering).first().title == whole[0]
    assert Post.objects.order_by(*ordering).last().title == whole[-1]


def test_multi_valued_and_over_the_limit_raise():
    build_world()
    # Crossing again from the far model (a row per related row is answered:
    # tests/test_query_per_row.py).
    with pytest.raises(CrossDatabaseQueryError, match="blog_posts__mentions__text"):
        User.objects.order_by("blog_posts__mentions__text")
    with override_settings(CROSSDB_MAX_IDS=2):
        with pytest.raises(CrossDatabaseLimitError, match="CROSSDB_MAX_IDS=2"):
            list(Post.objects.order_by("author__username"))
        assert [
            p.title
            for p in Post.objects.filter(author__username="ann").order_by("author__email", "-id")
        ] == ["beta", "alpha"]


@pytest.mark.parametrize("ordering", [("post", "text"), ("-post", "text")])
def test_ordering_by_the_key_follows_the_targets_meta_ordering_like_the_twin(ordering):
    build_world()
    got = natural(Mention.objects.order_by(*ordering))
    twin = natural(TWIN_MODEL[Mention].objects.order_by(*ordering))
    assert got == twin
    assert got


@pytest.mark.parametrize("nulls", ["nulls_first", "nulls_last"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_f_ordering_with_nulls_placement_across_like_the_twin(direction, nulls):
    build_world()
    order = getattr(F("editor__username"), direction)(**{nulls: True})
    twin_order = getattr(F("editor__username"), direction)(**{nulls: True})
    got = natural(Post.objects.order_by(order, "id"))
    twin = natural(TWIN_MODEL[Post].objects.order_by(twin_order, "id"))
    assert got == twin


@isolate_apps("tests.ondelete")
def test_ordering_by_a_key_whose_target_orders_by_an_expression_raises():
    """Django orders by the target's Lower("name"); ranking the raw key would differ."""

    class Target(models.Model):
        name = models.CharField(max_length=30)

        class Meta:
            app_label = "ondelete"
            ordering = [Lower("name")]

    class Source(models.Model):
        target = CrossDatabaseForeignKey(Target, models.CASCADE)

        class Meta:
            app_label = "ondelete"

    with pytest.raises(CrossDatabaseQueryError, match="holds an expression"):
        Source.objects.order_by("target")
    with pytest.raises(CrossDatabaseQueryError, match="holds an expression"):
        Source.objects.order_by("-target")
    assert Source.objects.order_by("target_id").query.order_by == ("target_id",)
