"""Lookups across crossdb relations answer what the plain-ForeignKey twin does in one database."""

import pytest
from django.contrib.auth.models import User
from django.db import NotSupportedError, connections
from django.db.models import Q

from crossdb import CrossDatabaseQueryError
from tests.blog.models import Comment, Post
from tests.query_helpers import TWIN_MODEL, build_world, natural, twin_q
from tests.shop.models import Badge, Mention, Order, Product, Profile

pytestmark = pytest.mark.django_db(databases="__all__")

LOGIN_NULL = Q(last_login__isnull=True)

# (model, condition)
CASES = [
    (Post, Q(author__username="ann")),
    (Post, Q(author__email__endswith="x.org", title__startswith="a")),
    (Post, Q(author__username="ann") | Q(title="gamma")),
    (Post, ~Q(author__username="ann")),
    (Post, Q(editor__username="bob")),
    (Post, ~Q(editor__username="bob")),
    (Post, Q(editor__username__isnull=True)),
    (Post, ~Q(editor__username__isnull=True)),
    (Post, Q(editor__last_login__isnull=True)),
    (Post, ~Q(editor__last_login__isnull=True)),
    (Post, Q(author__last_login__isnull=True)),
    (Post, Q(editor__first_name="")),
    (Post, ~Q(editor__first_name="Dan")),
    (Post, Q(author__is_staff=True) & ~Q(editor__username="bob")),
    (Post, Q(author__username="ann") & (Q(editor__username="bob") | Q(editor__isnull=True))),
    # XOR on a NULL differs between Django's native (MySQL) and emulated XOR:
    # kept on non-null sides so that every profile compares like with like.
    (Post, Q(author__username="bob") ^ Q(published=True)),
    (Post, Q(author__username="bob") ^ Q(author__is_staff=True) ^ Q(score=5)),
    (Post, Q(editor__isnull=False, editor__username__startswith="b")),
    (Post, Q(author__username__in=["ann", "cat"])),
    (Post, Q(author__username="nobody")),
    (Post, ~Q(author__username="nobody")),
    (Post, Q(author__blog_comments__text="thanks")),
    (
        Post,
        Q(author__blog_comments__text__startswith="n", author__blog_comments__post__title="alpha"),
    ),
    (Post, ~Q(author__blog_comments__text__startswith="n")),
    (Post, Q(author__shop_profile__nickname="annie")),
    (Post, Q(author__shop_profile__isnull=True)),
    (Post, Q(author__orders__quantity__gte=2)),
    (Post, Q(mentions__text="m3")),
    (Post, Q(mentions__text__startswith="m")),
    (Post, ~Q(mentions__text__startswith="m3")),
    (Post, Q(mentions__isnull=True)),
    (Post, Q(mentions__isnull=False)),
    (Comment, Q(post__author__username="ann")),
    (Comment, Q(author__username="bob")),
    (Comment, ~Q(author__username="bob")),
    (Comment, Q(author__username__isnull=True)),
    (Comment, Q(post__editor__username__isnull=True)),
    (Comment, Q(post__mentions__text="m3")),
    (Comment, Q(author__blog_posts__title="delta")),
    (User, Q(blog_posts__title="beta")),
    (User, ~Q(blog_posts__title="beta")),
    (User, Q(blog_posts__title__startswith="alpha", blog_posts__published=True)),
    (User, Q(blog_posts__published=False, blog_posts__score=5)),
    (User, Q(blog_posts__published=False) & Q(blog_posts__score=5)),
    (User, ~Q(blog_posts__title="alpha", blog_posts__published=False)),
    # A negated condition after a non-negated one on the same relation in one
    # filter() call speaks of the same related row; before it, of any row.
    (User, Q(blog_posts__score__gte=0) & ~Q(blog_posts__title__startswith="a")),
    (User, ~Q(blog_posts__title__startswith="a") & Q(blog_posts__score__gte=0)),
    (User, Q(blog_posts__published=True) | ~Q(blog_posts__score=5)),
    (Post, Q(mentions__text="m3") & ~Q(mentions__text__endswith="b")),
    (User, Q(blog_posts__isnull=True)),
    (User, Q(blog_posts__isnull=False)),
    (User, Q(blog_posts__title__isnull=True)),
    (User, ~Q(blog_posts__title__isnull=True)),
    (User, Q(edited_posts__isnull=True)),
    (User, Q(blog_posts__title="gamma") | Q(username="dan")),
    (User, Q(blog_posts__score__gt=4) | Q(edited_posts__score__gt=4)),
    (User, Q(blog_posts__score__gt=4) | Q(blog_posts__published=False)),
    (User, (Q(blog_posts__score=5) | Q(username="cat")) & Q(is_staff=False)),
    (User, Q(shop_profile__nickname="annie")),
    (User, Q(shop_profile__isnull=True)),
    (User, ~Q(shop_profile__nickname="bobby")),
    (User, Q(orders__product__name="ink")),
    (User, Q(orders__product__name="pen", orders__quantity=2)),
    (User, Q(badges__label="gold")),
    (User, Q(blog_posts__mentions__text="m3")),
    (User, Q(blog_posts__comments__author__username="bob")),
    (User, Q(blog_comments__post__author__username="cat")),
    (Order, Q(customer__username="cat")),
    (Order, Q(customer__blog_posts__title="beta")),
    (Product, Q(orders__customer__username="ann")),
    (Product, Q(orders__customer__username="ann", orders__quantity=3)),
    (Badge, Q(user__username="ann")),
    (Badge, Q(user__email__endswith="y.org")),
    (Mention, Q(post__author__username="bob")),
    (Mention, Q(post__author__username="bob") | Q(post__editor__username="ann")),
    (Profile, Q(user__is_staff=True)),
    (Profile, Q(user__blog_posts__score=5)),
]


