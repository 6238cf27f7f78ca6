"""factory-boy: a model factory whose database is the one the routers choose.

factory-boy's ``DjangoModelFactory`` writes to ``Meta.database`` when it names
an alias other than ``default``; left at ``default`` it lets the manager ask
the routers.  Projects with several databases tend to spell the alias out in
every factory (``database = "blog_db"``), a second copy of the routing rules
that goes stale when the rules change.  ``RoutedModelFactory`` takes the alias
from the routers (``crossdb.routing.db_for_write``) at each create, and
refuses a ``Meta.database`` that disagrees with them::

    class PostFactory(RoutedModelFactory):
        class Meta:
            model = Post

        author = factory.SubFactory(UserFactory)   # built on the users' alias

Needs ``factory-boy`` (not a dependency of crossdb itself).
"""

from __future__ import annotations

import factory
from django.db import DEFAULT_DB_ALIAS

from crossdb import routing


class RoutedModelFactory(factory.django.DjangoModelFactory):
    """A ``DjangoModelFactory`` that writes each model on the alias the routers choose."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        alias = routing.db_for_write(model_class)
        pinned = cls._meta.database
        if pinned not in (DEFAULT_DB_ALIAS, alias):
            raise ValueError(
                f"{cls.__name__}.Meta.database is {pinned!r}, but the routers write "
                f"{model_class._meta.label} to {alias!r}; a RoutedModelFactory takes the "
                "alias from the routers: remove Meta.database."
            )
        manager = super()._get_manager(model_class)
        # With Meta.database set (to the routed alias), factory-boy already
        # returned ``manager.using(alias)``.
        return manager if pinned != DEFAULT_DB_ALIAS else manager.db_manager(alias)


def add_related(accessor: str) -> factory.PostGeneration:
    """Return a post-generation declaration that adds the given objects to ``accessor``.

    ``ArticleFactory(tags=[red, blue])`` links the tags after the article is
    saved, with the many-to-many manager, which writes the through rows on their
    alias (a ``CrossDatabaseManyToManyField``'s: the source's); keyword
    arguments (``tags__role="lead"``) become ``through_defaults``.  Built
    (unsaved) objects get no links.
    """

    def generate(obj, create, extracted, **kwargs):
        if not create or not extracted:
            return
        getattr(obj, accessor).add(*extracted, through_defaults=kwargs or None)

    return factory.PostGeneration(generate)
