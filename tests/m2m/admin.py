"""An admin site for the many-to-many tests: each widget Django offers, on both sides."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.urls import path

from tests.m2m.models import Article, Team
from tests.m2mtags.models import Tag
from tests.m2mtwin.models import TwinArticle, TwinTag

site = admin.AdminSite(name="crossdb_m2m_admin")
site.register(User, UserAdmin)


class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)


class ArticleAdmin(admin.ModelAdmin):
    filter_horizontal = ("tags",)
    raw_id_fields = ("readers",)
    search_fields = ("title",)


class AutocompleteArticleAdmin(admin.ModelAdmin):
    autocomplete_fields = ("tags",)


site.register(Tag, TagAdmin)
site.register(TwinTag, TagAdmin)
site.register(Article, ArticleAdmin)
site.register(TwinArticle, ArticleAdmin)
site.register(Team, admin.ModelAdmin)

autocomplete_site = admin.AdminSite(name="crossdb_m2m_autocomplete")
autocomplete_site.register(Tag, TagAdmin)
autocomplete_site.register(TwinTag, TagAdmin)
autocomplete_site.register(Article, AutocompleteArticleAdmin)
autocomplete_site.register(TwinArticle, AutocompleteArticleAdmin)

urlpatterns = [path("m2m-admin/", site.urls), path("m2m-auto/", autocomplete_site.urls)]
