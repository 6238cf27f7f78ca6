"""The blog app: routed to ``blog_db``; its authors are users in ``default``."""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey


class PostQuerySet(models.QuerySet):
    def published(self):
        return self.filter(published=True)


class PostManager(models.Manager.from_queryset(PostQuerySet)):
    def titled(self, title):
        return self.filter(title=title)


class Post(models.Model):
    title = models.CharField(max_length=100)
    published = models.BooleanField(default=True)
    score = models.IntegerField(default=0)
    author = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blog_posts"
    )
    editor = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="edited_posts",
    )

    objects = PostManager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.title


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="blog_comments",
    )
    text = models.CharField(max_length=100)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.text


class KeyRef(models.Model):
    """References by a string key, in blog_db (MariaDB's ``_ci`` collation on mixed)."""

    key = CrossDatabaseForeignKey(
        "keys.Key", on_delete=models.CASCADE, to_field="code", related_name="blog_refs"
    )
    maybe = CrossDatabaseForeignKey(
        "keys.Key",
        on_delete=models.SET_NULL,
        to_field="code",
        null=True,
        related_name="blog_maybe_refs",
    )
    shop_key = CrossDatabaseForeignKey(
        "shop.ShopKey",
        on_delete=models.CASCADE,
        to_field="code",
        null=True,
        related_name="blog_refs",
    )

    class Meta:
        ordering = ["id"]
