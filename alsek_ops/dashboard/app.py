"""The dashboard's pages and actions. Read-only unless built with
``allow_actions``: then POST forms retry and purge dead letters, pause and
resume queues, and revoke queued or running messages. A POST from a page of another origin is refused, so a site the
operator visits cannot drive an open dashboard through their browser."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from alsek_core.broker import Broker
from alsek_core.errors import AlsekError, MessageDoesNotExistError, ValidationError
from alsek_core.message import Message, validate_queue_name
from alsek_core.ports import Backend
from alsek_core.result import store_for
from alsek_core.status import TaskStatus, seen_status, tracker_for
from alsek_core.workers import holders, live_workers
from alsek_ops.dashboard.history import INTERVAL_S, History
from alsek_ops.dashboard.plot import chart

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
STATES = ("ready", "delayed", "in_flight", "dead")
#: States of a message that a revocation still stops (queued or running).
REVOCABLE = ("ready", "delayed", "in_flight")
#: States read from the job history (finished messages).
FINISHED = ("succeeded", "failed")
#: A listing stops here: a page of a million rows helps nobody.
PAGE = 200
#: How much of an argument or result a page shows.
SHOWN_CHARS = 10_000


def when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + f"... ({len(text)} characters)"


class Dashboard:
    def __init__(self, backend: Backend, shown_url: str, allow_actions: bool,
                 sample_interval_s: float = INTERVAL_S) -> None:
        self.backend = backend
        self.broker = Broker(backend)
        self.shown_url = shown_url
        self.allow_actions = allow_actions
        self.history = History(self.broker, sample_interval_s)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals.update(when=when, shown=shown, backend_url=shown_url,
                                          allow_actions=allow_actions)

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request, name, {"done": request.query_params.get("done"), **context}, status_code=status_code
        )

    # --- pages ------------------------------------------------------------------------

    def queue_rows(self) -> list[dict[str, Any]]:
        rates = self.history.net_rates()
        paused = set(self.broker.paused())
        rows = []
        # A queue that emptied leaves the backend's listing; it stays here (at 0) once seen,
        # and a paused one is listed even before it has messages.
        for queue in sorted(set(self.broker.queues()) | self.history.seen() | paused):
            counts = self.broker.counts(queue)
            rows.append({"queue": queue, "ready": counts.ready, "delayed": counts.delayed,
                         "in_flight": counts.in_flight, "dead": counts.dead, "rate": rates.get(queue),
                         "paused": queue in paused})
        return rows

    def queues(self, request: Request) -> HTMLResponse:
        name = "queues_live.html" if "fragment" in request.query_params else "queues.html"
        return self.page(request, name, rows=self.queue_rows(), chart=chart(list(self.history.samples)))

    def jobs_matching(self, queue: str | None, task: str | None, state: str | None) -> Iterator[dict[str, Any]]:
        for name in [queue] if queue else self.broker.queues():
            listings = [] if state == "dead" else [False]
            if state in (None, "dead"):
                listings.append(True)
            for dead in listings:
                for item_state, uuid, message in self.broker.messages(name, dead=dead):
                    if state is not None and item_state != state:
                        continue
                    if task and (message is None or message.task_name != task):
                        continue
                    yield {"uuid": uuid, "queue": name, "state": item_state, "message": message}

    def jobs(self, request: Request) -> HTMLResponse:
        params = request.query_params
        queue, task = params.get("queue") or None, params.get("task") or None
        state = params.get("state") if params.get("state") in STATES + FINISHED else None
        rows, finished = [], []
        if state in FINISHED:
            finished = [e for e in self.broker.history(queue, state, limit=PAGE if task is None else 10_000)
                        if task is None or e.task == task][:PAGE]
        else:
            running = holders(live_workers(self.backend))
            for row in self.jobs_matching(queue, task, state):
                rows.append({**row, "worker": running.get(row["uuid"])})
                if len(rows) >= PAGE:
                    break
        queues = sorted(set(self.broker.queues()) | set(self.broker.history_queues()))
        return self.page(request, "jobs.html", rows=rows, finished=finished, queues=queues,
                         states=STATES + FINISHED, queue=queue, task=task or "", state=state, limit=PAGE)

    def find(self, uuid: str) -> tuple[str, str, Message | None] | None:
        """(queue, state, message) of a queued or dead-lettered message."""
        for queue in self.broker.queues():
            for dead in (False, True):
                for state, found, message in self.broker.messages(queue, dead=dead):
                    if found == uuid:
                        return queue, state, message
        return None

    def job(self, request: Request) -> HTMLResponse:
        uuid = request.path_params["uuid"]
        found = self.find(uuid)
        status = tracker_for(self.backend).record(uuid)
        try:
            result: Any = store_for(self.backend).get(Message("(lookup)", uuid=uuid), keep=True, with_metadata=True)
            has_result = True
        except KeyError:
            result, has_result = None, False
        queue = found[0] if found else status.get("queue") if status else None
        entry = self.broker.history_entry(uuid, queue if isinstance(queue, str) else None)
        if found is None and status is None and not has_result and entry is None:
            return self.page(request, "missing.html", status_code=404, uuid=uuid)
        if found:
            queue, state, message = found
        else:
            queue, state, message = entry.queue if entry else queue, entry.state if entry else "finished or gone", None
        if status is not None and status.get("status") in TaskStatus.__members__:
            seen = seen_status(TaskStatus[status["status"]], state).name
            status = {**status, "status": seen, "redelivery": seen != status["status"]}
        worker = holders(live_workers(self.backend)).get(uuid) if state == "in_flight" else None
        return self.page(request, "job.html", uuid=uuid, queue=queue, state=state, message=message,
                         status=status, result=result, has_result=has_result, entry=entry, worker=worker,
                         revocable=found is not None and state in REVOCABLE)

    def dead(self, request: Request) -> HTMLResponse:
        queue = request.query_params.get("queue") or None
        letters = self.broker.dead_letters(queue)
        return self.page(request, "dead.html", letters=letters[:PAGE], total=len(letters),
                         queues=self.broker.queues(), queue=queue)

    def workers(self, request: Request) -> HTMLResponse:
        name = "workers_live.html" if "fragment" in request.query_params else "workers.html"
        return self.page(request, name, workers=live_workers(self.backend))

    # --- actions ------------------------------------------------------------------------

    def refused(self, request: Request) -> Response | None:
        if not self.allow_actions:
            return PlainTextResponse("actions are disabled: start the dashboard with --allow-actions", 403)
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return PlainTextResponse("refused: this form was posted from another site", 403)
        return None

    @staticmethod
    def back(path: str, done: str, **params: str) -> RedirectResponse:
        return RedirectResponse(f"{path}?{urlencode({**params, 'done': done})}", status_code=303)

    async def retry(self, request: Request) -> Response:
        if (refusal := self.refused(request)) is not None:
            return refusal
        form = await request.form()
        uuid, queue = str(form.get("uuid") or ""), str(form.get("queue") or "") or None
        return await run_in_threadpool(self._retry, uuid, queue)

    def _retry(self, uuid: str, queue: str | None) -> Response:
        chosen = [m for m in self.broker.dead_letters(queue) if not uuid or m.uuid == uuid]
        if uuid and not chosen:
            return PlainTextResponse(f"{uuid} is not among the dead letters", 404)
        requeued = 0
        for message in chosen:
            with contextlib.suppress(MessageDoesNotExistError):  # another click got it first
                self.broker.replay(message)
                requeued += 1
        log.info("dashboard: requeued %d dead letter(s)", requeued)
        return self.back("/dead", f"requeued {requeued} message(s)")

    async def purge(self, request: Request) -> Response:
        if (refusal := self.refused(request)) is not None:
            return refusal
        form = await request.form()
        queue = str(form.get("queue") or "") or None
        removed = await run_in_threadpool(self.broker.purge_dead, queue)
        log.info("dashboard: deleted %d dead letter(s)", removed)
        return self.back("/dead", f"deleted {removed} dead letter(s)")

    async def revoke(self, request: Request) -> Response:
        if (refusal := self.refused(request)) is not None:
            return refusal
        form = await request.form()
        return await run_in_threadpool(self._revoke, request.path_params["uuid"], str(form.get("queue") or ""))

    def _revoke(self, uuid: str, queue: str) -> Response:
        # A finished message has nothing left to stop; a mark would only mislead.
        if not self.broker.contains(validate_queue_name(queue), uuid):
            return PlainTextResponse(f"{uuid} is not queued or running in {queue!r}: nothing to revoke", 409)
        self.broker.revoke(uuid)
        log.info("dashboard: revoked %s", uuid)
        return self.back(f"/jobs/{uuid}", "revoked: it never starts, and is stopped if it runs")

    async def pause(self, request: Request) -> Response:
        return await self._switch(request, paused=True)

    async def resume(self, request: Request) -> Response:
        return await self._switch(request, paused=False)

    async def _switch(self, request: Request, paused: bool) -> Response:
        if (refusal := self.refused(request)) is not None:
            return refusal
        form = await request.form()
        queue = str(form.get("queue") or "")
        await run_in_threadpool(self.broker.pause if paused else self.broker.resume, queue)
        log.info("dashboard: %s queue %r", "paused" if paused else "resumed", queue)
        done = ("paused: its messages stay, no pool claims them" if paused else "resumed") + f" ({queue})"
        return self.back("/", done)

    # --- the app ------------------------------------------------------------------------

    async def failed(self, request: Request, exc: Exception) -> Response:
        """One line, never a traceback (it could show a connection string)."""
        if isinstance(exc, ValidationError):  # a bad filter or form value
            return PlainTextResponse(f"error: {exc}", 400)
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        reason = str(exc) if isinstance(exc, AlsekError) else type(exc).__name__
        return PlainTextResponse(f"error: {reason} (the dashboard's log has more)", 500)

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self.history.start()
            yield
            self.history.stop()

        return Starlette(
            routes=[
                Route("/", self.queues),
                Route("/jobs", self.jobs),
                Route("/jobs/{uuid}", self.job),
                Route("/jobs/{uuid}/revoke", self.revoke, methods=["POST"]),
                Route("/queues/pause", self.pause, methods=["POST"]),
                Route("/queues/resume", self.resume, methods=["POST"]),
                Route("/dead", self.dead),
                Route("/dead/retry", self.retry, methods=["POST"]),
                Route("/dead/purge", self.purge, methods=["POST"]),
                Route("/workers", self.workers),
                Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            ],
            exception_handlers={Exception: self.failed},
            lifespan=lifespan,
        )


def serve(backend: Backend, shown_url: str, host: str, port: int, allow_actions: bool) -> None:
    app = Dashboard(backend, shown_url, allow_actions).app()
    log.info("dashboard on http://%s:%d/ for %s (%s)", host, port, shown_url,
             "actions allowed" if allow_actions else "read-only")
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
