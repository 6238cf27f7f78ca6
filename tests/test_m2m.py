"""CrossDatabaseManyToManyField, differential against a ManyToManyField twin inside one database.

``m2m.Article`` (blog_db) has ``tags`` in shop_db and ``readers`` in default;
``m2m.Team`` (blog_db) has ``members`` in default through ``Membership``.
Their twins in ``m2mtwin`` (all in default) hold the same rows; each query runs
on both and must give the same answer.
"""

import pytest
from django.contrib.auth.models import User
from django.db.models import Count, Max, Prefetch, Q, Sum
from django.db.models.signals import m2m_changed

from crossdb import CrossDatabaseManyToManyField
from tests.m2m.models import Article, Membership, Team
from tests.m2mtags.models import Tag
from tests.m2mtwin.models import TwinArticle, TwinMembership, TwinTag, TwinTeam

pytestmark = pytest.mark.django_db(databases="__all__")


class Side:
    def __init__(self, article, tag, read, team, membership, teams):
        self.Article, self.Tag, self.read = article, tag, read
        self.Team, self.Membership, self.teams = team, membership, teams
        self.tag_alias = "shop_db" if tag is Tag else "default"


SIDES = {
    "crossdb": Side(Article, Tag, "read_articles", Team, Membership, "teams"),
    "twin": Side(
        TwinArticle, TwinTag, "twin_read_articles", TwinTeam, TwinMembership, "twin_teams"
    ),
}

# (article title, score, tag names, reader usernames)
ARTICLES = [
    ("a", 1, ["red", "blue"], ["ann"]),
    ("b", 2, ["blue"], ["ann", "bob"]),
    ("c", 3, [], ["bob"]),
    ("d", 4, ["red", "green", "blue"], []),
    ("e", 5, ["green"], ["cid"]),
]
COLORS = {"red": "warm", "blue": "cold", "green": "cold", "grey": "none"}
TEAMS = [("core", [("ann", "lead"), ("bob", "member")]), ("docs", [("bob", "lead")]), ("idle", [])]


@pytest.fixture
def world(stale_users):
    users = {name: User.objects.create(username=name) for name in ("ann", "bob", "cid", "dan")}
    for side in SIDES.values():
        tags = {name: side.Tag.objects.create(name=name, color=c) for name, c in COLORS.items()}
        for title, score, tag_names, readers in ARTICLES:
            article = side.Article.objects.create(title=title, score=score)
            article.tags.add(*(tags[name] for name in tag_names))
            article.readers.add(*(users[name] for name in readers))
        for name, members in TEAMS:
            team = side.Team.objects.create(name=name)
            for username, role in members:
                side.Membership.objects.create(team=team, user=users[username], role=role)
    stale_users()
    return users


def _names(queryset):
    return [
        getattr(obj, "title", None) or getattr(obj, "name", None) or obj.username
        for obj in queryset
    ]


ARTICLE_QUERIES = {
    "tag name": lambda s: s.Article.objects.filter(tags__name="red"),
    "tag name in, distinct": lambda s: s.Article.objects.filter(
        tags__name__in=["red", "blue"]
    ).distinct(),
    "tag name in, rows": lambda s: s.Article.objects.filter(tags__name__in=["red", "blue"]),
    "same tag row": lambda s: s.Article.objects.filter(tags__name="red", tags__color="cold"),
    "other tag rows": lambda s: s.Article.objects.filter(tags__name="red").filter(
        tags__color="cold"
    ),
    "exclude": lambda s: s.Article.objects.exclude(tags__name="red"),
    "exclude two": lambda s: s.Article.objects.exclude(tags__name="red", tags__color="cold"),
    "Q or": lambda s: s.Article.objects.filter(Q(tags__name="green") | Q(score__lt=2)).distinct(),
    "not Q and": lambda s: s.Article.objects.filter(~Q(tags__color="cold") & Q(score__gt=1)),
    "isnull": lambda s: s.Article.objects.filter(tags__isnull=True),
    "not isnull": lambda s: s.Article.objects.filter(tags__isnull=False).distinct(),
    "tag object": lambda s: s.Article.objects.filter(tags=s.Tag.objects.get(name="green")),
    "tag in list": lambda s: s.Article.objects.filter(
        tags__in=list(s.Tag.objects.filter(color="warm"))
    ),
    "tag in queryset": lambda s: s.Article.objects.filter(
        tags__in=s.Tag.objects.filter(color="cold")
    ).distinct(),
    "tag in queryset with using()": lambda s: s.Article.objects.filter(
        tags__in=s.Tag.objects.using(s.tag_alias).filter(color="cold")
    ).distinct(),
    "startswith": lambda s: s.Article.objects.filter(tags__name__startswith="g"),
    "chained with local": lambda s: (
        s.Article.objects.filter(score__gte=2).filter(tags__color="cold").distinct()
    ),
    "readers": lambda s: s.Article.objects.filter(readers__username="bob"),
    "readers exclude": lambda s: s.Article.objects.exclude(readers__username="ann"),
    "tags and readers": lambda s: s.Article.objects.filter(
        tags__name="blue", readers__username="ann"
    ),
}

