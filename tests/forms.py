"""ModelForms of the test apps and their plain-ForeignKey twins."""

from django import forms

from tests.blog.models import Post
from tests.shop.models import Badge, Profile
from tests.twin.models import TwinPost, TwinProfile


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "author", "editor"]


class TwinPostForm(forms.ModelForm):
    class Meta:
        model = TwinPost
        fields = ["title", "author", "editor"]


class BadgeForm(forms.ModelForm):
    class Meta:
        model = Badge
        fields = ["user", "label"]


class ProfileForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = ["user", "nickname"]


class TwinProfileForm(forms.ModelForm):
    class Meta:
        model = TwinProfile
        fields = ["user", "nickname"]
