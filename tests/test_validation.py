"""Validation reads the target alias: ``full_clean()``, ``ModelForm``, ``ModelChoiceField``."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from crossdb.django_versions import blank_choice_label
from tests.blog.models import Post
from tests.forms import PostForm, TwinPostForm
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")

# The empty choice of a select: "---------" up to Django 6.0, "- Select an option -" from 6.1.
EMPTY = blank_choice_label()


@pytest.fixture
def john(stale_users):
    user = User.objects.create(username="john")
    stale_users()
    # A user that exists only in the stale copies: it must not validate.
    for alias in ("blog_db", "shop_db"):
        User.objects.using(alias).create(pk=user.pk + 1000, username="only-stale")
    return user


def test_full_clean_checks_the_target_exists_on_the_target_alias(any_router, john, queries):
    post = Post(title="x", author=john)
    with queries() as q:
        post.full_clean()
    assert q.counts() == {"default": 1, "blog_db": 0, "shop_db": 0}

    post.author_id = john.pk + 1000
    with pytest.raises(ValidationError) as excinfo:
        post.full_clean()
    twin = TwinPost(title="x", author_id=john.pk + 1000)
    with pytest.raises(ValidationError) as twin_excinfo:
        twin.full_clean()
    assert excinfo.value.message_dict == twin_excinfo.value.message_dict


def test_model_form_choices_and_validation_match_the_twin(any_router, john, queries):
    form = PostForm()
    with queries() as q:
        choices = list(form.fields["author"].choices)
    assert q.count("default") >= 1
    assert q.count("blog_db") == q.count("shop_db") == 0
    assert choices == list(TwinPostForm().fields["author"].choices)
    assert [label for _, label in choices] == [EMPTY, "john"]

    good = PostForm(data={"title": "t", "author": john.pk})
    assert good.is_valid(), good.errors
    post = good.save()
    assert post._state.db == "blog_db"
    assert Post.objects.get().author_id == john.pk

    data = {"title": "t", "author": john.pk + 1000}
    bad, twin_bad = PostForm(data=data), TwinPostForm(data=data)
    assert not bad.is_valid()
    assert not twin_bad.is_valid()
    assert bad.errors == twin_bad.errors


def test_model_choice_field_reads_the_target_alias(any_router, john, queries):
    field = PostForm().fields["editor"]
    with queries() as q:
        assert field.clean(str(john.pk)) == john
    assert q.counts()["default"] == 1 and q.counts()["blog_db"] == 0
    with pytest.raises(ValidationError):
        field.clean(str(john.pk + 1000))