TAG_QUERIES = {
    "article title": lambda s: s.Tag.objects.filter(articles__title="d"),
    "article score, distinct": lambda s: s.Tag.objects.filter(articles__score__gt=3).distinct(),
    "same article row": lambda s: s.Tag.objects.filter(
        articles__score__gt=1, articles__score__lt=4
    ),
    "exclude": lambda s: s.Tag.objects.exclude(articles__title="a"),
    "isnull": lambda s: s.Tag.objects.filter(articles__isnull=True),
    "article in": lambda s: s.Tag.objects.filter(
        articles__in=s.Article.objects.filter(score__lte=2)
    ).distinct(),
    "Q or": lambda s: s.Tag.objects.filter(Q(articles__title="e") | Q(name="grey")),
    "two hops": lambda s: s.Tag.objects.filter(articles__readers__username="bob").distinct(),
    # A row per matching article (through row), as Django's JOIN gives it.
    "article score, rows": lambda s: s.Tag.objects.filter(articles__score__gt=3),
    "two hops, rows": lambda s: s.Tag.objects.filter(articles__readers__username="bob"),
    "Q or, rows": lambda s: s.Tag.objects.filter(Q(articles__score__gt=3) | Q(name="grey")),
    "chained, rows": lambda s: s.Tag.objects.filter(articles__score__gt=1).filter(
        articles__score__lt=5
    ),
}

USER_QUERIES = {
    "read": lambda s: User.objects.filter(**{f"{s.read}__title": "b"}).order_by("username"),
    "read exclude": lambda s: User.objects.exclude(**{f"{s.read}__score__gt": 1}).order_by(
        "username"
    ),
    "teams": lambda s: User.objects.filter(**{f"{s.teams}__name": "core"}).order_by("username"),
    "teams isnull": lambda s: User.objects.filter(**{f"{s.teams}__isnull": True}).order_by(
        "username"
    ),
    "through field": lambda s: (
        User.objects.filter(**{f"{s.teams}__memberships__role": "lead"})
        .distinct()
        .order_by("username")
    ),
    "through field, rows": lambda s: User.objects.filter(
        **{f"{s.teams}__memberships__role": "lead"}
    ).order_by("username"),
    "read, rows": lambda s: User.objects.filter(**{f"{s.read}__score__gte": 1}).order_by(
        "username"
    ),
}

TEAM_QUERIES = {
    "member": lambda s: s.Team.objects.filter(members__username="bob"),
    "member exclude": lambda s: s.Team.objects.exclude(members__username="ann"),
    "no members": lambda s: s.Team.objects.filter(members__isnull=True),
    "member in": lambda s: s.Team.objects.filter(
        members__in=User.objects.filter(username__in=["ann", "cid"])
    ),
}

