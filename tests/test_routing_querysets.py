"""A lookup across reads the far side where the relation's descriptor would (docs/routing.rst).

When the routers abstain for the far model, its ids are read on the outer
query's alias if the far table lives there (``allow_migrate``), else on
``default``: ``Person.objects.using("other").filter(edited__title=...)`` reads
the books of "other", as Django's JOIN inside "other" does (Django's suite:
multiple_database.tests.QueryTestCase.test_foreign_key_separation, swapped).
"""

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from crossdb.query_ids import CrossDatabaseIds
from tests.blog.models import Post


class AbstainingRouter:
    """Answers no read or write; says where tables live."""

    homes = {"auth": {"default", "blog_db"}, "blog": {"blog_db"}}

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db in self.homes.get(app_label, {"default"})


ROUTERS = [f"{__name__}.AbstainingRouter"]


def _ids(routed):
    return CrossDatabaseIds(User.objects.values_list("pk", flat=True), "author", routed=routed)


@override_settings(DATABASE_ROUTERS=ROUTERS)
def test_routed_ids_follow_the_outer_alias_where_the_far_table_lives():
    assert _ids(routed=True).for_outer("blog_db").db == "blog_db"
    assert _ids(routed=True).for_outer("default").db == "default"


@override_settings(DATABASE_ROUTERS=ROUTERS)
def test_routed_ids_read_default_where_the_far_table_does_not_live():
    assert _ids(routed=True).for_outer("shop_db").db == "default"


@override_settings(DATABASE_ROUTERS=ROUTERS)
def test_a_callers_queryset_keeps_its_alias():
    assert _ids(routed=False).for_outer("blog_db").db == "default"


@override_settings(DATABASE_ROUTERS=ROUTERS)
def test_a_lookup_across_renders_its_far_side_on_that_alias():
    """str() shows the alias's choice without reading it; the lookup builds routed ids."""
    query = Post.objects.using("blog_db").filter(author__username="ann").query
    (lookup,) = query.where.children
    assert lookup.rhs.routed
    assert lookup.rhs.for_outer("blog_db").db == "blog_db"
    assert lookup.rhs.for_outer("shop_db").db == "default"


@pytest.mark.django_db(databases="__all__")
def test_a_sliced_far_queryset_is_read_without_distinct():
    User.objects.create(username="a")
    User.objects.create(username="b")
    ids = CrossDatabaseIds(User.objects.order_by("username").values_list("pk", flat=True)[:1], "x")
    assert ids.evaluate() == [User.objects.get(username="a").pk]


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(
    "shape",
    [
        lambda qs: list(qs.values("title", "author__username")),
        lambda qs: list(qs.order_by("author__username")),
    ],
    ids=["values", "order_by"],
)
def test_values_and_ordering_across_ask_the_rule_with_the_outer_alias(shape, monkeypatch):
    """The far rows of values() and order_by() across are read where a lookup's are."""
    from crossdb import routing
    from tests.query_helpers import build_world

    build_world()
    asked = []
    original = routing.home_alias

    def spy(model, alias, *args, **kwargs):
        asked.append((model, alias))
        return original(model, alias, *args, **kwargs)

    monkeypatch.setattr(routing, "home_alias", spy)
    shape(Post.objects.using("blog_db"))
    assert (User, "blog_db") in asked
