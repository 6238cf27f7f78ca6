"""Admin of the blog: posts listed with their authors from default."""

from django.contrib import admin

from blog.models import Comment, Post


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    raw_id_fields = ["author"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "published", "created"]
    list_filter = ["published"]
    search_fields = ["title"]
    # A plain select: its choices are the users, read from default.
    inlines = [CommentInline]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["text", "post", "author"]
    raw_id_fields = ["post", "author"]