def _ids(case):
    model, condition = case
    return f"{model.__name__}:{condition}"


def _ordered(queryset):
    # Both sides create their rows in the same order.
    return queryset.order_by("pk")


@pytest.mark.parametrize("case", CASES, ids=[_ids(case) for case in CASES])
def test_filter_matches_the_twin(case, stale_users):
    model, condition = case
    build_world()
    stale_users()
    twin = TWIN_MODEL[model]
    got = natural(_ordered(model.objects.filter(condition)))
    expected = natural(_ordered(twin.objects.filter(twin_q(model, condition))))
    # A row per matching related row, as Django's JOIN gives it.
    assert got == expected
    assert model.objects.filter(condition).count() == len(got)
    assert model.objects.filter(condition).exists() == bool(got)
    excluded = natural(_ordered(model.objects.exclude(condition)))
    assert excluded == natural(_ordered(twin.objects.exclude(twin_q(model, condition))))
    distinct = natural(_ordered(model.objects.filter(condition).distinct()))
    assert distinct == natural(_ordered(twin.objects.filter(twin_q(model, condition)).distinct()))


def test_the_far_side_is_one_query_on_its_own_alias(queries, stale_users):
    build_world()
    stale_users()
    with queries() as q:
        titles = [post.title for post in Post.objects.filter(author__username="ann")]
    assert titles == ["alpha", "beta"]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert "auth_user" not in q.sql("blog_db")[0]
    with queries() as q:
        names = list(User.objects.filter(blog_posts__mentions__text="m3").values_list("username"))
    assert names == [("bob",)]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 1}


def test_conditions_on_one_relation_in_one_filter_call_are_one_far_query(queries):
    build_world()
    with queries() as q:
        users = list(User.objects.filter(blog_posts__published=False, blog_posts__score=5))
    assert natural(users) == ["ann"]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}


