"""100,000 dependents on another alias: deleted in bounded batches on every backend."""

import math

import pytest
from django.contrib.auth.models import User

from crossdb import deletion
from crossdb.testing import capture_queries
from tests.blog.models import Post
from tests.ondelete.models import Quote, Reply, Track
from tests.shop.models import Mention

N = 100_000


@pytest.mark.django_db(databases="__all__")
def test_cascade_to_100k_rows_on_another_alias(monkeypatch):
    authors = [User.objects.create(username=f"bulk{i}") for i in range(3)]
    keeper = User.objects.create(username="keeper")
    Post.objects.bulk_create(
        (Post(title="bulk", author_id=authors[i % 3].pk) for i in range(N)), batch_size=5000
    )
    kept = Post.objects.create(title="kept", author=keeper)
    first, last = (
        Post.objects.filter(title="bulk").order_by("pk").values_list("pk", flat=True)[:: N - 1]
    )
    Mention.objects.bulk_create([Mention(post_id=first, text="m"), Mention(post_id=last, text="m")])
    quote = Quote.objects.create(post_id=last, label="q")
    Reply.objects.create(quote=quote, label="r")
    Mention.objects.create(post=kept, text="kept")

    calls = []
    real = deletion.collector.crossdb_related_objects

    def spy(related_model, related_fields, objs, alias):
        calls.append((related_model, [field.name for field in related_fields], len(objs)))
        return real(related_model, related_fields, objs, alias)

    monkeypatch.setattr(deletion.collector, "crossdb_related_objects", spy)
    with capture_queries("shop_db") as queries:
        total, per_model = User.objects.filter(username__startswith="bulk").delete()

    assert per_model == {
        "auth.User": 3,
        "blog.Post": N,
        "shop.Mention": 2,
        "ondelete.Quote": 1,
        "ondelete.Reply": 1,
    }
    assert total == N + 7
    assert list(Post.objects.values_list("title", flat=True)) == ["kept"]
    assert list(Mention.objects.values_list("text", flat=True)) == ["kept"]

    # Posts' dependents on shop_db were looked up in batches of at most
    # ID_BATCH_SIZE ids, each batch one statement.
    batches = math.ceil(N / deletion.ID_BATCH_SIZE)
    for model in (Mention, Quote, Track):
        sizes = [size for called, names, size in calls if called is model and names == ["post"]]
        assert len(sizes) == batches, model
        assert max(sizes) <= deletion.ID_BATCH_SIZE
        assert sum(sizes) == N
    # One statement per batch and relation (a SELECT, or the DELETE of a fast delete).
    assert queries.count("shop_db") <= 3 * batches + 20
    assert max(len(sql) for sql in queries.sql("shop_db")) < 20 * deletion.ID_BATCH_SIZE
