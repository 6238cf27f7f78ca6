"""Plain-ForeignKey twins of the blog, inside default: the benchmark's baseline.

The same relations as ``blog``, but both ends in one database, so Django
answers every query with a JOIN.  ``manage.py bench`` runs each operation on
the blog and on its twin with the same rows.

``Tag`` is not a twin: like ``auth.User`` it is the one target both sides
point at, from blog_db (``blog.Post.tags``, across databases) and from
default (``TwinPost.tags``, a plain ManyToManyField).
"""

from django.conf import settings
from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TwinPost(models.Model):
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twin_posts"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    tags = models.ManyToManyField(Tag, related_name="twin_posts", blank=True)

    class Meta:
        ordering = ["id"]


class TwinComment(models.Model):
    post = models.ForeignKey(TwinPost, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="twin_comments",
    )
    text = models.TextField()

    class Meta:
        ordering = ["id"]
