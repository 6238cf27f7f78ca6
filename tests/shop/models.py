"""The shop app: routed to ``shop_db``; relations into ``default`` and ``blog_db``."""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey, CrossDatabaseOneToOneField


class Profile(models.Model):
    user = CrossDatabaseOneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shop_profile"
    )
    nickname = models.CharField(max_length=50)

    def __str__(self):
        return self.nickname


class Product(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self):
        return self.name


class Order(models.Model):
    customer = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="orders")
    quantity = models.IntegerField(default=1)

    class Meta:
        ordering = ["id"]


class Mention(models.Model):
    """A blog post mentioned in the shop: user -> post -> mention spans three aliases."""

    post = CrossDatabaseForeignKey("blog.Post", on_delete=models.CASCADE, related_name="mentions")
    text = models.CharField(max_length=50)

    class Meta:
        ordering = ["id"]


class Badge(models.Model):
    """A relation to a non-primary key (``to_field``)."""

    user = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        to_field="username",
        related_name="badges",
    )
    label = models.CharField(max_length=50)

    class Meta:
        ordering = ["id"]


class ShopKey(models.Model):
    """A string key in shop_db (SQLite on mixed: holds NUL and over-length strings)."""

    code = models.CharField(max_length=20, unique=True)

    class Meta:
        ordering = ["id"]


class KeyNote(models.Model):
    """References to ``keys.Key`` held in shop_db."""

    key = CrossDatabaseForeignKey(
        "keys.Key", on_delete=models.CASCADE, to_field="code", related_name="shop_notes"
    )
    maybe = CrossDatabaseForeignKey(
        "keys.Key",
        on_delete=models.SET_NULL,
        to_field="code",
        null=True,
        related_name="shop_maybe_notes",
    )

    class Meta:
        ordering = ["id"]


class TokenUse(models.Model):
    """A reference to a UUID key held in shop_db (SQLite binds no UUID by itself)."""

    token = CrossDatabaseForeignKey("keys.Token", on_delete=models.CASCADE, related_name="uses")
    note = models.CharField(max_length=20, default="")

    class Meta:
        ordering = ["id"]
