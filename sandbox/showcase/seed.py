"""Bring the sandbox's databases to the demo state: migrated and seeded, idempotently."""

from io import StringIO

import factory.random
from blog.models import Post
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from shop.models import Order

from showcase.factories import (
    CommentFactory,
    OrderFactory,
    PostFactory,
    ProductFactory,
    UserFactory,
)

DEMO_LOGIN = ("admin", "crossdb-demo")
AUTHORS = ("ann", "bob", "cyd", "dan", "eve")
TOPICS = ("Django routers", "Two databases", "Cross-database joins")
PRODUCTS = (("Notebook", "4.50"), ("Fountain pen", "32.00"), ("Mug", "9.90"))


def migrate(stdout) -> str:
    """Migrate every alias; return which command did it."""
    if "migrate_all" in get_commands():
        call_command("migrate_all", interactive=False, verbosity=0, stdout=stdout)
        return "migrate_all"
    # An older crossdb without migrate_all: migrate each alias on its own.
    for alias in settings.DATABASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0, stdout=StringIO())
    return "migrate --database <alias> (migrate_all is not available)"


def seed() -> dict:
    """Create what is missing of the demo data; return counts of what was created."""
    # Fixed seed: the same texts on every machine and every run.
    factory.random.reseed_random("crossdb-demo")
    User = get_user_model()
    created = {"users": 0, "posts": 0, "comments": 0, "orders": 0}

    username, password = DEMO_LOGIN
    if not User.objects.filter(username=username).exists():
        User.objects.create_superuser(username, f"{username}@example.com", password)
        created["users"] += 1

    authors = []
    for name in AUTHORS:
        existed = User.objects.filter(username=name).exists()
        authors.append(UserFactory(username=name))
        created["users"] += not existed

    for index, author in enumerate(authors):
        if Post.objects.filter(author_id=author.pk).exists():
            continue
        for topic in TOPICS:
            post = PostFactory(author=author, title=f"{topic}, by {author.username}")
            created["posts"] += 1
            for offset in (1, 2):
                CommentFactory(post=post, author=authors[(index + offset) % len(authors)])
                created["comments"] += 1

    products = [ProductFactory(name=name, price=price) for name, price in PRODUCTS]
    bob = authors[1]
    if not Order.objects.filter(customer_id=bob.pk).exists():
        OrderFactory(customer=bob, product=products[2], quantity=2)
        created["orders"] += 1
    return created
