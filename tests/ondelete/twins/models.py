"""Twins of ``tests.ondelete`` with plain ForeignKeys, all inside ``default``."""

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models

from tests.ondelete.models import ghost_user_id
from tests.twin.models import TwinPost


class TwinRef(models.Model):
    label = models.CharField(max_length=50)
    set_null = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="twin_set_null"
    )
    set_default = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_DEFAULT,
        null=True,
        default=ghost_user_id,
        related_name="twin_set_default",
    )
    set_value = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET(None), null=True, related_name="twin_set_value"
    )
    set_callable = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET(ghost_user_id),
        null=True,
        related_name="twin_set_callable",
    )
    # No constraint: inside one database, DO_NOTHING with a constraint would
    # make the delete fail, which is not the behaviour being compared.
    do_nothing = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.DO_NOTHING,
        null=True,
        db_constraint=False,
        related_name="twin_do_nothing",
    )

    class Meta:
        ordering = ["id"]


class TwinGuard(models.Model):
    label = models.CharField(max_length=50)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="twin_guards")

    class Meta:
        ordering = ["id"]


class TwinAlbum(models.Model):
    label = models.CharField(max_length=50)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="twin_albums")

    class Meta:
        ordering = ["id"]


class TwinTrack(models.Model):
    label = models.CharField(max_length=50)
    artist = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="twin_tracks")
    album = models.ForeignKey(TwinAlbum, models.RESTRICT, related_name="tracks")
    post = models.ForeignKey(
        "twin.TwinPost", models.RESTRICT, null=True, related_name="ondelete_tracks"
    )

    class Meta:
        ordering = ["id"]


class TwinNote(models.Model):
    label = models.CharField(max_length=50)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="twin_notes")

    class Meta:
        ordering = ["id"]


class TwinQuote(models.Model):
    label = models.CharField(max_length=50)
    post = models.ForeignKey("twin.TwinPost", models.CASCADE, related_name="ondelete_quotes")

    class Meta:
        ordering = ["id"]


class TwinReply(models.Model):
    label = models.CharField(max_length=50)
    quote = models.ForeignKey(TwinQuote, models.CASCADE, related_name="replies")

    class Meta:
        ordering = ["id"]


class Employee(User):
    """A multi-table child of the user model: its parent row has crossdb dependents."""

    desk = models.CharField(max_length=50, default="")


class StaffPost(TwinPost):
    """A plain multi-table child reached by a user's cascade (no crossdb field at all)."""

    desk = models.CharField(max_length=50, default="")
