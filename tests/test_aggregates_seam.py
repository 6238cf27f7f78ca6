"""What the aggregate and Exists seams rest on in Django: fails loudly if a release moves it."""

import inspect

import pytest
from django.contrib.auth.models import User
from django.db.models import Count, Exists, IntegerField, OuterRef
from django.db.models.aggregates import Aggregate
from django.db.models.expressions import Col
from django.db.models.sql.constants import LOUTER
from django.db.models.sql.query import Query

from crossdb import query, query_aggregates, query_exists
from crossdb.query_derived import DerivedColumn, DerivedJoin
from tests.blog.models import Post

pytestmark = pytest.mark.django_db(databases="__all__")


def test_the_new_seams_are_installed():
    patches = {(owner, name): wrap for owner, name, wrap in query._PATCHES}
    assert patches[(Aggregate, "resolve_expression")] is query_aggregates.checked_aggregate_resolve
    assert patches[(Exists, "resolve_expression")] is query_exists.exists_resolve
    assert query.installed()


@pytest.mark.parametrize("owner", [Aggregate, Exists])
def test_what_the_seams_wrap_keeps_its_signature(owner):
    original = owner.resolve_expression.crossdb_original
    parameters = list(inspect.signature(original).parameters)
    if owner is Exists and parameters == ["self", "args", "kwargs"]:
        return  # Django 6.1's Subquery.resolve_expression passes everything on
    assert parameters == [
        "self",
        "query",
        "allow_joins",
        "reuse",
        "summarize",
        "for_save",
    ]


def test_django_repoints_cols_into_the_inner_query_of_an_aggregation():
    # get_aggregation() moves the columns an aggregate reads into the inner
    # query by walking _gen_cols(), which yields Col instances only.
    column = DerivedColumn("crossdb_far", "v0", IntegerField())
    assert isinstance(column, Col)
    assert list(Query._gen_cols([Count(column)], resolve_refs=False)) == [column]
    assert column.relabeled_clone({"crossdb_far": "T5"}).alias == "T5"


def test_alias_map_entries_keep_the_interface_django_uses():
    assert list(inspect.signature(Query.table_alias).parameters) == [
        "self",
        "table_name",
        "create",
        "filtered_relation",
    ]
    queryset = User.objects.annotate(n=Count("blog_posts"))
    joins = [j for j in queryset.query.alias_map.values() if isinstance(j, DerivedJoin)]
    assert len(joins) == 1 and joins[0].join_type == LOUTER
    moved = joins[0].relabeled_clone({joins[0].table_alias: "U9", "auth_user": "U0"})
    assert (moved.table_alias, moved.parent_alias) == ("U9", "U0")
    # Used as a subquery, the outer query relabels the inner one's aliases.
    inner = User.objects.annotate(n=Count("blog_posts")).filter(n__gt=0).values("pk")
    assert list(User.objects.filter(pk__in=inner).values_list("pk", flat=True)) == []


def test_exists_limits_its_query_and_negation_wraps_it():
    exists = Exists(Post.objects.filter(author=OuterRef("pk")))
    assert (exists.query.low_mark, exists.query.high_mark) == (0, 1)
    negated = ~exists
    assert getattr(negated, "expression", None) is exists or getattr(negated, "negated", False)