ALL_QUERIES = {
    **{f"Article: {k}": v for k, v in ARTICLE_QUERIES.items()},
    **{f"Tag: {k}": v for k, v in TAG_QUERIES.items()},
    **{f"User: {k}": v for k, v in USER_QUERIES.items()},
    **{f"Team: {k}": v for k, v in TEAM_QUERIES.items()},
}


@pytest.mark.parametrize("name", sorted(ALL_QUERIES))
def test_lookup_matches_the_twin(world, name):
    query = ALL_QUERIES[name]
    crossdb, twin = query(SIDES["crossdb"]), query(SIDES["twin"])
    assert _names(crossdb) == _names(twin)
    assert crossdb.count() == twin.count()
    assert crossdb.exists() == twin.exists()


def test_lookups_run_one_query_per_alias(world, queries):
    with queries() as q:
        assert _names(Article.objects.filter(tags__name="red")) == ["a", "d"]
    assert q.counts() == {"default": 0, "blog_db": 1, "shop_db": 1}
    with queries() as q:
        assert _names(Tag.objects.filter(articles__title="a")) == ["blue", "red"]
    assert q.counts() == {"default": 0, "blog_db": 1, "shop_db": 1}


def test_order_by_and_values_across_match_the_twin(world):
    for side in SIDES.values():
        # Rows without tags left out: where NULLs sort is each database's own
        # (the twin's is default's, the crossdb side's blog_db's).
        side.ordered = _names(
            side.Article.objects.filter(score__gt=0).exclude(title="c").order_by("tags__name", "id")
        )
        side.values = sorted(
            side.Article.objects.values_list("title", "tags__name"),
            key=lambda r: (r[0], r[1] or ""),
        )
        side.counted = sorted(
            side.Article.objects.annotate(n=Count("tags")).values_list("title", "n")
        )
    crossdb, twin = SIDES["crossdb"], SIDES["twin"]
    assert (crossdb.ordered, crossdb.values, crossdb.counted) == (
        twin.ordered,
        twin.values,
        twin.counted,
    )


def test_aggregates_from_the_target_side_match_the_twin(world):
    # The through rows live with the articles: across the reverse of the
    # through model's crossdb key, computed on blog_db and joined on shop_db.
    def aggregates(side):
        tags = side.Tag.objects.order_by("name")
        return (
            list(tags.annotate(n=Count("articles")).values_list("name", "n")),
            list(
                tags.annotate(t=Sum("articles__score"), m=Max("articles__title")).values_list(
                    "name", "t", "m"
                )
            ),
            list(
                tags.annotate(n=Count("articles", filter=Q(articles__score__gt=2))).values_list(
                    "name", "n"
                )
            ),
            list(tags.annotate(n=Count("articles")).filter(n__gt=1).values_list("name", flat=True)),
            side.Tag.objects.aggregate(n=Count("articles"), s=Sum("articles__score")),
            list(
                side.Article.objects.annotate(n=Count("readers"))
                .order_by("title")
                .values_list("title", "n")
            ),
        )

    assert aggregates(SIDES["crossdb"]) == aggregates(SIDES["twin"])


def test_aggregates_from_the_source_side_match_the_twin(world):
    # Target columns read per through row (crossdb.query_forward), grouped here.
    def aggregates(side):
        articles = side.Article.objects.order_by("title")
        return (
            list(
                articles.annotate(
                    n=Count("tags__name"),
                    last=Max("tags__name"),
                    colors=Count("tags__color", distinct=True),
                ).values_list("title", "n", "last", "colors")
            ),
            side.Article.objects.aggregate(n=Count("tags__name", distinct=True)),
        )

    assert aggregates(SIDES["crossdb"]) == aggregates(SIDES["twin"])


# -- managers --


def _record(signals):
    def receiver(sender, action, instance, reverse, model, pk_set, using, **kwargs):
        names = (
            sorted(_names(model._base_manager.using(None).filter(pk__in=pk_set)))
            if pk_set
            else pk_set
        )
        signals.append((action, reverse, str(instance), model.__name__.replace("Twin", ""), names))
        signals_using.append(using)

    signals_using = []
    return receiver, signals_using


