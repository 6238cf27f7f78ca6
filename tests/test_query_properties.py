"""Generated conditions and data: crossdb answers what the plain-ForeignKey twin answers."""

import os

import pytest
from django.contrib.auth.models import User
from django.db.models import Q
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from crossdb import CrossDatabaseQueryError
from crossdb.query_lookups import find_crossing
from tests.blog.models import Post
from tests.query_helpers import build_world, natural, twin_q
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")

NAMES = st.sampled_from(["ann", "bob", "cat", "dan", "zed"])
BOOLS = st.booleans()

POST_LEAVES = [
    ("author__username", NAMES),
    ("author__is_staff", BOOLS),
    ("author__email__endswith", st.sampled_from(["x.org", "y.org"])),
    ("editor__username", NAMES),
    ("editor__username__isnull", BOOLS),
    ("editor__last_login__isnull", BOOLS),
    ("editor__first_name", st.sampled_from(["", "Dan", "Ann"])),
    ("title__startswith", st.sampled_from(["a", "g", "e"])),
    ("published", BOOLS),
    ("score__gte", st.integers(0, 7)),
    ("author__shop_profile__nickname", st.sampled_from(["annie", "bobby"])),
    ("mentions__text__startswith", st.sampled_from(["m1", "m3"])),
    ("mentions__isnull", BOOLS),
    ("author__blog_comments__text__startswith", st.sampled_from(["n", "t", "s"])),
    ("comments__author__username", NAMES),
]
USER_LEAVES = [
    ("username", NAMES),
    ("is_staff", BOOLS),
    ("blog_posts__title__startswith", st.sampled_from(["a", "g", "e", "d"])),
    ("blog_posts__score__gte", st.integers(0, 7)),
    ("blog_posts__published", BOOLS),
    ("blog_posts__isnull", BOOLS),
    ("blog_posts__editor__username", NAMES),
    ("edited_posts__isnull", BOOLS),
    ("shop_profile__nickname", st.sampled_from(["annie", "bobby"])),
    ("shop_profile__isnull", BOOLS),
    ("orders__quantity__gte", st.integers(1, 3)),
]


def conditions(leaves):
    leaf = st.sampled_from(leaves).flatmap(
        lambda pair: pair[1].map(lambda value: Q((pair[0], value)))
    )
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.tuples(children, children).map(lambda pair: pair[0] & pair[1]),
            st.tuples(children, children).map(lambda pair: pair[0] | pair[1]),
            children.map(lambda child: ~child),
            st.lists(children, min_size=2, max_size=3).map(lambda items: Q(*items)),
        ),
        max_leaves=4,
    )


def _leaves(node):
    if isinstance(node, tuple):
        return [node]
    return [leaf for child in node.children for leaf in _leaves(child)]


def _crosses_many_after_many(model, condition):
    """Return True when a leaf crosses to many rows after a multi-valued local relation.

    The one case whose rows are not multiplied as Django's JOIN multiplies
    them (docs/limitations.rst): the crossing is an id set there.
    """
    return any(
        (crossing := find_crossing(model, lookup)) is not None
        and crossing.multi_valued
        and _multi_valued_prefix(model, crossing)
        for lookup, _value in _leaves(condition)
    )


def _leaf_facts(model, node, negated=False, found=None):
    """Return ``[(crossing or None, lookup, under a negation?)]`` for the leaves under ``node``."""
    found = [] if found is None else found
    negated = negated or node.negated
    for child in node.children:
        if isinstance(child, Q):
            _leaf_facts(model, child, negated, found)
        else:
            found.append((find_crossing(model, child[0]), child[0], negated))
    return found


def _may_be_absent(crossing):
    """Return True when Django's LEFT JOIN can give a row of NULLs along the crossing."""
    field = crossing.field
    if (crossing.reverse and not field.multiple) or (not crossing.reverse and field.null):
        return True
    opts = field.related_model._meta
    for name in crossing.rest.split("__") if crossing.rest else ():
        try:
            step = opts.get_field(name)
        except Exception:
            break
        if not step.is_relation:
            break
        if getattr(step, "null", False) or (step.auto_created and not step.multiple):
            return True
        opts = step.related_model._meta
    return False


def _far_table(crossing):
    return crossing.field.related_model._meta.db_table


