"""factory-boy factories of the sandbox; each writes to the alias its model routes to."""

import factory
from blog.models import Comment, Post
from django.contrib.auth import get_user_model
from django.db import router
from shop.models import Order, Product

User = get_user_model()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        database = router.db_for_write(User)
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    first_name = factory.LazyAttribute(lambda user: user.username.capitalize())


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post
        database = router.db_for_write(Post)

    author = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Post {n}")
    body = factory.Faker("paragraph")


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment
        database = router.db_for_write(Comment)

    post = factory.SubFactory(PostFactory)
    author = factory.SubFactory(UserFactory)
    text = factory.Faker("sentence")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        database = router.db_for_write(Product)
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Product {n}")
    price = "9.90"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        database = router.db_for_write(Order)

    customer = factory.SubFactory(UserFactory)
    product = factory.SubFactory(ProductFactory)
