"""FastAPI integration: a worker in the app's lifespan, and optional HTTP
endpoints to start runs, read them and send them events.

    from fastapi import FastAPI
    from resumable.fastapi import Resumable

    app = FastAPI()
    durable = Resumable(app)            # store: the configuration rule (config.py)

    @app.post("/buy")
    def buy(order: Order) -> dict[str, str]:
        return {"run_id": checkout.dispatch(order.user_id, order.order_id, run_id=order.order_id)}

    @app.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, object]:
        return {"result": await durable.runtime.wait(order_id, timeout=5)}

`pip install 'resumable[fastapi]'`. The app's own lifespan (`FastAPI(lifespan=...)`,
or its startup and shutdown handlers) is kept: the store is opened before it
starts and closed after it ends; the worker starts after it started and
stops before it ends. On shutdown the in-app worker stops as `resumable
worker` does on SIGTERM: the runs it drives are cancelled at once, each
stays at its last checkpoint and writes nothing more; the next process
(this app restarted, or any worker) resumes them. docs/fastapi.md says why.

This module imports the real `fastapi` library: imports inside the package
are absolute unless written with a dot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

try:
    from fastapi import FastAPI
except ImportError as e:  # the extra is not installed
    raise ImportError(
        f"resumable.fastapi needs FastAPI ({e}): pip install 'resumable[fastapi]'"
    ) from None

from .config import log
from .runs_api import ResumableAPI, sign
from .runtime import Runtime, configure, default_runtime, reset_default_runtime
from .worker import WorkerReport, work

__all__ = ["Resumable", "ResumableAPI", "sign"]


class Resumable:
    """Resumable runs in a FastAPI (or Starlette) app.

    store: the store's URL; None: the configuration rule ($RESUMABLE_STORE,
    then [tool.resumable] in ./pyproject.toml, then the default). A URL
    given here is `resumable.configure(store=...)`: `fn.dispatch(...)` in
    the app's handlers uses the same store.
    worker: drive dispatched runs in the app's process (an asyncio task on
    the app's loop, up to `concurrency` runs at once); False when workers
    run separately (`resumable worker`).
    poll: seconds between the worker's looks at the store (None: its default).
    api: a ResumableAPI to serve (off by default).

    `runtime` is the runtime `fn.dispatch` uses, open while the app runs."""

    def __init__(
        self,
        app: FastAPI,
        store: str | None = None,
        *,
        worker: bool = True,
        concurrency: int = 8,
        poll: float | None = None,
        api: ResumableAPI | None = None,
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"Resumable(concurrency=...) is at least 1, not {concurrency!r}")
        if api is not None and not isinstance(api, ResumableAPI):
            raise TypeError(f"Resumable(api=...) takes a ResumableAPI(...), not {api!r:.80}")
        if store is not None:
            configure(store=store)
        self.app = app
        self.worker = bool(worker)
        self.concurrency = concurrency
        self.poll = poll
        self.api = api
        #: What the in-app worker reported when it stopped (None: not run yet).
        self.report: WorkerReport | None = None
        self._runtime: Runtime | None = None
        self._task: asyncio.Task[WorkerReport] | None = None
        self._stop: asyncio.Event | None = None
        app.state.resumable = self
        app.router.lifespan_context = self._wrap(app.router.lifespan_context)
        if api is not None:
            app.include_router(api.router(self))

    @property
    def runtime(self) -> Runtime:
        """The runtime of the app's runs (the default runtime), while the app runs."""
        if self._runtime is None:
            raise RuntimeError(
                "resumable: the app has not started (its lifespan opens the store): run it "
                "with uvicorn, or in tests `with TestClient(app):`"
            )
        return self._runtime

    @property
    def worker_running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait(self, run_id: str, timeout: float | None = None) -> Any:
        """`runtime.wait`: the run's result once it has ended (its exception
        if it failed); TimeoutError after `timeout` seconds, the run going on."""
        return await self.runtime.wait(run_id, timeout=timeout)

    # -- the lifespan -----------------------------------------------------------------

    def _wrap(self, inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            self._runtime = await asyncio.to_thread(default_runtime)
            try:
                async with inner(app) as state:
                    if self.worker:
                        self._start_worker(self._runtime)
                    try:
                        yield state
                    finally:
                        await self.stop_worker()
            finally:
                self._runtime = None
                await asyncio.to_thread(reset_default_runtime)

        return lifespan

    def _start_worker(self, rt: Runtime) -> None:
        self._stop = asyncio.Event()
        log.info("resumable: in-app worker started (store %s)", rt.url)
        self._task = asyncio.create_task(
            work(
                rt,
                concurrency=self.concurrency,
                poll=self.poll,
                stop=self._stop,
                log=lambda line: log.info("resumable worker: %s", line),
            ),
            name="resumable-worker",
        )
        self._task.add_done_callback(self._worker_ended)

    def _worker_ended(self, task: asyncio.Task[WorkerReport]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("resumable: the in-app worker stopped: %r", error, exc_info=error)
        elif self._stop is not None and not self._stop.is_set():
            log.error("resumable: the in-app worker ended before the app did")

    async def stop_worker(self) -> None:
        """Stop the in-app worker as SIGTERM stops `resumable worker`: the
        runs it drives are cancelled where they stand (no further
        checkpoint), resumable by the next process. (The app's shutdown
        calls this.)"""
        task, stop = self._task, self._stop
        if task is None or stop is None:
            return
        stop.set()
        try:
            self.report = await task
        except Exception:
            pass  # logged by _worker_ended
        finally:
            self._task = self._stop = None
        report = self.report
        if report is not None:
            log.info(
                "resumable: in-app worker stopped: %d completed, %d left to resume",
                report.completed,
                report.interrupted,
            )
