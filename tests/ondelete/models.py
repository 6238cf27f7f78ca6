"""One crossdb relation per ``on_delete`` rule; the app is routed to ``shop_db``.

With users in ``default`` and posts in ``blog_db``, a user's delete reaches
three aliases.  ``tests.ondelete.twins`` holds the same models with plain
ForeignKeys inside ``default``: the specification the deletes are compared to.
"""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey


def ghost_user_id():
    """Return the id of the user that rows are handed over to (SET_DEFAULT, SET(f))."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="ghost").pk


class Ref(models.Model):
    """A row that outlives its users: every rule that keeps the referencing row."""

    label = models.CharField(max_length=50)
    set_null = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="ondelete_set_null"
    )
    set_default = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_DEFAULT,
        null=True,
        default=ghost_user_id,
        related_name="ondelete_set_default",
    )
    set_value = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, models.SET(None), null=True, related_name="ondelete_set_value"
    )
    set_callable = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET(ghost_user_id),
        null=True,
        related_name="ondelete_set_callable",
    )
    do_nothing = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, models.DO_NOTHING, null=True, related_name="ondelete_do_nothing"
    )

    class Meta:
        ordering = ["id"]


class Guard(models.Model):
    """PROTECT: a user with a guard cannot be deleted."""

    label = models.CharField(max_length=50)
    user = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="ondelete_guards"
    )

    class Meta:
        ordering = ["id"]


class Album(models.Model):
    label = models.CharField(max_length=50)
    owner = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="ondelete_albums"
    )

    class Meta:
        ordering = ["id"]


class Track(models.Model):
    """Django's RESTRICT example (artist, album, song), across databases.

    Deleting an album or a post alone is refused; deleting the artist is
    allowed, because the track is then also deleted through ``artist``.
    """

    label = models.CharField(max_length=50)
    artist = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="ondelete_tracks"
    )
    album = models.ForeignKey(Album, models.RESTRICT, related_name="tracks")
    post = CrossDatabaseForeignKey(
        "blog.Post", models.RESTRICT, null=True, related_name="ondelete_tracks"
    )

    class Meta:
        ordering = ["id"]


class Note(models.Model):
    """CASCADE from users; tests connect signal receivers to it (no fast delete)."""

    label = models.CharField(max_length=50)
    user = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="ondelete_notes"
    )

    class Meta:
        ordering = ["id"]


class Quote(models.Model):
    """user (default) -> post (blog_db) -> quote (shop_db) -> reply (shop_db)."""

    label = models.CharField(max_length=50)
    post = CrossDatabaseForeignKey("blog.Post", models.CASCADE, related_name="ondelete_quotes")

    class Meta:
        ordering = ["id"]


class Reply(models.Model):
    label = models.CharField(max_length=50)
    quote = models.ForeignKey(Quote, models.CASCADE, related_name="replies")

    class Meta:
        ordering = ["id"]
