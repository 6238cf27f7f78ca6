"""The shop, in shop_db: products and the orders users in default place."""

from django.conf import settings
from django.db import models

from crossdb import CrossDatabaseForeignKey


class Product(models.Model):
    name = models.CharField(max_length=200, unique=True)
    price = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name


class Order(models.Model):
    # PROTECT: a customer with orders cannot be deleted, whichever database
    # the delete starts from.
    customer = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField(default=1)
    placed = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.quantity} × {self.product_id} for {self.customer_id}"


class Subscription(models.Model):
    """A newsletter subscription keyed by the user's *username*, as legacy schemas are.

    ``to_field="username"``: the shop's column holds the username (up to 150
    characters), not the id, so every path across carries string keys, compared
    exactly as PostgreSQL or SQLite compare them even when shop_db is MariaDB
    (docs/querying.rst, "Key comparison across engines").  The benchmark's
    ``--keys`` rows run on it.
    """

    subscriber = CrossDatabaseForeignKey(
        settings.AUTH_USER_MODEL,
        to_field="username",
        on_delete=models.CASCADE,
        related_name="shop_subscriptions",
    )
    topic = models.CharField(max_length=50)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.subscriber_id}: {self.topic}"