def _exercise(side, users):
    """Run one manager script on a side and return what it saw."""
    seen = []
    a, b = side.Article.objects.get(title="a"), side.Article.objects.get(title="b")
    red, grey = side.Tag.objects.get(name="red"), side.Tag.objects.get(name="grey")
    seen.append(_names(a.tags.all()))
    seen.append(_names(a.tags.filter(color="cold")))
    seen += [a.tags.count(), a.tags.exists(), a.tags.filter(name="grey").exists()]
    a.tags.add(grey)
    a.tags.add(grey.pk)  # already there
    seen.append(_names(a.tags.all()))
    a.tags.remove(red)
    seen.append(_names(a.tags.all()))
    a.tags.set([red, grey])
    seen.append(_names(a.tags.all()))
    a.tags.set([grey.pk], clear=True)
    seen.append(_names(a.tags.all()))
    new = a.tags.create(name="new", color="fresh")
    seen.append((_names(a.tags.all()), new.name))
    obj, created = a.tags.get_or_create(name="newer")
    seen.append((obj.name, created, a.tags.get_or_create(name="newer")[1]))
    obj, created = a.tags.update_or_create(name="newest", defaults={"color": "x"})
    seen.append((obj.name, obj.color, created))
    a.tags.clear()
    seen.append(_names(a.tags.all()))
    # The reverse side.
    seen.append(_names(red.articles.all()))
    red.articles.add(a, b)
    seen.append(_names(red.articles.all()))
    red.articles.remove(b)
    seen.append(_names(red.articles.order_by("-title")))
    red.articles.set([b])
    seen.append((_names(red.articles.all()), _names(a.tags.all()), _names(b.tags.all())))
    made = red.articles.create(title="made")
    seen.append((_names(made.tags.all()), _names(red.articles.all())))
    red.articles.clear()
    seen.append(_names(red.articles.all()))
    # Explicit through model with through_defaults.
    core = side.Team.objects.get(name="core")
    core.members.add(users["cid"], through_defaults={"role": "guest"})
    seen.append(
        list(side.Membership.objects.filter(team=core).values_list("user__username", "role"))
        if side is SIDES["twin"]
        else [
            (User.objects.get(pk=u).username, r)
            for u, r in side.Membership.objects.filter(team=core).values_list("user", "role")
        ]
    )
    core.members.set([users["ann"], users["dan"]], through_defaults={"role": "new"})
    seen.append(_names(core.members.order_by("username")))
    teams = getattr(users["dan"], side.teams)
    seen.append(_names(teams.all()))
    teams.add(side.Team.objects.get(name="docs"), through_defaults={"role": "x"})
    seen.append(_names(teams.all()))
    teams.remove(core)
    seen.append(_names(teams.all()))
    reads = getattr(users["dan"], side.read)
    reads.add(a)
    seen.append((_names(reads.all()), _names(a.readers.all())))
    return seen


def test_managers_match_the_twin(world):
    signals = {}
    for name, side in SIDES.items():
        signals[name] = []
        receiver, using = _record(signals[name])
        for model in (side.Article.tags.through, side.Article.readers.through, side.Membership):
            m2m_changed.connect(receiver, sender=model, weak=False)
        try:
            seen = _exercise(side, world)
        finally:
            for model in (side.Article.tags.through, side.Article.readers.through, side.Membership):
                m2m_changed.disconnect(receiver, sender=model)
        signals[name + " using"] = set(using)
        signals[name + " seen"] = seen
    assert signals["crossdb seen"] == signals["twin seen"]
    assert signals["crossdb"] == signals["twin"]
    # m2m_changed carries the alias of the through rows.
    assert signals["crossdb using"] == {"blog_db"}
    assert signals["twin using"] == {"default"}


