"""crossdb's seams into Django: installed, and still resting on what Django 5.2 does.

If a Django upgrade moves anything below, these tests fail first and say what moved.
"""

import inspect

import pytest
from django.contrib.auth.models import User
from django.db import router
from django.db.models import ForeignKey, OneToOneField
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In
from django.db.utils import ConnectionRouter
from django.test import override_settings

from crossdb import seams
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
        (ForwardManyToOneDescriptor, "get_queryset", ["self", "hints"]),
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
