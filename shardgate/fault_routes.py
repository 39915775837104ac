"""The HTTP route that arms a kill point (shardgate/faults.py), present only in processes
started with SHARDGATE_FAULT_POINTS=1, as the fault suite starts them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from shardgate import faults
from shardgate.jsonio import JSONResponse


async def _arm(request: Request) -> JSONResponse:
    body = await request.json()
    try:
        if body.get("disarm"):
            faults.disarm_all()
        elif "hold" in body:
            faults.hold(str(body["hold"]), bool(body.get("on", True)))
        else:
            faults.arm(str(body.get("point")), int(body.get("at_hit", 1)))
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, 400)
    return JSONResponse({"armed": True})


def fault_routes(path: str) -> list[Route]:
    """[the arming route at `path`] when kill points are enabled, else nothing."""
    return [Route(path, _arm, methods=["POST"])] if faults.enabled() else []