def test_each_manager_query_goes_to_the_alias_of_its_table(world, queries):
    a = Article.objects.get(title="a")
    red = Tag.objects.get(name="red")
    with queries() as q:
        assert _names(a.tags.all()) == ["blue", "red"]
    assert q.counts() == {"default": 0, "blog_db": 1, "shop_db": 1}
    with queries() as q:
        assert _names(red.articles.all()) == ["a", "d"]
    assert q.counts() == {"default": 0, "blog_db": 1, "shop_db": 0}
    with queries() as q:
        tag = a.tags.create(name="made")
    assert tag._state.db == "shop_db"
    assert q.counts()["default"] == 0
    assert q.counts()["shop_db"] >= 1 and q.counts()["blog_db"] >= 1
    with queries() as q:
        a.tags.set([red])
    assert q.counts()["default"] == 0


def test_async_twins(world):
    from asgiref.sync import async_to_sync

    a = Article.objects.get(title="a")
    grey = Tag.objects.get(name="grey")

    async def script():
        await a.tags.aadd(grey)
        await a.tags.aremove(grey)
        await a.tags.aset([grey])
        made = await a.tags.acreate(name="async")
        got, created = await a.tags.aget_or_create(name="async2")
        names = [tag.name async for tag in a.tags.all()]
        count = await a.tags.acount()
        await a.tags.aclear()
        return names, count, made._state.db, created, [t async for t in a.tags.all()]

    assert async_to_sync(script)() == (["async", "async2", "grey"], 3, "shop_db", True, [])


def test_add_refuses_a_wrong_model_and_unsaved_source(world):
    a = Article.objects.get(title="a")
    with pytest.raises(TypeError):
        a.tags.add(a)
    with pytest.raises(ValueError):
        Article(title="unsaved").tags.all()


# -- prefetch --


def _prefetched(articles, attr="tags"):
    return [(x.title, _names(getattr(x, attr).all())) for x in articles]


def test_prefetch_both_ways_matches_the_twin_one_query_per_alias(world, queries):
    with queries() as q:
        view = _prefetched(Article.objects.prefetch_related("tags"))
    assert q.counts() == {"default": 0, "blog_db": 2, "shop_db": 1}
    assert view == _prefetched(TwinArticle.objects.prefetch_related("tags"))

    with queries() as q:
        view = [
            (t.name, _names(t.articles.all())) for t in Tag.objects.prefetch_related("articles")
        ]
    assert q.counts() == {"default": 0, "blog_db": 2, "shop_db": 1}
    assert view == [
        (t.name, _names(t.articles.all())) for t in TwinTag.objects.prefetch_related("articles")
    ]


def test_prefetch_nested_with_querysets_and_to_attr_matches_the_twin(world, queries):
    def run(side):
        articles = side.Article.objects.prefetch_related(
            Prefetch("tags", queryset=side.Tag.objects.filter(color="cold"), to_attr="cold"),
            "tags__articles__readers",
            Prefetch("readers", queryset=User.objects.order_by("-username")),
        )
        return [
            (
                x.title,
                _names(x.cold),
                [
                    (t.name, [(y.title, _names(y.readers.all())) for y in t.articles.all()])
                    for t in x.tags.all()
                ],
                _names(x.readers.all()),
            )
            for x in articles
        ]

    with queries() as q:
        crossdb = run(SIDES["crossdb"])
    # articles; cold tags (through, tags); tags (through, tags); their articles
    # (through, articles); their readers (through, users); readers (through, users).
    assert q.counts() == {"default": 2, "blog_db": 7, "shop_db": 2}
    assert crossdb == run(SIDES["twin"])


def test_prefetch_sliced_queryset_matches_the_twin(world):
    def run(side):
        articles = side.Article.objects.prefetch_related(
            Prefetch("tags", queryset=side.Tag.objects.order_by("-name")[1:3], to_attr="some")
        )
        return [(x.title, _names(x.some)) for x in articles]

    assert run(SIDES["crossdb"]) == run(SIDES["twin"])


def test_prefetch_of_many_rows_is_one_query_per_alias(queries):
    tags = Tag.objects.bulk_create([Tag(name=f"t{i}") for i in range(1500)])
    articles = Article.objects.bulk_create([Article(title=f"x{i}") for i in range(1200)])
    through = Article.tags.through
    through.objects.bulk_create(
        [
            through(article=a, tag=tags[(i * 7 + j) % 1500])
            for i, a in enumerate(articles)
            for j in range(2)
        ]
    )
    with queries() as q:
        seen = sum(len(a.tags.all()) for a in Article.objects.prefetch_related("tags"))
    assert seen == 2400
    assert q.counts() == {"default": 0, "blog_db": 2, "shop_db": 1}