def test_chained_filter_calls_may_match_different_related_rows():
    build_world()
    one_call = User.objects.filter(blog_posts__published=True, blog_posts__score=5)
    chained = User.objects.filter(blog_posts__published=True).filter(blog_posts__score=5)
    twin_one = User.objects.filter(twin_posts__published=True, twin_posts__score=5)
    twin_chained = User.objects.filter(twin_posts__published=True).filter(twin_posts__score=5)
    assert natural(one_call) == natural(twin_one) == ["bob"]
    # Each filter() call joins the relation again: rows multiply as Django's.
    assert natural(chained.order_by("pk")) == natural(twin_chained.order_by("pk"))
    assert natural(chained.distinct().order_by("pk")) == ["ann", "bob"]


def test_the_key_itself_needs_no_other_database(queries):
    world = build_world()
    ann = world.users["ann"]
    with queries() as q:
        for condition in (
            Q(author=ann),
            Q(author__id=ann.pk),
            Q(author__pk=ann.pk),
            Q(author_id=ann.pk),
            Q(author__in=[ann]),
            Q(author__pk__in=[ann.pk]),
            Q(editor__isnull=True),
        ):
            assert Post.objects.filter(condition).exists()
        assert Badge.objects.filter(user__username="ann").count() == 1
    assert q.count("default") == 0


def test_model_instances_and_lists_as_values_across():
    world = build_world()
    alpha, gamma = world.posts["alpha"], world.posts["gamma"]
    twin_alpha, twin_gamma = world.twin_posts["alpha"], world.twin_posts["gamma"]
    assert natural(User.objects.filter(blog_posts=gamma)) == ["bob"]
    assert natural(User.objects.filter(twin_posts=twin_gamma)) == ["bob"]
    got = natural(User.objects.filter(blog_posts__in=[alpha, gamma]).order_by("pk"))
    twin = natural(User.objects.filter(twin_posts__in=[twin_alpha, twin_gamma]).order_by("pk"))
    assert got == twin == ["ann", "bob"]
    assert natural(User.objects.exclude(blog_posts__in=[alpha, gamma]).order_by("pk")) == [
        "cat",
        "dan",
        "eve",
    ]


def test_querysets_as_values_are_evaluated_on_their_own_alias(queries, stale_users):
    build_world()
    stale_users()
    staff = User.objects.filter(is_staff=True)
    with queries() as q:
        titles = [post.title for post in Post.objects.filter(author__in=staff)]
    assert titles == ["alpha", "beta"]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert "auth_user" not in q.sql("blog_db")[0]
    usernames = User.objects.filter(username="bob").values("pk")
    assert [p.title for p in Post.objects.exclude(editor__in=usernames)] == [
        "alpha",
        "gamma",
        "delta",
        "alpha2",
    ]
    assert [p.title for p in Post.objects.filter(pk__in=Mention.objects.values("post_id"))] == [
        "alpha",
        "gamma",
    ]
    badges = Badge.objects.filter(user__in=User.objects.filter(email__endswith="y.org"))
    assert [badge.label for badge in badges] == ["silver"]


def test_get_first_last_update_and_delete_across():
    build_world()
    assert Post.objects.get(author__username="cat", score=1).title == "delta"
    with pytest.raises(Post.MultipleObjectsReturned):
        Post.objects.get(author__username="cat")
    assert Post.objects.filter(author__username="bob").first().title == "gamma"
    assert Post.objects.filter(author__username="bob").last().title == "epsilon"
    assert User.objects.filter(blog_posts__title="delta").get().username == "cat"
    assert Post.objects.filter(editor__username="bob").update(score=9) == 2
    assert sorted(Post.objects.filter(score=9).values_list("title", flat=True)) == [
        "beta",
        "epsilon",
    ]
    assert User.objects.filter(blog_posts__isnull=True).update(first_name="none") == 2
    deleted, per_model = Mention.objects.filter(post__author__username="bob").delete()
    assert (deleted, per_model) == (2, {"shop.Mention": 2})
    assert list(Mention.objects.values_list("text", flat=True)) == ["m1"]


def test_delete_across_counts_like_the_twin():
    world = build_world()
    from tests.twin.models import TwinPost

    got = Post.objects.filter(author__username="ann").delete()
    twin = TwinPost.objects.filter(author__username="ann").delete()
    assert got[0] == twin[0]
    assert world.posts["alpha"].title not in Post.objects.values_list("title", flat=True)


