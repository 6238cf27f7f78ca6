"""factory-boy factories of the test apps."""

import factory
from django.contrib.auth.models import User

from tests.blog.models import Comment, Post
from tests.shop.models import Mention, Order, Product, Profile
from tests.twin.models import TwinComment, TwinPost, TwinProfile


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post
        database = "blog_db"

    title = factory.Sequence(lambda n: f"post {n}")
    author = factory.SubFactory(UserFactory)


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment
        database = "blog_db"

    post = factory.SubFactory(PostFactory)
    text = factory.Sequence(lambda n: f"comment {n}")


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile
        database = "shop_db"

    user = factory.SubFactory(UserFactory)
    nickname = factory.Sequence(lambda n: f"nick{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        database = "shop_db"

    name = factory.Sequence(lambda n: f"product {n}")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        database = "shop_db"

    customer = factory.SubFactory(UserFactory)
    product = factory.SubFactory(ProductFactory)


class MentionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mention
        database = "shop_db"

    post = factory.SubFactory(PostFactory)
    text = factory.Sequence(lambda n: f"mention {n}")


class TwinPostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TwinPost

    title = factory.Sequence(lambda n: f"post {n}")
    author = factory.SubFactory(UserFactory)


class TwinCommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TwinComment

    post = factory.SubFactory(TwinPostFactory)
    text = factory.Sequence(lambda n: f"comment {n}")


class TwinProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TwinProfile

    user = factory.SubFactory(UserFactory)
    nickname = factory.Sequence(lambda n: f"nick{n}")
