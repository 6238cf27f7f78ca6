"""A plain field compared with a queryset of another alias raises as Django does."""

import pytest
from django.contrib.auth.models import User

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