def test_conditions_that_cannot_be_split_raise():
    build_world()
    mixed = (Q(blog_posts__score=5) | Q(username="cat")) & Q(blog_posts__published=True)
    with pytest.raises(CrossDatabaseQueryError, match="same related row") as error:
        list(User.objects.filter(mixed))
    assert "blog_posts__score" in str(error.value)
    with pytest.raises(CrossDatabaseQueryError, match="same related row"):
        list(User.objects.filter(Q(blog_posts__score=5) ^ Q(username="cat")))


def test_an_expression_on_the_local_rows_cannot_cross():
    from django.db.models import F

    build_world()
    with pytest.raises(CrossDatabaseQueryError, match=r"blog\.Post\.author__username"):
        list(Post.objects.filter(author__username=F("title")))


def test_querysets_stay_lazy(queries):
    with queries() as q:
        queryset = Post.objects.filter(author__username="ann").exclude(mentions__text="x")
        queryset = queryset.filter(Q(editor__email__contains="@") | Q(title="t"))
    assert sum(q.counts().values()) == 0
    build_world()
    assert [post.title for post in queryset] == ["beta"]
    User.objects.filter(username="bob").update(email="bob-at-nowhere")
    # Each evaluation reads the far side as it is now.
    assert list(queryset.all()) == []


def test_related_managers_and_custom_managers_are_rewritten():
    world = build_world()
    bob = world.users["bob"]
    assert [post.title for post in bob.blog_posts.filter(editor__username="ann")] == ["gamma"]
    assert [post.title for post in Post.objects.published().filter(author__username="bob")] == [
        "gamma"
    ]
    assert [m.text for m in world.posts["gamma"].mentions.filter(post__author=bob)] == [
        "m3",
        "m3b",
    ]
    assert [m.text for m in world.posts["gamma"].mentions.filter(post__author__username="bob")] == [
        "m3",
        "m3b",
    ]


def test_a_pickled_query_reads_the_far_side_when_it_runs(queries):
    import pickle

    build_world()
    query = pickle.loads(pickle.dumps(Post.objects.filter(author__email="new@x.org").query))
    with queries() as q:
        restored = Post.objects.all()
        restored.query = query
    assert sum(q.counts().values()) == 0
    User.objects.filter(username="ann").update(email="new@x.org")
    assert [post.title for post in restored] == ["alpha", "beta"]


def test_a_queryset_on_another_alias_for_a_plain_field_raises_as_django_does():
    build_world()
    # Post lives in blog_db; an explicit using() of another alias is Django's refusal.
    with pytest.raises(ValueError, match="Subqueries aren't allowed across different databases"):
        list(Post.objects.filter(pk__in=Post.objects.using("default").values("pk")))
    assert natural(Post.objects.filter(pk__in=Post.objects.using("blog_db").filter(title="beta")))


def test_a_sliced_queryset_as_value_keeps_its_slice_like_the_twin():
    build_world()
    first_two = User.objects.order_by("username")[:2]
    got = natural(Post.objects.filter(author__in=first_two).order_by("title"))
    authors = {user.pk for user in first_two}
    assert got == natural(p for p in Post.objects.order_by("title") if p.author_id in authors)
    assert got
    try:
        twin = natural(TWIN_MODEL[Post].objects.filter(author__in=first_two).order_by("title"))
    except NotSupportedError:
        # MariaDB has no LIMIT in an IN subquery: Django's JOIN refuses there;
        # crossdb reads the slice on its own alias, so it answers.
        assert connections[TWIN_MODEL[Post].objects.db].vendor == "mysql"
    else:
        assert got == twin


def test_a_queryset_of_another_model_raises_djangos_type_error_like_the_twin():
    build_world()
    with pytest.raises(ValueError, match='Cannot use QuerySet for "Product"') as twin:
        list(TWIN_MODEL[Post].objects.filter(author__in=Product.objects.all()))
    with pytest.raises(ValueError) as got:
        list(Post.objects.filter(author__in=Product.objects.all()))
    assert str(got.value) == str(twin.value)


