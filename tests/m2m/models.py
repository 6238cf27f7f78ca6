"""Sources of many-to-many relations across databases, in ``blog_db``.

``Article.tags`` reaches tags in ``shop_db``, ``Article.readers`` and
``Team.members`` (through ``Membership``) users in ``default``.
"""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey, CrossDatabaseManyToManyField


class ArticleManager(models.Manager):
    def get_by_natural_key(self, title):
        return self.get(title=title)


class Article(models.Model):
    title = models.CharField(max_length=100, unique=True)
    score = models.IntegerField(default=0)
    tags = CrossDatabaseManyToManyField("m2mtags.Tag", related_name="articles", blank=True)
    readers = CrossDatabaseManyToManyField(
        settings.AUTH_USER_MODEL, related_name="read_articles", blank=True
    )

    objects = ArticleManager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.title

    def natural_key(self):
        return (self.title,)


class Team(models.Model):
    name = models.CharField(max_length=50)
    members = CrossDatabaseManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, default="member")

    class Meta:
        ordering = ["id"]
