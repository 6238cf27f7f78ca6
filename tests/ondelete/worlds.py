"""Two worlds of the same rows for differential delete tests.

``CROSS`` holds the crossdb models (three aliases), ``TWIN`` their plain-FK
twins (all in ``default``).  ``build()`` writes the same rows into one world
for users whose names carry the world's prefix; ``snapshot()`` describes what
a world holds in terms both worlds share (labels, usernames without prefix),
so the two can be compared after the same operation.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

from django.contrib.auth.models import User
from django.db import router
from django.db.models import signals

from tests.blog.models import Comment, Post
from tests.ondelete import models as od
from tests.ondelete.twins import models as odt
from tests.shop.models import Badge, Mention, Profile
from tests.twin.models import TwinBadge, TwinComment, TwinMention, TwinPost, TwinProfile

CROSS = SimpleNamespace(
    prefix="",
    Post=Post,
    Comment=Comment,
    Mention=Mention,
    Badge=Badge,
    Profile=Profile,
    Ref=od.Ref,
    Guard=od.Guard,
    Album=od.Album,
    Track=od.Track,
    Note=od.Note,
    Quote=od.Quote,
    Reply=od.Reply,
    edited="edited_posts",
)
TWIN = SimpleNamespace(
    prefix="twin-",
    Post=TwinPost,
    Comment=TwinComment,
    Mention=TwinMention,
    Badge=TwinBadge,
    Profile=TwinProfile,
    Ref=odt.TwinRef,
    Guard=odt.TwinGuard,
    Album=odt.TwinAlbum,
    Track=odt.TwinTrack,
    Note=odt.TwinNote,
    Quote=odt.TwinQuote,
    Reply=odt.TwinReply,
    edited="twin_edited_posts",
)
MODEL_NAMES = (
    "Post",
    "Comment",
    "Mention",
    "Badge",
    "Profile",
    "Ref",
    "Guard",
    "Album",
    "Track",
    "Note",
    "Quote",
    "Reply",
)


def name_of(model) -> str:
    """Return the name a model and its twin share (``TwinPost`` -> ``Post``)."""
    name = model._meta.object_name
    return name.removeprefix("Twin")


def users(world) -> dict[str, User]:
    """Return ``{name: user}`` of ``world``'s users, names without prefix."""
    found = User.objects.filter(username__startswith=world.prefix or "").order_by("pk")
    return {
        user.username.removeprefix(world.prefix): user
        for user in found
        if user.username != "ghost" and (world.prefix or not user.username.startswith(TWIN.prefix))
    }


def ghost() -> User:
    return User.objects.get_or_create(username="ghost")[0]


def build(world, guards=False) -> dict[str, User]:
    """Write the scenario's rows into ``world``; return its users by name."""
    ghost()
    ann, bob, cat = (
        User.objects.create(username=f"{world.prefix}{name}") for name in ("ann", "bob", "cat")
    )
    a1 = world.Post.objects.create(title="a1", author=ann, editor=bob)
    world.Post.objects.create(title="a2", author=ann)
    b1 = world.Post.objects.create(title="b1", author=bob, editor=ann)
    world.Comment.objects.create(post=a1, author=bob, text="bob on a1")
    world.Comment.objects.create(post=b1, author=ann, text="ann on b1")
    world.Comment.objects.create(post=b1, author=bob, text="bob on b1")
    world.Mention.objects.create(post=a1, text="mention a1")
    world.Mention.objects.create(post=b1, text="mention b1")
    world.Badge.objects.create(user=ann, label="badge ann")
    world.Badge.objects.create(user=bob, label="badge bob")
    world.Profile.objects.create(user=ann, nickname="profile ann")
    for label, user in (("ref ann", ann), ("ref bob", bob)):
        world.Ref.objects.create(
            label=label,
            set_null=user,
            set_default=user,
            set_value=user,
            set_callable=user,
            do_nothing=user,
        )
    album = world.Album.objects.create(label="album ann", owner=ann)
    world.Track.objects.create(label="track ann", artist=ann, album=album, post=a1)
    world.Album.objects.create(label="album bob", owner=bob)
    world.Note.objects.create(label="note ann", user=ann)
    world.Note.objects.create(label="note cat", user=cat)
    quote = world.Quote.objects.create(label="quote a1", post=a1)
    world.Reply.objects.create(label="reply a1", quote=quote)
    world.Quote.objects.create(label="quote b1", post=b1)
    if guards:
        world.Guard.objects.create(label="guard bob", user=bob)
    return {"ann": ann, "bob": bob, "cat": cat}


