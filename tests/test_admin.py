"""The admin with crossdb relations: changelist, filters, change form, raw id, autocomplete.

``tests/admin_site.py`` registers Post and its plain-ForeignKey twin with the
same options; stale copies of ``auth_user`` hold ``stale-<name>`` rows under
the same ids, so a page that reads the wrong alias shows them.
"""

import json

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

from crossdb import routing
from crossdb.django_versions import blank_choice_label
from tests.admin_site import CrossDatabaseMultiDBPostAdmin, MultiDBPostAdmin, site
from tests.blog.models import Comment, Post
from tests.shop.models import Badge
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")

# The empty choice of a select: "---------" up to Django 6.0, "- Select an option -" from 6.1.
EMPTY = blank_choice_label()

PREFIX = "/tests-admin"


@pytest.fixture
def users(client, stale_users):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    ann = User.objects.create(username="ann")
    bob = User.objects.create(username="bob")
    stale_users()
    client.force_login(admin)
    return admin, ann, bob


def both(**fields):
    """Create the same post on Post (blog_db) and TwinPost (default)."""
    return Post.objects.create(**fields), TwinPost.objects.create(**fields)


def page(client, url, status=200):
    response = client.get(PREFIX + url)
    assert response.status_code == status, response.content[:2000]
    return response


def test_changelist_shows_authors_from_their_database_as_the_twin_does(client, users):
    _admin, ann, bob = users
    both(title="one", author=ann, editor=bob)
    both(title="two", author=bob)
    crossdb = page(client, "/blog/post/")
    twin = page(client, "/twin/twinpost/")
    assert crossdb.context["cl"].result_count == twin.context["cl"].result_count == 2
    rows = crossdb.content.decode()
    for text in (">one<", ">two<", ">ann<", ">bob<"):
        assert text in rows
    assert "stale-" not in rows
    # The same table cells as the twin's changelist.
    assert _cells(crossdb) == _cells(twin)


def _cells(response):
    return [
        [str(getattr(obj, name)) for name in ("title", "author", "editor")]
        for obj in response.context["cl"].result_list
    ]


def test_changelist_reads_authors_in_one_query_however_many_rows(client, users, queries):
    counts = []
    for n in (2, 6):
        Post.objects.all().delete()
        authors = User.objects.bulk_create(User(username=f"a{n}-{i}") for i in range(n))
        for author in User.objects.filter(username__in=[a.username for a in authors]):
            Post.objects.create(title=f"p{author.pk}", author=author)
        with queries() as q:
            page(client, "/blog/post/")
        counts.append(q.counts())
    assert counts[0] == counts[1]
    post_alias = routing.db_for_read(Post)
    if post_alias != routing.db_for_read(User):
        assert not any("auth_user" in sql for sql in q.sql(post_alias))


def test_list_filters_choices_and_filtering_match_the_twin(client, users):
    _admin, ann, bob = users
    both(title="one", author=ann, editor=bob)
    both(title="two", author=bob)
    for path in ("/blog/post/", "/twin/twinpost/"):
        author_filter, editor_filter = page(client, path).context["cl"].filter_specs
        assert [label for _pk, label in author_filter.lookup_choices] == ["admin", "ann", "bob"]
        # RelatedOnlyFieldListFilter: only users that edited a post.
        assert editor_filter.lookup_choices == [(bob.pk, "bob")]
        filtered = page(client, f"{path}?author__id__exact={ann.pk}").context["cl"]
        assert [post.title for post in filtered.result_list] == ["one"]
        empty = page(client, f"{path}?editor__isnull=True").context["cl"]
        assert [post.title for post in empty.result_list] == ["two"]


def test_change_form_choices_come_from_the_target_alias(client, users, queries):
    _admin, ann, bob = users
    post = Post.objects.create(title="one", author=ann)
    with queries() as q:
        response = page(client, "/blog/comment/add/")
    form = response.context["adminform"].form
    assert [label for _value, label in form.fields["author"].choices] == [
        EMPTY,
        "admin",
        "ann",
        "bob",
    ]
    assert [label for _value, label in form.fields["post"].choices] == [EMPTY, "one"]
    html = response.content.decode()
    assert f'<option value="{bob.pk}">bob</option>' in html and "stale-" not in html
    assert f'<option value="{post.pk}">one</option>' in html
    post_alias = routing.db_for_read(Post)
    if post_alias != routing.db_for_read(User):
        assert not any("auth_user" in sql for sql in q.sql(post_alias))


