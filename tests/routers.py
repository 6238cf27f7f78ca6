"""Hand-written routers of the kinds projects already have.

crossdb must work with them, not only with ``AppLabelRouter``.
"""

from django.conf import settings


class _AppRouter:
    """An app-label router in the style of Django's multi-database docs."""

    route_app_labels: set[str] = set()
    alias = ""

    def db_for_read(self, model, **hints):
        if model._meta.app_label in self.route_app_labels:
            return self.alias
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        if (
            obj1._meta.app_label in self.route_app_labels
            or obj2._meta.app_label in self.route_app_labels
        ):
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label in self.route_app_labels:
            return db == self.alias
        return None


class BlogRouter(_AppRouter):
    route_app_labels = {"blog"}
    alias = "blog_db"


class ShopRouter(_AppRouter):
    route_app_labels = {"shop"}
    alias = "shop_db"


class RulesOrNoneRouter:
    """A rules router that answers None for apps without a rule.

    Django then falls back to the hint instance's alias, which is the other
    end's alias for a cross-database relation.
    """

    def _rule(self, model):
        return settings.DATABASE_ROUTING_RULES.get(model._meta.app_label)

    def db_for_read(self, model, **hints):
        return self._rule(model)

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        rule = settings.DATABASE_ROUTING_RULES.get(app_label)
        return db == (rule or "default")


class RefusingRouter:
    """Refuses every relation; answers nothing else."""

    def allow_relation(self, obj1, obj2, **hints):
        return False
