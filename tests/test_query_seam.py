"""The query seam: installed, and still resting on what Django 5.2 does.

If a Django upgrade moves anything below, these tests fail first and say what moved.
"""

import inspect

import pytest
from django.db.models import Field, ForeignObject, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.query import ModelIterable, ValuesIterable
from django.db.models.sql import compiler
from django.db.models.sql.datastructures import Join
from django.db.models.sql.query import Query
from django.db.models.sql.where import ExtraWhere

from crossdb import CrossDatabaseQueryError, query, seams
from crossdb.query_ids import CrossDatabaseIdsLookup
from tests.blog.models import Post

pytestmark = pytest.mark.django_db(databases="__all__")


def test_the_seam_is_registered_and_installed():
    assert seams.SEAMS["query"] == (query.install, query.installed)
    assert query.installed()


def test_installing_twice_wraps_once():
    before = {(owner, name): getattr(owner, name) for owner, name, _wrap in query._PATCHES}
    query.install()
    for (owner, name), wrapped in before.items():
        assert getattr(owner, name) is wrapped
        assert not hasattr(wrapped.crossdb_original, "crossdb_original")


@pytest.mark.parametrize(
    ("owner", "name", "parameters"),
    [
        (Query, "add_q", ["self", "q_object", "reuse_all"]),
        (Query, "combine", ["self", "rhs", "connector"]),
        (Query, "resolve_ref", ["self", "name", "allow_joins", "reuse", "summarize"]),
        (
            Q,
            "resolve_expression",
            ["self", "query", "allow_joins", "reuse", "summarize", "for_save"],
        ),
        (Query, "names_to_path", ["self", "names", "opts", "allow_many", "fail_on_missing"]),
        (Query, "resolve_expression", ["self", "query", "args", "kwargs"]),
        (Join, "as_sql", ["self", "compiler", "connection"]),
        (compiler, "select_related_descend", ["field", "restricted", "requested", "select_mask"]),
        (QuerySet, "select_related", ["self", "fields"]),
        (QuerySet, "order_by", ["self", "field_names"]),
        (QuerySet, "_values", ["self", "fields", "expressions"]),
        (QuerySet, "values", ["self", "fields", "expressions"]),
        (QuerySet, "values_list", ["self", "fields", "flat", "named"]),
        (Query, "add_distinct_fields", ["self", "field_names"]),
        (Query, "set_group_by", ["self", "allow_aliases"]),
        (Query, "sql_with_params", ["self"]),
        # Raw SQL (crossdb.query_raw): the text is in .sql / .sqls.
        (RawSQL, "as_sql", ["self", "compiler", "connection"]),
        (ExtraWhere, "as_sql", ["self", "compiler", "connection"]),
    ],
)
def test_what_the_seam_wraps_keeps_its_signature(owner, name, parameters):
    original = getattr(owner, name).crossdb_original
    assert list(inspect.signature(original).parameters) == parameters


def test_django_still_builds_its_where_clause_through_add_q():
    """filter() and exclude() reach Query.add_q (and nothing else) with the whole Q."""
    source = inspect.getsource(QuerySet._filter_or_exclude_inplace)
    assert "self._query.add_q(~Q(*args, **kwargs))" in source
    assert "self._query.add_q(Q(*args, **kwargs))" in source
    assert "query._add_q(" in inspect.getsource(Q.resolve_expression.crossdb_original)


def test_django_still_resolves_a_boolean_expression_into_its_lookup():
    """query_rows hands filter() a conditional expression that adds its join when resolved."""
    source = inspect.getsource(Query.build_filter)
    assert 'getattr(filter_expr, "conditional", False)' in source
    assert "if not isinstance(condition, Lookup):" in source
    # qs1 | qs2 and qs1 ^ qs2 reach Query.combine (query_rows.combine_seam).
    assert "combined.query.combine(other.query, sql.OR)" in inspect.getsource(QuerySet.__or__)


def test_django_still_refuses_joined_references_by_testing_for_join():
    """query_derived.resolve_ref_seam raises the same refusal for a derived table."""
    source = inspect.getsource(Query.resolve_ref.crossdb_original)
    assert "isinstance(self.alias_map[alias], Join)" in source
    assert "Joined field references are not permitted in this query" in source


def test_names_to_path_still_reports_the_path_it_walked():
    original = Query.names_to_path.crossdb_original
    query_ = Query(Post)
    path, final_field, targets, rest = original(query_, ["author", "username"], Post._meta)
    assert [info.join_field.name for info in path] == ["author"]
    assert path[0].direct and final_field.name == "username" and rest == []


def test_the_compiler_still_takes_select_related_descend_from_its_module_globals():
    source = inspect.getsource(compiler.SQLCompiler.get_related_selections)
    assert source.count("select_related_descend(") == 2
    assert compiler.select_related_descend is not None


def test_model_and_values_iterables_are_where_querysets_take_them():
    assert Post.objects.all()._iterable_class is ModelIterable
    assert Post.objects.values("title")._iterable_class is ValuesIterable
    assert "self._iterable_class(" in inspect.getsource(QuerySet._fetch_all)


def test_related_fields_take_lookups_from_foreign_object_down():
    """Why crossdb_ids is registered on ForeignObject as well as Field."""
    source = inspect.getsource(ForeignObject.get_class_lookups)
    assert "bases.index(ForeignObject)" in source
    field = Post._meta.get_field("author")
    assert field.get_lookup("crossdb_ids") is CrossDatabaseIdsLookup
    assert Post._meta.get_field("title").get_lookup("crossdb_ids") is CrossDatabaseIdsLookup
    assert Field.get_lookups()["crossdb_ids"] is CrossDatabaseIdsLookup


def test_without_the_seam_django_joins_across_databases():
    """Django alone sends a JOIN on auth_user to blog_db: the seam exists because of this."""
    with pytest.raises(CrossDatabaseQueryError, match="author__username"):
        # Without the rewrite, the path check still refuses the JOIN.
        Query.add_q.crossdb_original(Post.objects.all().query, Q(author__username="ann"))
    original_names_to_path = Query.names_to_path
    original_join = Join.as_sql
    try:
        Query.names_to_path = original_names_to_path.crossdb_original
        Join.as_sql = original_join.crossdb_original
        query_ = Post.objects.all().query
        Query.add_q.crossdb_original(query_, Q(author__username="ann"))
        sql, _params = query_.sql_with_params()
    finally:
        Query.names_to_path = original_names_to_path
        Join.as_sql = original_join
    assert 'JOIN "auth_user"' in sql.replace("`", '"')


def test_str_of_a_query_is_rendered_by_sql_with_params_alone():
    """crossdb renders id sets as text inside sql_with_params(): str() must go through it."""
    assert "self.sql_with_params()" in inspect.getsource(Query.__str__)


def test_raw_sql_keeps_its_text_where_crossdb_reads_it():
    assert RawSQL("x.y", ()).sql == "x.y"
    assert ExtraWhere(["x.y = 1"], []).sqls == ["x.y = 1"]
