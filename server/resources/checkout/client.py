"""The client-side API: the server calls a browser or app may make with a client key.

The same services answer as on ``/v1``; the project's flags decide which risky calls a
client key may make (``client_redeem_enabled`` for redemptions).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.resources.checkout import qualifications, redemptions, validations
from server.resources.definitions import promotions
from server.resources.loyalty import events
from server.routing import Handler, resource
from voucherd.platform.errors import Forbidden


def _gated(flag: str, handler: Handler) -> Handler:
    async def gated(request: Request) -> Response:
        if not request.scope["state"].get("project_settings", {}).get(flag):
            raise Forbidden(f"The project does not allow this call from client keys ({flag} is off).")
        return await handler(request)

    return gated


routes = [
    resource("/client/v1/validations", POST=validations.validate),
    resource("/client/v1/redemptions", POST=_gated("client_redeem_enabled", redemptions.redeem)),
    resource("/client/v1/qualifications", POST=qualifications.qualify),
    resource("/client/v1/events", POST=events.track_event),
    resource("/client/v1/promotions/tiers", GET=promotions.list_all_tiers),
]
