"""CrossDatabaseManyToManyField outside queries.

Admin, fixtures, audit, checks, migrations, factories."""

import json
from io import StringIO

import factory
import pytest
from django.contrib.auth.models import User
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import connections, models
from django.test.utils import isolate_apps

from crossdb import audit, seams
from crossdb.checks import check_relations, crossdb_fields
from crossdb.factories import RoutedModelFactory, add_related
from crossdb.integrity import unchecked
from tests.m2m.models import Article, Team
from tests.m2mtags.models import Tag
from tests.m2mtwin.models import TwinArticle, TwinTag

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def rows():
    tags = {name: Tag.objects.create(name=name) for name in ("red", "blue", "green")}
    twins = {name: TwinTag.objects.create(name=name) for name in ("red", "blue", "green")}
    ann = User.objects.create(username="ann")
    article = Article.objects.create(title="a")
    article.tags.add(tags["red"], tags["blue"])
    article.readers.add(ann)
    twin = TwinArticle.objects.create(title="a")
    twin.tags.add(twins["red"], twins["blue"])
    return tags, twins, ann, article, twin


# -- admin --


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    return client


def _options(html, name):
    """Return the labels of the options of the select named ``name``."""
    import re

    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r"<option[^>]*>([^<]*)</option>", select)


@pytest.mark.urls("tests.m2m.admin")
def test_admin_filter_horizontal_and_raw_id_match_the_twin(admin_client, rows, queries):
    tags, twins, ann, article, twin = rows
    pages = {}
    for model, obj in (("article", article), ("twinarticle", twin)):
        app = "m2m" if model == "article" else "m2mtwin"
        response = admin_client.get(f"/m2m-admin/{app}/{model}/{obj.pk}/change/")
        assert response.status_code == 200
        pages[model] = _options(response.content.decode(), "tags")
    assert pages["article"] == pages["twinarticle"] == ["blue", "green", "red"]

    response = admin_client.post(
        f"/m2m-admin/m2m/article/{article.pk}/change/",
        {"title": "a", "score": 0, "tags": [tags["green"].pk], "readers": f"{ann.pk}"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert [t.name for t in article.tags.all()] == ["green"]
    assert [u.username for u in article.readers.all()] == ["ann"]

    response = admin_client.post(
        f"/m2m-admin/m2m/article/{article.pk}/change/",
        {"title": "a", "score": 0, "tags": [999999], "readers": ""},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.urls("tests.m2m.admin")
def test_admin_autocomplete_reads_the_target_alias(admin_client, rows, queries):
    tags, twins, *_ = rows
    page = admin_client.get("/m2m-auto/m2m/article/add/")
    assert page.status_code == 200
    with queries() as q:
        response = admin_client.get(
            "/m2m-auto/autocomplete/?app_label=m2m&model_name=article&field_name=tags&term=re"
        )
    assert response.status_code == 200
    assert [r["text"] for r in json.loads(response.content)["results"]] == ["green", "red"]
    assert q.counts()["shop_db"] >= 1
    twin = admin_client.get(
        "/m2m-auto/autocomplete/?app_label=m2mtwin&model_name=twinarticle&field_name=tags&term=re"
    )
    assert [r["text"] for r in json.loads(twin.content)["results"]] == ["green", "red"]


# -- fixtures --


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_dumpdata_and_loaddata_with_natural_keys(rows, tmp_path, fmt):
    tags, *_ = rows
    out = StringIO()
    call_command(
        "dumpdata", "m2m.Article", format=fmt, natural_foreign=True, database="blog_db", stdout=out
    )
    dumped = out.getvalue()
    assert "red" in dumped and "blue" in dumped
    Article.objects.all().delete()
    assert not Article.tags.through.objects.exists()
    # Other pks in the stale default copy would be found if keys were looked up there.
    fixture = tmp_path / f"articles.{fmt}"
    fixture.write_text(dumped)
    call_command("loaddata", str(fixture), database="blog_db", verbosity=0)
    article = Article.objects.get(title="a")
    assert sorted(t.name for t in article.tags.all()) == ["blue", "red"]
    assert [u.username for u in article.readers.all()] == ["ann"]
    # Loaded again over the rows it made: the links there are read from the
    # through table, not by a query of the tags on the fixture's alias.
    call_command("loaddata", str(fixture), database="blog_db", verbosity=0)
    assert sorted(t.name for t in Article.objects.get(title="a").tags.all()) == ["blue", "red"]


def test_the_fixture_seam_is_installed():
    assert seams.installed()["m2m_fixtures"] is True


# -- audit --


def test_audit_reports_and_fixes_dangling_through_rows(rows):
    tags, _twins, _ann, article, _twin = rows
    through = Article.tags.through
    with unchecked():
        through.objects.create(article=article, tag_id=999999)
    field = through._meta.get_field("tag")
    assert field in crossdb_fields()
    report = audit.audit([Article])
    by_label = {r.label: r for r in report}
    assert by_label["m2m.Article_tags.tag"].dangling_rows == 1
    out = StringIO()
    with pytest.raises(CommandError, match="m2m.Article_tags.tag"):
        call_command("crossdb_audit", "--model", "m2m.Article", stdout=out)
    assert "m2m.Article_tags.tag" in out.getvalue()
    call_command("crossdb_audit", "--model", "m2m.Article_tags", "--fix", stdout=StringIO())
    assert through.objects.count() == 2
    assert sorted(t.name for t in article.tags.all()) == ["blue", "red"]


# -- integrity --


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_adding_a_missing_target_by_id_fails_like_the_twin_constraint():
    from django.db import IntegrityError

    sides = [(Article.objects.create(title="a"), Tag.objects.create(name="red"))]
    # On MySQL/MariaDB Django adds with INSERT IGNORE, which also drops rows
    # failing the constraint: the twin writes nothing and says nothing there.
    if connections["default"].vendor != "mysql":
        sides.append((TwinArticle.objects.create(title="a"), TwinTag.objects.create(name="red")))
    for article, tag in sides:
        with pytest.raises(IntegrityError):
            article.tags.add(tag, 999999)
        assert article.tags.count() == 0
        article.tags.add(tag)
        assert [t.name for t in article.tags.all()] == ["red"]


# -- checks --


@isolate_apps("tests.m2m")
def test_plain_many_to_many_across_databases_points_at_the_new_field():

    class Loose(models.Model):
        tags = models.ManyToManyField(Tag, related_name="+")

        class Meta:
            app_label = "m2m"

    errors = check_relations([Loose])
    assert [e.id for e in errors] == ["crossdb.E201"]
    assert "CrossDatabaseManyToManyField" in errors[0].hint


def test_the_new_field_passes_the_checks():
    assert check_relations([Article, Team]) == []
    assert [
        m for m in checks.run_checks(tags=[checks.Tags.models]) if m.id.startswith("crossdb")
    ] == []


@isolate_apps("tests.m2m", "tests.m2mtags")
def test_misused_through_models_are_reported():

    from crossdb import CrossDatabaseManyToManyField

    class FarTag(models.Model):  # routed to shop_db with the m2mtags app
        class Meta:
            app_label = "m2mtags"

    class PlainLink(models.Model):
        owner = models.ForeignKey("m2m.BadOwner", models.CASCADE)
        tag = models.ForeignKey(FarTag, models.CASCADE)

        class Meta:
            app_label = "m2m"

    class FarLink(models.Model):  # the through rows away from their source
        owner = models.ForeignKey("m2m.BadOwner", models.CASCADE)
        tag = models.ForeignKey(FarTag, models.CASCADE)

        class Meta:
            app_label = "m2mtags"

    class BadOwner(models.Model):
        tags = CrossDatabaseManyToManyField(FarTag, through=PlainLink, related_name="+")
        far = CrossDatabaseManyToManyField(FarTag, through=FarLink, related_name="+")
        pinned = CrossDatabaseManyToManyField(FarTag, db_constraint=True, related_name="+")

        class Meta:
            app_label = "m2m"

    found = sorted((e.id, e.obj.name) for e in check_relations([BadOwner]))
    assert found == [
        ("crossdb.E001", "pinned"),
        ("crossdb.E203", "far"),
        ("crossdb.E204", "tags"),
    ]


# -- migrations --


def test_migrations_are_up_to_date_and_create_the_through_table_on_the_source_alias():
    call_command("makemigrations", "m2m", "m2mtags", "--check", "--dry-run", stdout=StringIO())
    tables = {alias: connections[alias].introspection.table_names() for alias in connections}
    assert "m2m_article_tags" in tables["blog_db"]
    assert "m2m_article_tags" not in tables["default"]
    assert "m2m_article_tags" not in tables["shop_db"]


# -- factories --


class TagFactory(RoutedModelFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"tag{n}")


class ArticleFactory(RoutedModelFactory):
    class Meta:
        model = Article
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"article{n}")
    tags = add_related("tags")


def test_factory_post_generation_links_targets_on_their_alias():
    red, blue = TagFactory(), TagFactory()
    article = ArticleFactory(tags=[red, blue])
    assert red._state.db == "shop_db" and article._state.db == "blog_db"
    assert sorted(t.name for t in article.tags.all()) == sorted([red.name, blue.name])
    bare = ArticleFactory()
    assert list(bare.tags.all()) == []
    built = ArticleFactory.build(tags=[red])
    assert built.pk is None


# -- what the field and managers take from Django --


def test_the_django_manager_methods_the_managers_extend_are_there():
    """Fail loudly when Django renames what crossdb.m2m.managers overrides or reads."""
    import inspect

    from django.db.models import query
    from django.db.models.fields.related_descriptors import create_forward_many_to_many_manager

    from crossdb.m2m.managers import create_crossdb_many_to_many_manager

    rel = Article._meta.get_field("tags").remote_field
    django_cls = create_forward_many_to_many_manager(Tag._default_manager.__class__, rel, False)
    ours = create_crossdb_many_to_many_manager(Tag._default_manager.__class__, rel, False)
    for name in ("_build_remove_filters", "_apply_rel_filters", "get_prefetch_querysets", "set"):
        assert callable(getattr(django_cls, name)), name
    # Ours subclasses the class Django's factory builds, whatever its name.
    assert ours.__mro__[1].__qualname__ == django_cls.__qualname__
    manager = Article.objects.create(title="seam").tags
    for attribute in ("source_field_name", "target_field_name", "related_val", "through"):
        assert hasattr(manager, attribute), attribute
    # prefetch_one_level() takes the nested lookups off what get_prefetch_querysets() returns.
    assert "_prefetch_related_lookups" in inspect.getsource(query.prefetch_one_level)


def test_the_auto_created_through_model_is_shaped_as_djangos():
    ours, django = Article.tags.through._meta, TwinArticle.tags.through._meta
    assert [f.name for f in ours.fields] == ["id", "article", "tag"]
    assert [f.name for f in django.fields] == ["id", "twinarticle", "twintag"]
    assert ours.unique_together == (("article", "tag"),)
    assert ours.auto_created is Article and django.auto_created is TwinArticle
    assert (
        ours.get_field("article").remote_field.on_delete
        is django.get_field("twinarticle").remote_field.on_delete
    )


@isolate_apps("tests.m2m")
def test_limit_choices_to_narrows_the_form_choices_on_the_target_alias(rows, queries):
    from crossdb import CrossDatabaseManyToManyField

    class Picky(models.Model):
        tags = CrossDatabaseManyToManyField(Tag, limit_choices_to={"name__startswith": "r"})

        class Meta:
            app_label = "m2m"

    from django.forms import modelform_factory

    # ModelForm applies limit_choices_to, as Django does for any relation.
    field = modelform_factory(Picky, fields=["tags"])().fields["tags"]
    with queries() as q:
        assert [label for _value, label in field.choices] == ["red"]
    assert q.counts() == {"default": 0, "blog_db": 0, "shop_db": 1}
