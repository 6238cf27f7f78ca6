from django.apps import AppConfig


class OndeleteTwinsConfig(AppConfig):
    name = "tests.ondelete.twins"
    label = "ondelete_twins"
