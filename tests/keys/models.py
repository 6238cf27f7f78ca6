"""String keys compared across engines: the keys app stays in ``default``.

``Key`` is referenced from blog_db (``blog.KeyRef``) and shop_db
(``shop.KeyNote``); ``RefToShopKey`` references ``shop.ShopKey``.  On the
mixed profile that puts each pair of engines on either end of a relation.
"""

from django.db import models

from crossdb import CrossDatabaseForeignKey

KEY_LENGTH = 20


class Key(models.Model):
    code = models.CharField(max_length=KEY_LENGTH, unique=True)

    class Meta:
        ordering = ["id"]


class RefToShopKey(models.Model):
    key = CrossDatabaseForeignKey(
        "shop.ShopKey", on_delete=models.CASCADE, to_field="code", related_name="default_refs"
    )
    maybe = CrossDatabaseForeignKey(
        "shop.ShopKey",
        on_delete=models.SET_NULL,
        to_field="code",
        null=True,
        related_name="default_maybe_refs",
    )

    class Meta:
        ordering = ["id"]


class Token(models.Model):
    """A UUID primary key: referenced from shop_db by ``shop.TokenUse``."""

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=20)

    class Meta:
        ordering = ["name"]