def test_saving_through_the_admin_writes_the_source_and_refuses_a_missing_target(client, users):
    _admin, ann, bob = users
    post = Post.objects.create(title="one", author=ann)
    response = client.post(
        f"{PREFIX}/blog/comment/add/", {"text": "hi", "post": post.pk, "author": bob.pk}
    )
    assert response.status_code == 302
    assert Comment.objects.get().author_id == bob.pk
    User.objects.filter(pk=bob.pk).delete()  # bob's stale copies stay
    response = client.post(
        f"{PREFIX}/blog/comment/add/", {"text": "again", "post": post.pk, "author": bob.pk}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["author"])


def test_raw_id_widget_labels_the_value_from_the_target_alias(client, users):
    _admin, ann, bob = users
    post = Post.objects.create(title="one", author=ann, editor=bob)
    html = page(client, f"/blog/post/{post.pk}/change/").content.decode()
    assert f'<a href="{PREFIX}/auth/user/{bob.pk}/change/">bob</a>' in html
    assert "stale-" not in html


def test_raw_id_widget_with_to_field(client, users):
    _admin, ann, _bob = users
    badge = Badge.objects.create(user=ann, label="gold")
    html = page(client, f"/shop/badge/{badge.pk}/change/").content.decode()
    assert 'value="ann"' in html
    assert f'<a href="{PREFIX}/auth/user/{ann.pk}/change/">ann</a>' in html
    # The lookup popup the widget opens: the users' changelist, by username.
    popup = page(client, "/auth/user/?_to_field=username&_popup=1")
    assert {user.username for user in popup.context["cl"].result_list} == {"admin", "ann", "bob"}


def test_autocomplete_widget_and_view_read_the_target_alias(client, users, queries):
    _admin, ann, _bob = users
    post = Post.objects.create(title="one", author=ann)
    html = page(client, f"/blog/post/{post.pk}/change/").content.decode()
    assert f'<option value="{ann.pk}" selected>ann</option>' in html
    url = "/autocomplete/?app_label=blog&model_name=post&field_name=author&term=b"
    with queries() as q:
        results = json.loads(page(client, url).content)["results"]
    assert results == [{"id": str(users[2].pk), "text": "bob"}]
    assert q.count(routing.db_for_read(Post)) == 0 or routing.db_for_read(Post) == "default"
    twin = "/autocomplete/?app_label=twin&model_name=twinpost&field_name=author&term=b"
    assert json.loads(page(client, twin).content)["results"] == results


# ModelAdmins pinned to one alias (Django's multi-database guide) -------------------


def _choices(admin_class, admin_user):
    request = RequestFactory().get("/")
    request.user = admin_user
    model_admin = admin_class(Post, site)
    field = model_admin.formfield_for_dbfield(Post._meta.get_field("editor"), request)
    return field.queryset.db, [label for _value, label in field.choices]


def test_a_pinned_model_admin_reads_crossdb_choices_on_the_source_alias(users, request):
    """Why CrossDatabaseAdminMixin exists: Django's pattern reads blog_db's stale users."""
    admin_user = users[0]
    detector = (
        request.getfixturevalue("_crossdb_join_detector")
        if ("_crossdb_join_detector" in request.fixturenames)
        else None
    )
    if detector is not None:
        allow, detector.allow = detector.allow, lambda violation: True
    try:
        alias, labels = _choices(MultiDBPostAdmin, admin_user)
    finally:
        if detector is not None:
            detector.allow = allow
    assert alias == "blog_db"
    assert labels == [EMPTY, "stale-admin", "stale-ann", "stale-bob"]


def test_cross_database_admin_mixin_reads_them_on_the_target_alias(users, queries):
    with queries() as q:
        alias, labels = _choices(CrossDatabaseMultiDBPostAdmin, users[0])
    assert alias == routing.db_for_read(User)
    assert labels == [EMPTY, "admin", "ann", "bob"]
    assert q.count("blog_db") == 0