def _describe(world, obj, user_names, post_titles):
    def user(value):
        if value is None:
            return None
        return user_names.get(value, "<missing>")

    name = name_of(type(obj))
    if name == "Post":
        return (obj.title, user(obj.author_id), user(obj.editor_id))
    if name == "Comment":
        return (obj.text, post_titles.get(obj.post_id, "<missing>"), user(obj.author_id))
    if name in ("Mention", "Quote"):
        return (getattr(obj, "text", None) or obj.label, post_titles.get(obj.post_id, "<missing>"))
    if name == "Badge":
        return (obj.label, user_names.get(obj.user_id, "<missing>"))
    if name == "Profile":
        return (obj.nickname, user(obj.user_id))
    if name == "Ref":
        return (
            obj.label,
            *(
                user(getattr(obj, f"{field}_id"))
                for field in ("set_null", "set_default", "set_value", "set_callable", "do_nothing")
            ),
        )
    if name == "Guard" or name == "Note":
        return (obj.label, user(obj.user_id))
    if name == "Album":
        return (obj.label, user(obj.owner_id))
    if name == "Track":
        return (obj.label, user(obj.artist_id), obj.album.label, post_titles.get(obj.post_id))
    if name == "Reply":
        return (obj.label, obj.quote.label)
    raise AssertionError(name)


def snapshot(world) -> dict[str, list]:
    """Describe every row of ``world`` with names both worlds share."""
    by_id = {user.pk: name for name, user in users(world).items()}
    by_id[ghost().pk] = "ghost"
    # Badges point at usernames (to_field).
    by_username = {user.username: name for name, user in users(world).items()}
    titles = dict(world.Post.objects.values_list("pk", "title"))
    state = {"User": sorted(users(world))}
    for name in MODEL_NAMES:
        model = getattr(world, name)
        ids = by_username if name == "Badge" else by_id
        state[name] = sorted(_describe(world, obj, ids, titles) for obj in model.objects.all())
    return state


def counts(result) -> tuple[int, dict[str, int]]:
    """Return ``delete()``'s result with twin labels mapped to shared names."""
    total, per_model = result
    return total, {
        label.rsplit(".", 1)[1].removeprefix("Twin"): n for label, n in per_model.items()
    }


def row_label(obj) -> str:
    """Return what identifies ``obj`` in both worlds (its name, title, text or label)."""
    for attr in ("username", "title", "text", "label", "nickname"):
        value = getattr(obj, attr, None)
        if value is not None:
            return value.removeprefix(TWIN.prefix)
    raise AssertionError(obj)


@contextmanager
def recorded_signals():
    """Record ``(signal, model name, row, using)`` for every delete signal sent."""
    sent = []

    def receiver(signal_name):
        def record(sender, instance, using, origin=None, **kwargs):
            sent.append((signal_name, name_of(sender), row_label(instance), using))

        return record

    pre, post = receiver("pre_delete"), receiver("post_delete")
    signals.pre_delete.connect(pre, weak=False)
    signals.post_delete.connect(post, weak=False)
    try:
        yield sent
    finally:
        signals.pre_delete.disconnect(pre)
        signals.post_delete.disconnect(post)


def home_alias(model) -> str:
    """Return the alias ``model``'s rows live on."""
    return router.db_for_write(model)
