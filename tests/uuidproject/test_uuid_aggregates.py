"""Aggregates and Exists across a UUID-keyed AUTH_USER_MODEL, against the answer in Python."""

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Max, OuterRef

from crossdb import transport
from tests.uuidproject.notes.models import Note

pytestmark = pytest.mark.django_db(databases="__all__")
Person = get_user_model()


@pytest.mark.parametrize("many", [False, True], ids=["parameter", "table"])
def test_counts_and_exists_by_uuid_key(many, monkeypatch):
    if many:
        monkeypatch.setattr(transport, "MYSQL_PAIRS_TABLE_ROWS", 1)
        monkeypatch.setattr(transport, "SQLITE_PAIRS_TABLE_ROWS", 1)
    users = {name: Person.objects.create(username=name) for name in ["ann", "bob", "cat", "dan"]}
    for author, editor, text in [("ann", "bob", "a1"), ("ann", None, "a2"), ("bob", "bob", "b1")]:
        Note.objects.create(
            author=users[author], editor=users[editor] if editor else None, text=text
        )
    got = Person.objects.annotate(
        n=Count("notes"), e=Count("edited_notes"), last=Max("notes__text")
    ).order_by("-n", "username")
    expected = []
    for name, user in users.items():
        texts = [note.text for note in Note.objects.filter(author_id=user.pk)]
        edited = Note.objects.filter(editor_id=user.pk).count()
        expected.append((name, len(texts), edited, max(texts) if texts else None))
    expected.sort(key=lambda row: (-row[1], row[0]))
    assert [(u.username, u.n, u.e, u.last) for u in got] == expected
    writers = Person.objects.filter(Exists(Note.objects.filter(author=OuterRef("pk"))))
    assert sorted(writers.values_list("username", flat=True)) == ["ann", "bob"]
    assert Person.objects.filter(~Exists(Note.objects.filter(editor=OuterRef("pk")))).count() == 3
