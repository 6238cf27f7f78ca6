"""A router with two faults, for the broken app's check tests."""


class BrokenRouter:
    """Sends ``broken.LostNote`` to a missing alias; refuses ``broken.RefusedNote``'s relation."""

    def db_for_read(self, model, **hints):
        if model._meta.label == "broken.LostNote":
            return "missing_db"
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        if "broken.RefusedNote" in {obj1._meta.label, obj2._meta.label}:
            return False
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return None
