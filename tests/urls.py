from django.contrib import admin
from django.urls import path

from tests.admin_site import site as tests_admin_site

urlpatterns = [path("admin/", admin.site.urls)]
urlpatterns.append(path("tests-admin/", tests_admin_site.urls))
