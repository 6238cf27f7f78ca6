"""Forms: ``ModelForm`` / ``ModelChoiceField`` choices and validation on the target's alias.

Django's ``ForeignKey.formfield()`` already reads the target through the
routers; these tests pin it, differentially against the plain-ForeignKey twin,
with stale copies of ``auth_user`` in the wrong databases.
"""

import pytest
from django import forms
from django.contrib.auth.models import User
from django.utils.text import capfirst

from crossdb import routing
from crossdb.django_versions import blank_choice_label
from tests.blog.models import Post
from tests.forms import BadgeForm, PostForm, ProfileForm, TwinPostForm, TwinProfileForm
from tests.shop.models import Profile
from tests.twin.models import TwinProfile

pytestmark = pytest.mark.django_db(databases="__all__")

# The empty choice of a select: "---------" up to Django 6.0, "- Select an option -" from 6.1.
EMPTY = blank_choice_label()


@pytest.fixture
def users(stale_users):
    made = [User.objects.create(username=name) for name in ("ann", "bob")]
    stale_users()
    return made


def labels(field):
    return [label for _value, label in field.choices]


def test_choices_come_from_the_target_alias(users, queries):
    with queries() as q:
        crossdb_choices = labels(PostForm().fields["author"])
    assert crossdb_choices == [EMPTY, "ann", "bob"]
    assert labels(TwinPostForm().fields["author"]) == crossdb_choices
    assert q.count(routing.db_for_read(User)) == 1
    assert q.count(routing.db_for_read(Post)) == 0 or routing.db_for_read(Post) == "default"


def test_a_missing_id_is_a_form_error_as_with_a_foreign_key(users, queries):
    ann, bob = users
    # bob leaves default but stays in the stale copies of blog_db and shop_db.
    User.objects.filter(pk=bob.pk).delete()
    for author in (bob.pk, bob.pk + 1000, "not a number"):
        data = {"title": "t", "author": author}
        crossdb, twin = PostForm(data), TwinPostForm(data)
        with queries() as q:
            assert not crossdb.is_valid()
        assert not twin.is_valid()
        assert crossdb.errors == twin.errors
        assert "Select a valid choice" in crossdb.errors["author"][0]
        assert all(
            count == 0 for alias, count in q.counts().items() if alias != routing.db_for_read(User)
        )


def test_a_valid_form_validates_on_the_target_and_saves_on_the_source(users, queries):
    ann, bob = users
    data = {"title": "hello", "author": ann.pk, "editor": bob.pk}
    with queries() as q:
        form = PostForm(data)
        assert form.is_valid(), form.errors
        post = form.save()
    with queries() as twin_q:
        twin = TwinPostForm(data)
        assert twin.is_valid()
        twin.save()
    user_alias, post_alias = routing.db_for_read(User), routing.db_for_write(Post)
    assert (post.author, post.editor) == (ann, bob)
    assert Post.objects.using(post_alias).get(pk=post.pk).author_id == ann.pk
    # The twin's reads, all of them on the users' alias.
    twin_reads = [sql for sql in twin_q.sql("default") if sql.startswith("SELECT")]
    assert q.sql(user_alias) == [sql.replace("twin_twinpost", "blog_post") for sql in twin_reads]
    assert not any("auth_user" in sql for sql in q.sql(post_alias)) or post_alias == user_alias
    assert [sql.split()[0] for sql in q.sql(post_alias)][-1] == "INSERT"


def test_an_empty_nullable_relation_is_none(users):
    form = PostForm({"title": "t", "author": users[0].pk, "editor": ""})
    assert form.is_valid() and form.cleaned_data["editor"] is None


def test_to_field_choices_and_validation_use_the_target_field(users):
    form = BadgeForm()
    assert [value for value, _label in form.fields["user"].choices][1:] == ["ann", "bob"]
    assert BadgeForm({"user": "ann", "label": "gold"}).is_valid()
    bad = BadgeForm({"user": "stale-ann", "label": "gold"})  # only in the stale copies
    assert not bad.is_valid() and "Select a valid choice" in bad.errors["user"][0]


def test_one_to_one_uniqueness_is_checked_on_the_source_alias(users):
    ann, bob = users
    Profile.objects.create(user=ann, nickname="a")
    TwinProfile.objects.create(user=ann, nickname="a")
    for form_class in (ProfileForm, TwinProfileForm):
        taken = form_class({"user": ann.pk, "nickname": "again"})
        assert not taken.is_valid()
        name = capfirst(form_class.Meta.model._meta.verbose_name)
        assert taken.errors["user"] == [f"{name} with this User already exists."]
        assert form_class({"user": bob.pk, "nickname": "b"}).is_valid()


def test_model_choice_field_on_its_own(users):
    field = forms.ModelChoiceField(queryset=User.objects.all())
    assert field.clean(users[1].pk) == users[1]
    with pytest.raises(forms.ValidationError):
        field.clean(users[1].pk + 1000)


def test_limit_choices_to_applies_on_the_target(users):
    ann, bob = users
    User.objects.filter(pk=bob.pk).update(is_staff=True)

    class StaffPostForm(PostForm):
        author = forms.ModelChoiceField(queryset=User.objects.filter(is_staff=True))

    assert labels(StaffPostForm().fields["author"]) == [EMPTY, "bob"]
    assert not StaffPostForm({"title": "t", "author": ann.pk}).is_valid()
