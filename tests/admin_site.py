"""An admin site for the admin tests: crossdb relations in every admin option that takes one.

Each crossdb ModelAdmin has a twin on the plain-ForeignKey model with the same options.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from crossdb.admin import CrossDatabaseAdminMixin
from tests.blog.models import Comment, Post
from tests.shop.models import Badge
from tests.twin.models import TwinPost

site = admin.AdminSite(name="crossdb_tests_admin")
site.register(User, UserAdmin)
site.register(Group, GroupAdmin)


class PostAdmin(admin.ModelAdmin):
    list_display = ("title", "author", "editor")
    list_filter = ("author", ("editor", admin.RelatedOnlyFieldListFilter))
    raw_id_fields = ("editor",)
    autocomplete_fields = ("author",)
    search_fields = ("title",)


site.register(Post, PostAdmin)
site.register(TwinPost, PostAdmin)


@admin.register(Badge, site=site)
class BadgeAdmin(admin.ModelAdmin):
    list_display = ("label", "user")
    raw_id_fields = ("user",)


@admin.register(Comment, site=site)
class CommentAdmin(admin.ModelAdmin):
    """Plain select widgets: a same-database ``post`` and a crossdb ``author``."""

    list_display = ("text", "post", "author")


class PinnedToBlogDb:
    """The pattern of Django's multi-database guide: everything pinned to ``using``."""

    using = "blog_db"

    def get_queryset(self, request):
        return super().get_queryset(request).using(self.using)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, using=self.using, **kwargs)


class MultiDBPostAdmin(PinnedToBlogDb, admin.ModelAdmin):
    """Django's pattern alone: crossdb fields' choices come from blog_db."""


class CrossDatabaseMultiDBPostAdmin(PinnedToBlogDb, CrossDatabaseAdminMixin, admin.ModelAdmin):
    """The same with crossdb's mixin under it: choices come from the target's alias."""
