"""The orders API's URLs."""

from __future__ import annotations

from django.urls import path

from orders import api, views

urlpatterns = [
    path("health", views.health),
    path("orders", views.orders),
    path("invoices", api.Invoices.as_view()),
    path("catalogue", api.Catalogue.as_view()),
]
