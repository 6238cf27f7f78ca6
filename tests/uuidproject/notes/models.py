"""Notes in blog_db, written by users in default."""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey


class Note(models.Model):
    author = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notes"
    )
    editor = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="edited_notes",
    )
    text = models.CharField(max_length=20)

    class Meta:
        ordering = ["id"]
