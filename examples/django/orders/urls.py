"""The orders API's URLs."""

from __future__ import annotations

from django.urls import path

from orders import views

urlpatterns = [
    path("health", views.health),
    path("orders", views.orders),
]
