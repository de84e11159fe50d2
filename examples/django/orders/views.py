"""The orders API's views."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods

from invalidtoken_mw.django import check_scopes, current_claims, exempt

ORDERS = [{"id": 1, "item": "coffee beans", "quantity": 2}]


@exempt
@require_GET
def health(_request: HttpRequest) -> HttpResponse:
    """Public: no token needed."""
    return JsonResponse({"status": "ok"})


@require_http_methods(["GET", "POST"])
def orders(request: HttpRequest) -> HttpResponse:
    """List the orders (``orders:read``) or create one (``orders:write``)."""
    subject = current_claims(request).get("sub")
    if request.method == "POST":
        check_scopes(request, ["orders:write"])
        return JsonResponse({"id": len(ORDERS) + 1, "item": "tea", "by": subject}, status=201)
    check_scopes(request, ["orders:read"])
    return JsonResponse({"subject": subject, "orders": ORDERS})
