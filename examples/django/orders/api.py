"""The orders API's Django REST framework views.

DRF authenticates with :class:`invalidtoken_mw.drf.InvalidTokenAuthentication`
(``REST_FRAMEWORK`` in the settings), which reads the middleware's decision instead of
verifying again: ``request.user`` is a ``TokenUser``, ``request.auth`` the claims.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from invalidtoken_mw.django import current_claims, optional
from invalidtoken_mw.drf import HasScopes

if TYPE_CHECKING:
    from rest_framework.request import Request

INVOICES = [{"id": 1, "order": 1, "total": "24.00"}]
CATALOGUE = ["coffee beans", "tea"]


class Invoices(APIView):
    """The invoices, for a token granting ``invoices:read`` (403 otherwise)."""

    permission_classes = (HasScopes,)
    required_scopes = ("invoices:read",)

    def get(self, request: Request) -> Response:
        """List the invoices."""
        return Response({"owner": current_claims(request)["sub"], "invoices": INVOICES})


@optional
class Catalogue(APIView):
    """Anyone may read the catalogue; adding to it needs a token.

    ``@optional`` lets a request without a token through the middleware (a bad token is
    still refused there), so DRF's own ``IsAuthenticatedOrReadOnly`` decides: its
    ``NotAuthenticated`` 401 carries the middleware's challenge.
    """

    permission_classes = (IsAuthenticatedOrReadOnly,)

    def get(self, request: Request) -> Response:
        """The catalogue, personalised when a token was sent."""
        # request.auth: the claims, or None for an anonymous request.
        subject = None if request.auth is None else current_claims(request)["sub"]
        return Response({"items": CATALOGUE, "for": subject})

    def post(self, request: Request) -> Response:
        """Add an item (201)."""
        return Response({"item": "tea", "added_by": current_claims(request)["sub"]}, status=201)
