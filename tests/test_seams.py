"""crossdb's seams into Django: installed, and resting on what Django 5.2, 6.0 and 6.1 do.

If a Django upgrade moves anything below, these tests fail first and say what moved.
What differs between the releases is pinned per release: a release missing from
these tables fails until it has been checked and added (see crossdb.django_versions).
"""

import inspect
import types
import warnings

import django
import pytest
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import User
from django.db import models, router
from django.db.models import CharField, ForeignKey, OneToOneField
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In
from django.db.utils import ConnectionRouter
from django.test import override_settings

from crossdb import django_versions, seams
from tests.blog.models import Post


def test_every_seam_is_installed():
    assert seams.installed() == dict.fromkeys(seams.SEAMS, True)


def test_installing_twice_wraps_once():
    before = ConnectionRouter.db_for_read
    seams.install_all()
    assert ConnectionRouter.db_for_read is before


def test_django_still_falls_back_to_the_hint_instance_alias():
    """The routing seam exists because of this fallback; if it goes, revisit the seam."""
    post = Post(pk=1)
    post._state.db = "blog_db"
    original = ConnectionRouter.db_for_read.crossdb_original
    assert inspect.signature(original).parameters.keys() == {"self", "model", "hints"}
    with override_settings(DATABASE_ROUTERS=["tests.routers.RulesOrNoneRouter"]):
        assert original(router, User, instance=post) == "blog_db"
        assert router.db_for_read(User, instance=post) == "default"
        other = ConnectionRouter.allow_relation.crossdb_original
        user = User(pk=1)
        user._state.db = "default"
        assert other(router, user, post) is False
        assert router.allow_relation(user, post) is True


@pytest.mark.parametrize(
    ("owner", "name", "parameters"),
    [
        (ForwardManyToOneDescriptor, "get_prefetch_querysets", ["self", "instances", "querysets"]),
        (ForwardManyToOneDescriptor, "get_object", ["self", "instance"]),
        (ForwardManyToOneDescriptor, "__set__", ["self", "instance", "value"]),
        (ReverseOneToOneDescriptor, "__get__", ["self", "instance", "cls"]),
        (In, "process_rhs", ["self", "compiler", "connection"]),
        (RelatedIn, "as_sql", ["self", "compiler", "connection"]),
    ],
)
def test_django_methods_crossdb_extends_keep_their_signature(owner, name, parameters):
    assert list(inspect.signature(getattr(owner, name)).parameters) == parameters


def test_django_fields_still_take_their_descriptor_classes_from_class_attributes():
    for field in (ForeignKey, OneToOneField):
        assert hasattr(field, "forward_related_accessor_class")
        assert hasattr(field, "related_accessor_class")
    assert "get_prefetch_querysets" in ForwardManyToOneDescriptor.__dict__
    assert Post.author.__class__.__name__ == "CrossDatabaseForwardManyToOneDescriptor"


RELEASE = django.VERSION[:2]
# ForwardManyToOneDescriptor.get_queryset: **hints, then a keyword-only instance.
GET_QUERYSET_PARAMETERS = {
    (5, 2): ["self", "hints"],
    (6, 0): ["self", "hints"],
    (6, 1): ["self", "instance"],
}
# select_related() without arguments: deprecated (RemovedInDjango2028Warning) from 6.1.
SELECT_RELATED_WITHOUT_FIELDS_WARNS = {(5, 2): False, (6, 0): False, (6, 1): True}
EMPTY_CHOICE_LABEL = {(5, 2): "---------", (6, 0): "---------", (6, 1): "- Select an option -"}


def test_forward_get_queryset_takes_the_instance_as_crossdb_passes_it():
    signature = inspect.signature(ForwardManyToOneDescriptor.get_queryset)
    assert list(signature.parameters) == GET_QUERYSET_PARAMETERS[RELEASE]
    signature.bind(Post.author, instance=Post())


def _django_select_related_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        queryset = call()
    deprecations = (DeprecationWarning, PendingDeprecationWarning)
    return queryset, [w for w in caught if issubclass(w.category, deprecations)]


def test_django_select_related_without_fields_is_what_crossdb_reproduces():
    original = type(Post.objects.all()).select_related.crossdb_original
    queryset, caught = _django_select_related_warnings(lambda: original(User.objects.all()))
    assert queryset.query.select_related is True
    warns = SELECT_RELATED_WITHOUT_FIELDS_WARNS[RELEASE]
    assert django_versions.SELECT_RELATED_WITHOUT_FIELDS_DEPRECATED is warns
    assert [str(w.message) for w in caught] == (
        [django_versions._SELECT_RELATED_MESSAGE] if warns else []
    )


def test_crossdb_select_related_without_fields_warns_only_where_django_would():
    queryset, caught = _django_select_related_warnings(lambda: Post.objects.select_related())
    assert queryset.query.select_related is True
    # Attributed to this caller, as Django's own warning is; never to crossdb.
    expected = [__file__] if SELECT_RELATED_WITHOUT_FIELDS_WARNS[RELEASE] else []
    assert [w.filename for w in caught] == expected
    # Django's admin (an internal caller) is never warned.
    changelist = types.SimpleNamespace(list_select_related=True)
    _queryset, caught = _django_select_related_warnings(
        lambda: ChangeList.apply_select_related(changelist, Post.objects.all())
    )
    assert caught == []


def test_a_deprecation_raised_from_crossdb_is_an_error():
    for category in (DeprecationWarning, PendingDeprecationWarning):
        with pytest.raises(category):
            warnings.warn_explicit("old", category, "crossdb/x.py", 1, module="crossdb.x")


def test_the_empty_choice_label_is_this_releases():
    assert django_versions.blank_choice_label() == EMPTY_CHOICE_LABEL[RELEASE]
    field = CharField(choices=[("a", "A")])
    assert field.get_choices()[0][1] == django_versions.blank_choice_label()


@pytest.mark.django_db(databases="__all__")
def test_fetch_modes_reach_the_target_alias_where_django_has_them(queries):
    assert hasattr(models, "FETCH_PEERS") is (RELEASE >= (6, 1))
    if RELEASE < (6, 1):
        return
    users = [User.objects.create(username=name) for name in ("ann", "bob")]
    for user in users:
        Post.objects.create(title=user.username, author=user)
    posts = list(Post.objects.fetch_mode(models.FETCH_PEERS).order_by("title"))
    with queries() as q:
        assert [post.author.username for post in posts] == ["ann", "bob"]
    # Both authors in one query, on the users' alias.
    assert q.counts() == {"default": 1, "blog_db": 0, "shop_db": 0}
    from django.core.exceptions import FieldFetchBlocked

    with pytest.raises(FieldFetchBlocked):
        Post.objects.fetch_mode(models.FETCH_RAISE).get(title="ann").author


@pytest.mark.django_db(databases="__all__")
def test_select_related_without_fields_after_union_raises_djangos_error_first():
    # Django checks combined queries before it warns (queries.test_qs_combinators).
    from django.db.utils import NotSupportedError

    from tests.blog.models import Post

    qs = Post.objects.all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NotSupportedError, match="select_related"):
            qs.union(qs).select_related()


def test_querysets_have_fetch_modes_from_django_6_1():
    assert django_versions.FETCH_MODES is (RELEASE >= (6, 1))


def test_many_to_many_managers_have_set_base_from_django_6_1():
    manager = User.groups.related_manager_cls
    assert hasattr(manager, "set_base") == django_versions.MANY_TO_MANY_SET_BASE
