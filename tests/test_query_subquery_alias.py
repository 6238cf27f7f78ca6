"""A plain field compared with a queryset of another alias raises as Django does."""

import pytest
from django.contrib.auth.models import User
from django.db.models import CharField

from tests.blog.models import Comment, Post
from tests.query_helpers import build_world

pytestmark = pytest.mark.django_db(databases="__all__")

DJANGO_MESSAGE = "Subqueries aren't allowed across different databases"

CASES = {
    "pk_in": lambda: Post.objects.filter(id__in=Post.objects.using("default")),
    "pk_in_values": lambda: Post.objects.filter(id__in=Post.objects.using("default").values("id")),
    "plain_fk_in": lambda: Comment.objects.filter(post__in=Post.objects.using("default")),
    "plain_model": lambda: User.objects.filter(id__in=User.objects.using("blog_db")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plain_field_in_a_queryset_of_another_alias_raises_djangos_error(name):
    build_world()
    with pytest.raises(ValueError, match=DJANGO_MESSAGE):
        list(CASES[name]())


def test_a_crossdb_field_in_a_queryset_of_its_target_alias_is_answered():
    build_world()
    users = User.objects.filter(username__startswith="a")
    expected = sorted(p.pk for p in Post.objects.all() if p.author.username.startswith("a"))
    assert sorted(Post.objects.filter(author__in=users).values_list("pk", flat=True)) == expected


def test_the_crossdb_ids_lookup_is_django_in_for_other_values():
    # It is in every field's get_lookups(); code that walks them (Django's
    # expressions.tests.BasicExpressionsTests.test_lookups_subquery) gets "in".
    from django.db.models import Subquery

    User.objects.create(username="ann")
    User.objects.create(username="bob")
    # Not sliced: MariaDB refuses LIMIT inside IN (Django's test skips it there).
    first = User.objects.filter(username="ann").values("username")
    assert "crossdb_ids" in CharField.get_lookups()
    assert list(
        User.objects.filter(username__crossdb_ids=["bob", "x"]).values_list("username", flat=True)
    ) == ["bob"]
    assert [u.username for u in User.objects.filter(username__crossdb_ids=Subquery(first))] == [
        "ann"
    ]


def test_a_crossdb_field_in_its_target_read_on_another_alias_raises_djangos_error():
    # Post.author reads users on default: users read on blog_db are other rows
    # with the same ids.  Django's refusal, when the query compiles, as Django's.
    build_world()
    elsewhere = Post.objects.filter(author__in=User.objects.using("blog_db"))
    with pytest.raises(ValueError, match=DJANGO_MESSAGE):
        str(elsewhere.query)
    reads = "reads auth.User on 'default'; the queryset uses 'blog_db'"
    with pytest.raises(ValueError, match=reads):
        list(elsewhere)
    # On the alias the relation reads, or as values of a column: answered.
    users = User.objects.using("default").filter(username__startswith="a")
    expected = sorted(p.pk for p in Post.objects.all() if p.author.username.startswith("a"))
    assert sorted(Post.objects.filter(author__in=users).values_list("pk", flat=True)) == expected
    ids = Comment.objects.using("blog_db").values_list("author_id", flat=True)
    assert (
        Post.objects.filter(author__in=ids).count()
        == Post.objects.filter(author_id__in=list(ids)).count()
    )
