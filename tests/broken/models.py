"""Models that crossdb's system checks must reject, one problem each.

``tests/test_checks.py`` installs this app with ``DATABASE_ROUTING_RULES``
sending ``broken`` to ``blog_db`` and ``tests.broken.routers.BrokenRouter``
first in ``DATABASE_ROUTERS``.
"""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey, CrossDatabaseOneToOneField


def archive(collector, field, sub_objs, using):
    """A home-made on_delete rule: crossdb cannot know what it does across databases."""


class ConstrainedNote(models.Model):
    """crossdb.E001: a constraint to a table in another database."""

    author = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_constraint=True, related_name="+"
    )


class RefusedNote(models.Model):
    """crossdb.E002: ``BrokenRouter.allow_relation`` refuses it."""

    author = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )


class LostNote(models.Model):
    """crossdb.E003: ``BrokenRouter`` sends it to an alias that is not configured."""

    author = CrossDatabaseOneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )


class ArchivedNote(models.Model):
    """crossdb.E004: an on_delete rule crossdb cannot carry out."""

    author = CrossDatabaseForeignKey(settings.AUTH_USER_MODEL, on_delete=archive, related_name="+")


class LocalNote(models.Model):
    """crossdb.W001: blog.Post is on blog_db too."""

    post = CrossDatabaseForeignKey("blog.Post", on_delete=models.CASCADE, related_name="+")


class MissingTargetNote(models.Model):
    """Django's fields.E300 (and E307): crossdb adds nothing for an unresolved target."""

    target = CrossDatabaseForeignKey("broken.Missing", on_delete=models.CASCADE, related_name="+")
