"""Generated rows and aggregate choices: crossdb answers what the plain-ForeignKey twin answers."""

import pytest
from django.contrib.auth.models import User
from django.db.models import Avg, Count, Max, Min, Q, Sum
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.blog.models import Post
from tests.test_aggregates import rows
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")

FUNCTIONS = {
    "count": lambda r, **kw: Count(r, **kw),
    "count_score": lambda r, **kw: Count(f"{r}__score", **kw),
    "count_score_distinct": lambda r, **kw: Count(f"{r}__score", distinct=True, **kw),
    "sum": lambda r, **kw: Sum(f"{r}__score", **kw),
    "sum_distinct": lambda r, **kw: Sum(f"{r}__score", distinct=True, **kw),
    "avg": lambda r, **kw: Avg(f"{r}__score", **kw),
    "min": lambda r, **kw: Min(f"{r}__score", **kw),
    "max": lambda r, **kw: Max(f"{r}__score", **kw),
}
FILTERS = {
    "none": lambda r: None,
    "published": lambda r: Q(**{f"{r}__published": True}),
    "score_or_title": lambda r: (
        Q(**{f"{r}__score__gte": 3}) | Q(**{f"{r}__title__startswith": "t1"})
    ),
    "not_published": lambda r: ~Q(**{f"{r}__published": True}),
}

POSTS = st.lists(
    st.tuples(st.integers(0, 5), st.integers(-3, 6) | st.none(), st.booleans()), max_size=14
)


def _world(posts):
    User.objects.all().delete()
    users = [User.objects.create(username=f"user{i}", is_staff=i % 2 == 0) for i in range(6)]
    Post.objects.all().delete()
    TwinPost.objects.all().delete()
    for index, (author, score, published) in enumerate(posts):
        values = dict(
            title=f"t{index}", author=users[author], score=score or 0, published=published
        )
        Post.objects.create(**values)
        TwinPost.objects.create(**values)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    posts=POSTS,
    functions=st.lists(st.sampled_from(sorted(FUNCTIONS)), min_size=1, max_size=3, unique=True),
    condition=st.sampled_from(sorted(FILTERS)),
    having=st.none() | st.integers(0, 6),
    descending=st.booleans(),
    limit=st.none() | st.integers(1, 6),
)
def test_annotations_match_the_twin(posts, functions, condition, having, descending, limit):
    _world(posts)

    def build(rel):
        extra = {}
        if (q := FILTERS[condition](rel)) is not None:
            extra["filter"] = q
        annotations = {f"a{i}": FUNCTIONS[name](rel, **extra) for i, name in enumerate(functions)}
        queryset = User.objects.annotate(**annotations)
        if having is not None:
            queryset = queryset.filter(a0__gte=having)
        queryset = queryset.order_by("-a0" if descending else "a0", "username")
        return queryset[:limit] if limit else queryset

    fields = ["username", *(f"a{i}" for i in range(len(functions)))]
    note(str(build("twin_posts").query))
    got, twin = build("blog_posts"), build("twin_posts")
    assert rows(got, *fields) == rows(twin, *fields)
    assert got.count() == twin.count()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    posts=POSTS,
    functions=st.lists(
        st.sampled_from(["count", "sum", "avg", "min", "max"]), min_size=1, max_size=3, unique=True
    ),
    condition=st.sampled_from(sorted(FILTERS)),
    staff=st.none() | st.booleans(),
    grouped=st.booleans(),
)
def test_aggregates_and_groups_match_the_twin(posts, functions, condition, staff, grouped):
    _world(posts)

    def build(rel):
        extra = {}
        if (q := FILTERS[condition](rel)) is not None:
            extra["filter"] = q
        queryset = User.objects.all()
        if staff is not None:
            queryset = queryset.filter(is_staff=staff)
        aggregates = {f"a{i}": FUNCTIONS[name](rel, **extra) for i, name in enumerate(functions)}
        if grouped:
            return queryset.values("is_staff").annotate(**aggregates).order_by("is_staff")
        return queryset.aggregate(**aggregates)

    got, twin = build("blog_posts"), build("twin_posts")
    if grouped:
        fields = ["is_staff", *(f"a{i}" for i in range(len(functions)))]
        assert rows(got, *fields) == rows(twin, *fields)
    else:
        assert rows_of(got) == rows_of(twin)


def rows_of(result):
    return {key: rows_value(value) for key, value in result.items()}


def rows_value(value):
    from tests.test_aggregates import _normal

    return _normal(value)


EXISTS_CONDITIONS = {
    "any": {},
    "published": {"published": True},
    "score": {"score__gte": 3},
    "title": {"title__in": ["t0", "t3", "t5"]},
}


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    posts=POSTS,
    condition=st.sampled_from(sorted(EXISTS_CONDITIONS)),
    negated=st.booleans(),
    staff=st.none() | st.booleans(),
    annotated=st.booleans(),
)
def test_exists_matches_the_twin(posts, condition, negated, staff, annotated):
    from django.db.models import Exists, OuterRef

    _world(posts)

    def build(model):
        exists = Exists(model.objects.filter(author=OuterRef("pk"), **EXISTS_CONDITIONS[condition]))
        exists = ~exists if negated else exists
        queryset = User.objects.all() if staff is None else User.objects.filter(is_staff=staff)
        if annotated:
            return [
                (u.username, bool(u.has))
                for u in queryset.annotate(has=exists).order_by("username")
            ]
        return list(queryset.filter(exists).order_by("username").values_list("username", flat=True))

    assert build(Post) == build(TwinPost)
