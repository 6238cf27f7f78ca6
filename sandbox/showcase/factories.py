"""factory-boy factories of the sandbox; each writes to the alias its model routes to."""

import factory
from blog.models import Comment, Post
from django.contrib.auth import get_user_model
from shop.models import Order, Product

from crossdb.factories import RoutedModelFactory

User = get_user_model()


class UserFactory(RoutedModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    first_name = factory.LazyAttribute(lambda user: user.username.capitalize())


class PostFactory(RoutedModelFactory):
    class Meta:
        model = Post

    author = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Post {n}")
    body = factory.Faker("paragraph")


class CommentFactory(RoutedModelFactory):
    class Meta:
        model = Comment

    post = factory.SubFactory(PostFactory)
    author = factory.SubFactory(UserFactory)
    text = factory.Faker("sentence")


class ProductFactory(RoutedModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Product {n}")
    price = "9.90"


class OrderFactory(RoutedModelFactory):
    class Meta:
        model = Order

    customer = factory.SubFactory(UserFactory)
    product = factory.SubFactory(ProductFactory)