def _order_dependent(model, condition):
    """Return True where Django's own answer depends on the order it builds joins.

    Two shapes, both Django's (see docs/querying.rst) and left out here:

    - a relation that can be absent (nullable key, reverse one-to-one) named
      by several conditions of one filter() call, one of them negated: Django
      adds "IS NOT NULL" to a negated condition or not depending on the join
      type an earlier condition left, so rows without the related row differ;
    - a negated condition through a same-database multi-valued relation
      beside other multi-valued conditions: Django's split_exclude() may
      correlate its subquery with a join of another condition.
    """
    facts = _leaf_facts(model, condition)
    # Two relations to one table (blog_posts, edited_posts) with a negation:
    # split_exclude() may correlate with the other relation's join.
    tables = {}
    for crossing, _lookup, _negated in facts:
        if crossing is not None and crossing.multi_valued:
            tables.setdefault(_far_table(crossing), set()).add(crossing.key)
    if any(len(keys) > 1 for keys in tables.values()) and any(n for _c, _l, n in facts):
        return True
    absent = {}
    for crossing, _lookup, negated in facts:
        if crossing is not None and _may_be_absent(crossing):
            absent.setdefault(crossing.key, []).append(negated)
    if any(len(sides) > 1 and any(sides) for sides in absent.values()):
        return True
    negated_local_many = any(
        negated and crossing is not None and _multi_valued_prefix(model, crossing)
        for crossing, _lookup, negated in facts
    )
    many = sum(
        1
        for crossing, _lookup, _negated in facts
        if crossing is not None and (crossing.multi_valued or _multi_valued_prefix(model, crossing))
    )
    return negated_local_many and many > 1


def _multi_valued_prefix(model, crossing):
    opts = model._meta
    for name in crossing.prefix:
        field = opts.get_field(name)
        if field.one_to_many or field.many_to_many:
            return True
        opts = field.related_model._meta
    return False


def _compare(model, twin, condition, outcome):
    note(f"{model.__name__}.filter({condition})")
    # exclude() below negates the whole condition.
    assume(not _order_dependent(model, condition) and not _order_dependent(model, ~condition))
    twin_condition = twin_q(model, condition)
    try:
        got = natural(model.objects.filter(condition).order_by("pk"))
        excluded = natural(model.objects.exclude(condition).distinct().order_by("pk"))
        distinct = natural(model.objects.filter(condition).distinct().order_by("pk"))
    except CrossDatabaseQueryError:
        outcome["refused"] += 1
        return
    outcome["answered"] += 1
    expected = natural(twin.objects.filter(twin_condition).order_by("pk"))
    assert distinct == natural(twin.objects.filter(twin_condition).distinct().order_by("pk"))
    assert excluded == natural(twin.objects.exclude(twin_condition).distinct().order_by("pk"))
    if not _crosses_many_after_many(model, condition):
        # A row per matching related row, as Django's JOIN gives it.
        assert got == expected
        assert model.objects.filter(condition).count() == len(expected)


BASE_EDITORS = {"alpha": None, "beta": "bob", "gamma": "ann", "delta": None}


def _vary(world, editor_of, staff):
    """Set the same editors and staff on both sides, from the base rows each time."""
    for title, editor in {**BASE_EDITORS, **editor_of}.items():
        user = world.users[editor] if editor else None
        Post.objects.filter(title=title).update(editor=user)
        TwinPost.objects.filter(title=title).update(editor=user)
    User.objects.filter(username__in=staff).update(is_staff=True)
    User.objects.exclude(username__in=staff).update(is_staff=False)


EDITORS = st.dictionaries(
    st.sampled_from(["alpha", "beta", "gamma", "delta"]),
    st.sampled_from([None, "ann", "bob", "dan"]),
    max_size=3,
)
STAFF = st.sets(st.sampled_from(["ann", "bob", "cat", "dan"]), max_size=2)
SETTINGS = settings(
    max_examples=30,
    # CI replays a fixed set of examples; a developer's run explores new ones.
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def test_generated_post_conditions():
    world = build_world()
    outcome = {"answered": 0, "refused": 0}

    @SETTINGS
    @given(condition=conditions(POST_LEAVES), editor_of=EDITORS, staff=STAFF)
    def check(condition, editor_of, staff):
        _vary(world, editor_of, staff)
        _compare(Post, TwinPost, condition, outcome)

    check()
    assert outcome["answered"] > 2 * outcome["refused"]


def test_generated_user_conditions():
    world = build_world()
    outcome = {"answered": 0, "refused": 0}

    @SETTINGS
    @given(condition=conditions(USER_LEAVES), editor_of=EDITORS, staff=STAFF)
    def check(condition, editor_of, staff):
        _vary(world, editor_of, staff)
        _compare(User, User, condition, outcome)

    check()
    assert outcome["answered"] > 2 * outcome["refused"]
