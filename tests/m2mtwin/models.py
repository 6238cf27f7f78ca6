"""Twins of ``tests.m2m`` and ``tests.m2mtags`` with plain ManyToManyFields, inside ``default``.

Differential tests run the same operation on both and compare the answers.
"""

from django.conf import settings
from django.db import models

from tests.m2mtags.models import TagManager


class TwinTag(models.Model):
    name = models.CharField(max_length=50, unique=True)
    color = models.CharField(max_length=20, default="")

    objects = TagManager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def natural_key(self):
        return (self.name,)


class TwinArticle(models.Model):
    title = models.CharField(max_length=100, unique=True)
    score = models.IntegerField(default=0)
    tags = models.ManyToManyField(TwinTag, related_name="articles", blank=True)
    readers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="twin_read_articles", blank=True
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.title


class TwinTeam(models.Model):
    name = models.CharField(max_length=50)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TwinMembership", related_name="twin_teams"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name


class TwinMembership(models.Model):
    team = models.ForeignKey(TwinTeam, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twin_memberships"
    )
    role = models.CharField(max_length=20, default="member")

    class Meta:
        ordering = ["id"]
