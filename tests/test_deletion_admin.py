"""The admin's delete view, its confirmation page and "delete selected", across databases."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from crossdb.testing import capture_queries
from tests.ondelete.worlds import CROSS, build

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    return client


def _delete_url(user):
    return reverse("admin:auth_user_delete", args=[user.pk])


def test_confirmation_page_lists_rows_on_every_alias(admin_client, stale_users):
    users = build(CROSS)
    stale_users()
    page = admin_client.get(_delete_url(users["ann"])).content.decode()
    for shown in (
        "Post: a1",
        "Post: a2",
        "Comment: bob on a1",
        "Comment: ann on b1",
        "Mention: Mention object",
        "Profile: profile ann",
        "Track object",
        "Reply object",
    ):
        assert shown in page, shown
    assert "stale-" not in page
    # The summary counts each model's rows, wherever they live.
    assert "<li>Posts: 2</li>" in page
    assert "<li>Quotes: 1</li>" in page


def test_confirmation_page_reads_parents_without_one_query_per_row(admin_client):
    users = build(CROSS)
    CROSS.Post.objects.bulk_create(
        [CROSS.Post(title=f"extra {i}", author=users["ann"]) for i in range(40)]
    )
    with capture_queries() as queries:
        response = admin_client.get(_delete_url(users["ann"]))
    assert response.status_code == 200
    assert "extra 39" in response.content.decode()
    # Each post's author is the user on the page: no query per post on default,
    # and no deferred key re-read per post on the posts' own alias.
    assert queries.count("default") < 40, queries.counts()
    post_alias = CROSS.Post.objects.db
    assert queries.count(post_alias) < 40, queries.counts()


def test_confirmation_page_shows_protected_rows(admin_client):
    users = build(CROSS, guards=True)
    page = admin_client.get(_delete_url(users["bob"])).content.decode()
    assert "would require deleting the following protected related objects" in page
    assert "Guard object" in page


def test_delete_view_deletes_on_every_alias(admin_client):
    users = build(CROSS)
    ann_pk = users["ann"].pk
    response = admin_client.post(_delete_url(users["ann"]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=ann_pk).exists()
    assert list(CROSS.Post.objects.values_list("title", flat=True)) == ["b1"]
    assert list(CROSS.Quote.objects.values_list("label", flat=True)) == ["quote b1"]
    assert not CROSS.Reply.objects.exists()


def test_delete_selected_action(admin_client):
    users = build(CROSS)
    selected = [users["ann"].pk, users["cat"].pk]
    changelist = reverse("admin:auth_user_changelist")
    data = {"action": "delete_selected", "_selected_action": selected}
    page = admin_client.post(changelist, data).content.decode()
    assert "Post: a1" in page
    assert "Note: " in page or "Note object" in page
    response = admin_client.post(changelist, {**data, "post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk__in=selected).exists()
    assert list(CROSS.Note.objects.all()) == []
    assert list(CROSS.Post.objects.values_list("title", flat=True)) == ["b1"]
