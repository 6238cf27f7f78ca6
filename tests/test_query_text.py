"""str(queryset.query) across a crossdb relation: text as Django gives it, no query sent."""

import pytest
from django.db import connections

from tests.blog.models import Post
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")


def _queries_everywhere(function):
    from django.test.utils import CaptureQueriesContext

    contexts = [CaptureQueriesContext(connections[alias]) for alias in connections]
    for context in contexts:
        context.__enter__()
    try:
        result = function()
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
    return result, sum(len(context.captured_queries) for context in contexts)


@pytest.mark.parametrize("lookup", ["author__username", "editor__username"])
def test_str_of_a_query_with_an_empty_far_side_is_sql_as_with_a_join(lookup):
    # No row anywhere: the far side is empty. Django's JOIN renders SQL all the same.
    twin, twin_queries = _queries_everywhere(
        lambda: str(TwinPost.objects.filter(**{lookup: "x"}).query)
    )
    text, queries = _queries_everywhere(lambda: str(Post.objects.filter(**{lookup: "x"}).query))
    assert (twin_queries, queries) == (0, 0)
    assert "auth_user" in twin and "auth_user" in text
    assert text.startswith("SELECT ") and " IN (SELECT " in text


def test_str_of_a_query_leaves_evaluation_reading_the_ids():
    text, _ = _queries_everywhere(lambda: str(Post.objects.filter(author__username="x").query))
    assert list(Post.objects.filter(author__username="x")) == []
    assert str(Post.objects.filter(author__username="x").query) == text
