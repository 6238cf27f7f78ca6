"""Admin helpers for ModelAdmins pinned to one database.

Django's admin already reads a crossdb field's choices, raw-id label and
autocomplete results from the target's alias: its widgets and querysets go
through the routers.  The one pattern that breaks it is the "MultiDBModelAdmin"
of Django's multi-database guide, which passes ``using=self.using`` (the
*source* model's alias) to ``formfield_for_foreignkey``: the choices of a
crossdb field then come from the wrong database (an error, or a stale copy's
rows).  ``CrossDatabaseAdminMixin`` sends crossdb fields to their target's
alias instead; put it under the class that pins the alias::

    class MultiDBModelAdmin(CrossDatabaseAdminMixin, admin.ModelAdmin):
        using = "blog_db"

        def formfield_for_foreignkey(self, db_field, request, **kwargs):
            return super().formfield_for_foreignkey(
                db_field, request, using=self.using, **kwargs
            )

This module registers nothing.
"""

from __future__ import annotations

from crossdb import routing
from crossdb.fields import is_crossdb_field


class CrossDatabaseAdminMixin:
    """Read a crossdb field's choices and widgets on its target's alias, whatever ``using`` says."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if is_crossdb_field(db_field) and kwargs.get("using") is not None:
            kwargs["using"] = routing.db_for_read(db_field.remote_field.model)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
