"""The same rows in the crossdb models and their plain-ForeignKey twins, for differential tests."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import User
from django.db.models import Q

from tests.blog.models import Comment, Post
from tests.shop.models import Badge, Mention, Order, Product, Profile
from tests.twin.models import (
    TwinBadge,
    TwinComment,
    TwinMention,
    TwinOrder,
    TwinPost,
    TwinProduct,
    TwinProfile,
)

TWIN_MODEL = {
    User: User,
    Post: TwinPost,
    Comment: TwinComment,
    Profile: TwinProfile,
    Product: TwinProduct,
    Order: TwinOrder,
    Mention: TwinMention,
    Badge: TwinBadge,
}
# Reverse names that differ between a crossdb model and its twin.
TWIN_NAME = {
    (User, "blog_posts"): "twin_posts",
    (User, "edited_posts"): "twin_edited_posts",
    (User, "blog_comments"): "twin_comments",
    (User, "shop_profile"): "twin_profile",
    (User, "orders"): "twin_orders",
    (User, "badges"): "twin_badges",
}
# What identifies a row on both sides (ids differ between databases).
NATURAL = {
    User: "username",
    Post: "title",
    Comment: "text",
    Profile: "nickname",
    Product: "name",
    Order: "quantity",
    Mention: "text",
    Badge: "label",
}


def twin_lookup(model, lookup: str) -> str:
    """Return ``lookup`` (from ``model``) spelled for the twin model."""
    parts = lookup.split("__")
    for position, name in enumerate(parts):
        parts[position] = TWIN_NAME.get((model, name), name)
        try:
            field = model._meta.get_field(name)
        except Exception:
            break
        if not field.is_relation:
            break
        model = field.related_model
    return "__".join(parts)


def twin_q(model, node):
    """Return the Q tree ``node`` spelled for the twin of ``model``."""
    if isinstance(node, tuple):
        return (twin_lookup(model, node[0]), node[1])
    return Q.create(
        [twin_q(model, child) for child in node.children],
        connector=node.connector,
        negated=node.negated,
    )


def natural(rows):
    """Return the natural keys of model instances (users by username)."""
    out = []
    for row in rows:
        model = type(row)
        source = next(m for m, twin in TWIN_MODEL.items() if twin is model or m is model)
        out.append(getattr(row, NATURAL[source]))
    return out


@dataclass
class World:
    users: dict
    posts: dict
    twin_posts: dict


def build_world() -> World:
    """Create the same rows on both sides; return them by name."""
    login = datetime(2024, 1, 1, tzinfo=UTC)
    users = {
        "ann": User.objects.create(
            username="ann", email="ann@x.org", first_name="Ann", is_staff=True, last_login=login
        ),
        "bob": User.objects.create(username="bob", email="bob@y.org"),
        "cat": User.objects.create(username="cat", email="cat@x.org", last_login=login),
        "dan": User.objects.create(username="dan", email="dan@y.org", first_name="Dan"),
        "eve": User.objects.create(username="eve", email="eve@x.org"),
    }
    post_rows = [
        ("alpha", True, 3, "ann", None),
        ("beta", False, 5, "ann", "bob"),
        ("gamma", True, 5, "bob", "ann"),
        ("delta", True, 1, "cat", None),
        ("epsilon", False, 0, "bob", "bob"),
        ("alpha2", True, 7, "cat", "dan"),
    ]
    posts, twin_posts = {}, {}
    for title, published, score, author, editor in post_rows:
        values = dict(
            title=title,
            published=published,
            score=score,
            author=users[author],
            editor=users[editor] if editor else None,
        )
        posts[title] = Post.objects.create(**values)
        twin_posts[title] = TwinPost.objects.create(**values)
    for post, author, text in [
        ("alpha", "bob", "nice"),
        ("alpha", None, "anon"),
        ("gamma", "ann", "thanks"),
        ("delta", "cat", "self"),
        ("alpha2", "dan", "nice2"),
    ]:
        who = users[author] if author else None
        Comment.objects.create(post=posts[post], author=who, text=text)
        TwinComment.objects.create(post=twin_posts[post], author=who, text=text)
    for user, nickname in [("ann", "annie"), ("bob", "bobby")]:
        Profile.objects.create(user=users[user], nickname=nickname)
        TwinProfile.objects.create(user=users[user], nickname=nickname)
    products = {name: Product.objects.create(name=name) for name in ("pen", "ink")}
    twin_products = {name: TwinProduct.objects.create(name=name) for name in ("pen", "ink")}
    for user, product, quantity in [("ann", "pen", 1), ("ann", "ink", 3), ("cat", "pen", 2)]:
        Order.objects.create(customer=users[user], product=products[product], quantity=quantity)
        TwinOrder.objects.create(
            customer=users[user], product=twin_products[product], quantity=quantity
        )
    for post, text in [("alpha", "m1"), ("gamma", "m3"), ("gamma", "m3b")]:
        Mention.objects.create(post=posts[post], text=text)
        TwinMention.objects.create(post=twin_posts[post], text=text)
    for user, label in [("ann", "gold"), ("bob", "silver")]:
        Badge.objects.create(user=users[user], label=label)
        TwinBadge.objects.create(user=users[user], label=label)
    return World(users, posts, twin_posts)
