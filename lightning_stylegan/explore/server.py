"""The explorer's web app (Starlette) and its render worker.

* ``GET /``: the page (``page.html``); ``GET /api/networks``: what each network offers (controls that
  do not apply come with the reason); ``POST /api/render``: a request (``render``) -> the images;
  ``POST /api/walk.mp4``: the request's latent walk as an MP4 (``video.write_mp4``).
* Rendering runs in one worker thread, so the page never blocks the server. Requests are numbered;
  one that is no longer the newest when the worker reaches it answers ``{"stale": true}`` without
  rendering: a slider moved faster than rendering never queues work.
* A bad request answers ``{"error": ...}`` (status 400); an unexpected failure ``{"error": ...}``
  (status 500) as JSON, never a traceback page. Only the networks and files named on the command
  line can be drawn: no path comes from the browser. With the default host, requests that name
  another host are refused (a DNS-rebinding page cannot reach the server).
"""
from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import UsageError
from ..video import write_mp4
from .render import ExploreInputError, Network, draw, walk_frames

PAGE = Path(__file__).with_name("page.html")
LOCAL_HOSTS = ["127.0.0.1", "localhost"]
MAX_FRAMES = 600  # of a walk video


class Explorer:
    """The networks, the ``projected_w`` latents, the render worker and its latencies."""

    def __init__(self, networks: list[Network], projected: dict[str, torch.Tensor] | None = None):
        self.networks = {net.name: net for net in networks}
        self.projected = projected or {}
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.tickets = itertools.count(1)
        self.newest = 0
        self.latencies: list[float] = []

    def describe(self) -> dict:
        return {"networks": [net.describe() for net in self.networks.values()], "projected": sorted(self.projected)}

    def _networks(self, request) -> list[Network]:
        """The networks a request names (``checkpoints``; default the first one), checked."""
        if not isinstance(request, dict):
            raise ExploreInputError(f"a request is a JSON object, got {type(request).__name__}")
        names = request.get("checkpoints") or list(self.networks)[:1]
        if not isinstance(names, list) or not all(isinstance(name, str) and name in self.networks for name in names):
            raise ExploreInputError(f"checkpoints must name loaded networks: {list(self.networks)}, got {names!r}")
        return [self.networks[name] for name in names]

    def render(self, ticket: int, request: dict) -> dict:
        """Runs in the worker thread."""
        if ticket != self.newest:
            return {"stale": True}
        networks = self._networks(request)
        start = time.perf_counter()
        answers = [draw(net, request, self.projected) for net in networks]
        seconds = time.perf_counter() - start
        self.latencies.append(seconds)
        return {"images": answers, "seconds": round(seconds, 4)}

    def walk_video(self, request: dict) -> bytes:
        """The MP4 of the request's walk for its first network (runs in the worker thread)."""
        net = self._networks(request)[0]
        frames = request.get("frames", 60)
        if isinstance(frames, bool) or not isinstance(frames, int) or not 2 <= frames <= MAX_FRAMES:
            raise ExploreInputError(f"frames must be an integer from 2 to {MAX_FRAMES}, got {frames!r}")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "walk.mp4"
            write_mp4(walk_frames(net, request, self.projected, frames), path, fps=30)
            return path.read_bytes()

    def latency(self) -> dict:
        """Median and 95th percentile of the render times so far (seconds)."""
        times = sorted(self.latencies)
        if not times:
            return {"count": 0}
        return {"count": len(times), "median": statistics.median(times),
                "p95": times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]}


def app(explorer: Explorer, host: str = "127.0.0.1") -> Starlette:
    async def page(_request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.read_text())

    async def networks(_request: Request) -> JSONResponse:
        return JSONResponse(explorer.describe())

    async def latency(_request: Request) -> JSONResponse:
        return JSONResponse(explorer.latency())

    async def in_worker(request: Request, work, respond) -> Response:
        """``respond(work(the request's JSON))``, ``work`` on the render worker; a bad request (or no
        imageio-ffmpeg for a video) is a 400 JSON error, any other failure a 500 one."""
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
        try:
            result = await asyncio.get_running_loop().run_in_executor(explorer.worker, work, data)
        except UsageError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except Exception as error:  # noqa: BLE001 - the page shows it; the server goes on
            return JSONResponse({"error": f"{type(error).__name__}: {error}"}, status_code=500)
        return respond(result)

    async def render(request: Request) -> Response:
        ticket = next(explorer.tickets)
        explorer.newest = ticket  # the requests still waiting for the worker are stale now
        return await in_worker(request, lambda data: explorer.render(ticket, data), JSONResponse)

    async def walk(request: Request) -> Response:
        return await in_worker(request, explorer.walk_video, lambda video: Response(
            video, media_type="video/mp4", headers={"Content-Disposition": 'attachment; filename="walk.mp4"'}))

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS)] if host in LOCAL_HOSTS else []
    return Starlette(routes=[Route("/", page), Route("/api/networks", networks), Route("/api/latency", latency),
                             Route("/api/render", render, methods=["POST"]),
                             Route("/api/walk.mp4", walk, methods=["POST"])], middleware=middleware)