# -- deletion --


def _through_rows(side):
    return sorted(
        (side.Article.objects.get(pk=a).title, side.Tag.objects.get(pk=t).name)
        for a, t in side.Article.tags.through.objects.values_list(
            side.Article.tags.field.m2m_column_name()[:-3],
            side.Article.tags.field.m2m_reverse_name()[:-3],
        )
    )


def test_deleting_either_end_deletes_its_through_rows_like_the_twin(world):
    results = {}
    for name, side in SIDES.items():
        count_tag, per_model_tag = side.Tag.objects.get(name="blue").delete()
        count_article, per_model_article = side.Article.objects.filter(title="d").delete()
        results[name] = (
            count_tag,
            sorted(per_model_tag.values()),
            count_article,
            sorted(per_model_article.values()),
            _through_rows(side),
        )
    assert results["crossdb"] == results["twin"]


def test_deleting_a_user_deletes_memberships_and_reader_rows(world):
    results = {}
    for name, side in SIDES.items():
        results[name] = (
            _names(side.Team.objects.filter(members__username="bob")),
            _names(side.Article.objects.filter(readers__username="bob")),
        )
    assert results["crossdb"] == results["twin"]
    count, per_model = world["bob"].delete()
    assert per_model["m2m.Membership"] == 2
    assert per_model["m2m.Article_readers"] == 2
    assert per_model["m2mtwin.TwinMembership"] == 2
    assert per_model["m2mtwin.TwinArticle_readers"] == 2
    assert not Team.objects.filter(members__username="bob").exists()
    assert Membership.objects.count() == TwinMembership.objects.count() == 1
    assert Article.readers.through.objects.count() == TwinArticle.readers.through.objects.count()


# -- the field --


def test_auto_created_through_lives_with_the_source():
    through = Article.tags.through
    assert through._meta.auto_created is Article
    assert through._meta.db_table == "m2m_article_tags"
    from crossdb import routing
    from crossdb.fields import is_crossdb_field

    assert routing.db_for_write(through) == "blog_db"
    assert not is_crossdb_field(through._meta.get_field("article"))
    assert is_crossdb_field(through._meta.get_field("tag"))
    assert through._meta.get_field("tag").db_constraint is False


def test_deconstruct_round_trips():
    field = Article._meta.get_field("tags")
    name, path, args, kwargs = field.deconstruct()
    assert path == "crossdb.CrossDatabaseManyToManyField"
    assert kwargs == {"blank": True, "related_name": "articles", "to": "m2mtags.tag"}
    members = Team._meta.get_field("members").deconstruct()[3]
    assert members["through"] == "m2m.Membership"
    assert (
        CrossDatabaseManyToManyField("m2mtags.Tag", db_constraint=True).deconstruct()[3][
            "db_constraint"
        ]
        is True
    )


def test_formfield_is_a_multiple_choice_field_on_the_target_alias(world):
    from django import forms

    class ArticleForm(forms.ModelForm):
        class Meta:
            model = Article
            fields = ["title", "tags"]

    form = ArticleForm()
    field = form.fields["tags"]
    assert isinstance(field, forms.ModelMultipleChoiceField)
    assert [label for _value, label in field.choices] == ["blue", "green", "grey", "red"]
    red = Tag.objects.get(name="red")
    form = ArticleForm(data={"title": "new", "tags": [red.pk, 999999]})
    assert not form.is_valid() and "tags" in form.errors
    form = ArticleForm(data={"title": "new", "tags": [red.pk]})
    assert form.is_valid(), form.errors
    article = form.save()
    assert _names(article.tags.all()) == ["red"]
    edit = ArticleForm(instance=article)
    assert edit.initial["tags"] == [red]
