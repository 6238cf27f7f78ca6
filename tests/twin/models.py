"""Twins of the crossdb models with plain ForeignKeys, all inside ``default``.

Differential tests run the same operation on both and compare the answers:
Django's single-database behaviour is the specification.
"""

from django.conf import settings
from django.db import models

from tests.blog.models import PostManager


class TwinPost(models.Model):
    title = models.CharField(max_length=100)
    published = models.BooleanField(default=True)
    score = models.IntegerField(default=0)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twin_posts"
    )
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="twin_edited_posts",
    )

    objects = PostManager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.title


class TwinComment(models.Model):
    post = models.ForeignKey(TwinPost, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="twin_comments",
    )
    text = models.CharField(max_length=100)

    class Meta:
        ordering = ["id"]


class TwinProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twin_profile"
    )
    nickname = models.CharField(max_length=50)


class TwinProduct(models.Model):
    name = models.CharField(max_length=50)


class TwinOrder(models.Model):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="twin_orders"
    )
    product = models.ForeignKey(TwinProduct, on_delete=models.CASCADE, related_name="orders")
    quantity = models.IntegerField(default=1)

    class Meta:
        ordering = ["id"]


class TwinMention(models.Model):
    post = models.ForeignKey(TwinPost, on_delete=models.CASCADE, related_name="mentions")
    text = models.CharField(max_length=50)

    class Meta:
        ordering = ["id"]


class TwinBadge(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        to_field="username",
        related_name="twin_badges",
    )
    label = models.CharField(max_length=50)

    class Meta:
        ordering = ["id"]