def test_a_correlated_queryset_across_raises():
    from django.db.models import OuterRef

    build_world()
    inner = User.objects.filter(username=OuterRef("title"))
    with pytest.raises(CrossDatabaseQueryError, match="OuterRef"):
        list(Post.objects.filter(author__in=inner))


@pytest.mark.parametrize("shape", ["in", "exact"])
def test_an_instance_of_the_wrong_model_in_a_reverse_lookup_raises_djangos_error(shape):
    world = build_world()
    ann = world.users["ann"]
    value = [ann] if shape == "in" else ann
    with pytest.raises(ValueError) as twin:
        list(User.objects.filter(**{f"twin_posts__{shape}": value}))
    with pytest.raises(ValueError) as got:
        list(User.objects.filter(**{f"blog_posts__{shape}": value}))
    assert str(got.value) == str(twin.value).replace("TwinPost", "Post")


@pytest.mark.parametrize("sliced", [slice(None, 2), slice(1, None)], ids=["[:2]", "[1:]"])
def test_a_queryset_compared_with_exact_must_hold_one_row_as_in_django(sliced):
    build_world()
    with pytest.raises(ValueError) as twin:
        list(TWIN_MODEL[Post].objects.filter(author=User.objects.all()[sliced]))
    with pytest.raises(ValueError) as got:
        list(Post.objects.filter(author=User.objects.all()[sliced]))
    assert str(got.value) == str(twin.value)
    one = User.objects.order_by("username")[:1]
    # The twin's JOIN inlines the slice, which MariaDB refuses ("LIMIT & IN
    # subquery"); crossdb reads it on its own alias.  The answer key by key:
    first = User.objects.order_by("username").first()
    expected = natural(p for p in Post.objects.all() if p.author_id == first.pk)
    assert natural(Post.objects.filter(author=one)) == expected
    if connections[TWIN_MODEL[Post].objects.db].vendor != "mysql":
        assert natural(TWIN_MODEL[Post].objects.filter(author=one)) == expected


def test_a_queryset_of_the_wrong_model_is_reported_before_its_slice():
    """Django's order of checks: the model first, then exact's "limited to one result"."""
    with pytest.raises(ValueError) as twin:
        list(TWIN_MODEL[Post].objects.filter(author=Post.objects.all()))
    with pytest.raises(ValueError) as got:
        list(Post.objects.filter(author=Post.objects.all()))
    assert str(got.value) == str(twin.value).replace("TwinPost", "Post")


def test_a_transform_registered_on_the_key_applies_in_reverse_lookups_like_the_twin():
    """Django compares the far pk through the relation's own lookups (article__abs)."""
    from django.db.models.functions import Abs
    from django.test.utils import register_lookup

    world = build_world()
    post, twin = world.posts["beta"], world.twin_posts["beta"]
    with (
        register_lookup(Post._meta.get_field("author"), Abs),
        register_lookup(TWIN_MODEL[Post]._meta.get_field("author"), Abs),
    ):
        got = natural(User.objects.filter(blog_posts__abs=post.pk))
        expected = natural(User.objects.filter(twin_posts__abs=twin.pk))
        lt = natural(User.objects.filter(blog_posts__abs__lt=post.pk).distinct())
        twin_lt = natural(User.objects.filter(twin_posts__abs__lt=twin.pk).distinct())
    assert got == expected == ["ann"]
    assert sorted(lt) == sorted(twin_lt)


@pytest.mark.parametrize("name", ["headline", "abspl", "abs__nothing"])
def test_an_unsupported_reverse_lookup_raises_djangos_error(name):
    with pytest.raises(Exception) as twin:
        User.objects.filter(**{f"twin_posts__{name}": 1})
    with pytest.raises(Exception) as got:
        User.objects.filter(**{f"blog_posts__{name}": 1})
    assert (type(got.value), str(got.value)) == (type(twin.value), str(twin.value))
