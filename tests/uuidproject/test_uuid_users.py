"""A UUID-keyed AUTH_USER_MODEL across databases: order_by, values, select_related,
prefetch, lookups and deletes, differentially against the answer in Python."""

import pytest
from django.contrib.auth import get_user_model

from crossdb.testing import capture_queries
from tests.uuidproject.notes.models import Note

pytestmark = pytest.mark.django_db(databases="__all__")
Person = get_user_model()


@pytest.fixture
def people():
    names = ["cat", "ann", "bob"]
    users = {name: Person.objects.create(username=name) for name in names}
    for name in names:
        Note.objects.create(author=users[name], editor=users["ann"], text=name)
    return users


def test_order_by_and_values_across(people):
    assert [n.text for n in Note.objects.order_by("author__username")] == ["ann", "bob", "cat"]
    assert [n.text for n in Note.objects.order_by("-author__username")[:2]] == ["cat", "bob"]
    values = Note.objects.order_by("text").values_list("author__username", flat=True)
    assert list(values) == ["ann", "bob", "cat"]


def test_select_related_and_prefetch(people):
    with capture_queries() as queries:
        notes = list(Note.objects.select_related("author").order_by("text"))
        assert [n.author.username for n in notes] == ["ann", "bob", "cat"]
    assert queries.count("default") == 1
    assert [n.author.username for n in Note.objects.prefetch_related("author")] == [
        "cat",
        "ann",
        "bob",
    ]
    users = Person.objects.prefetch_related("notes").order_by("username")
    assert [[n.text for n in u.notes.all()] for u in users] == [["ann"], ["bob"], ["cat"]]


def test_lookups_across(people):
    assert Note.objects.get(author__username="bob").text == "bob"
    assert Note.objects.filter(author__in=[people["ann"], people["cat"].pk]).count() == 2
    assert [u.username for u in Person.objects.filter(notes__text="cat")] == ["cat"]
    assert people["ann"].notes.get().text == "ann"


def test_deletes_across(people):
    people["ann"].delete()
    assert sorted(Note.objects.values_list("text", flat=True)) == ["bob", "cat"]
    assert list(Note.objects.values_list("editor", flat=True)) == [None, None]
