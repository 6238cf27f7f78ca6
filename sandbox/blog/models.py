"""The blog, in blog_db: posts and comments whose authors are users in default.

``Post.tags`` and ``Team.members`` are many-to-many relations into default:
their through tables live here, beside the posts and the teams.
"""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey, CrossDatabaseManyToManyField


class Post(models.Model):
    author = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blog_posts"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    # Tags are shared with the plain twin (twin.TwinPost.tags), as users are.
    tags = CrossDatabaseManyToManyField("twin.Tag", related_name="posts", blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.title


class Comment(models.Model):
    # Same database as the post: an ordinary ForeignKey.
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="blog_comments",
    )
    text = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.text[:40]


class Team(models.Model):
    """A team in blog_db whose members are users in default."""

    name = models.CharField(max_length=100, unique=True)
    members = CrossDatabaseManyToManyField(
        settings.AUTH_USER_MODEL, related_name="blog_teams", blank=True
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name
