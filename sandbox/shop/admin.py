"""Admin of the shop: orders listed with their customers from default."""

from django.contrib import admin

from shop.models import Order, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "price"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "product", "quantity", "placed"]
    raw_id_fields = ["customer"]
