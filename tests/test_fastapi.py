"""resumable.fastapi and `Runtime.wait`: the in-app worker in the app's
lifespan (kept around the app's own lifespan, stopped on shutdown with no
further checkpoint), dispatch from sync and async handlers, waiting for
results, a dispatch of an existing run id with other arguments, and the
optional runs API (off by default; bearer token or HMAC signature;
allowlist). The app runs in-process under TestClient, whose lifespan runs;
tests/test_fastapi_checkout.py runs the example app under real uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

import resumable
from resumable import RunConflict, Runtime
from resumable.fastapi import Resumable, ResumableAPI, sign
from resumable.worker import work
from tests.compiled import compile_and_import
from tests.procs import lines, wait_until

MODULE = "fastapi_jobs"
JOBS = """
import asyncio
import os

import resumable


def note(path, line):
    with open(path, "a") as f:
        f.write(line + "\\n")


async def until_exists(path):
    while not os.path.exists(path):
        await asyncio.sleep(0.01)


@resumable.function
async def double(x):
    return 2 * x


@resumable.function(retry=resumable.Retry(max_attempts=1))
async def fails(message):
    raise ValueError(message)


@resumable.function
async def gated(log, gate):
    note(log, "start")
    await until_exists(gate)
    note(log, "passed")
    return "done"


@resumable.function
async def pair(a, b):
    return {a, b}


@resumable.function
async def waits_event():
    return await resumable.wait_event("go")
"""

TOKEN = "s3cret-token-for-tests"
SECRET = b"hmac-secret-for-tests"


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp(MODULE)
    yield compile_and_import(folder / f"{MODULE}.py", MODULE, JOBS)
    sys.modules.pop(MODULE, None)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'state.db'}"
    resumable.configure()  # what Resumable(app, store=...) configured


def runs_of(url: str, function: str) -> list[str]:
    with Runtime(url) as rt:
        return [r.run_id for r in rt.store.list_runs() if r.function.endswith(f":{function}")]


# -- Runtime.wait and dispatch of an existing run id -----------------------------------


def test_wait_returns_raises_and_times_out_leaving_the_run_going(
    jobs: ModuleType, url: str, tmp_path: Path
) -> None:
    log, gate = tmp_path / "log", tmp_path / "gate"

    async def main() -> None:
        rt = Runtime(url)
        stop = asyncio.Event()
        worker = asyncio.create_task(work(rt, concurrency=4, poll=0.02, stop=stop, log=print))
        try:
            assert await rt.wait(rt.dispatch(jobs.double, 21), timeout=30) == 42
            with pytest.raises(ValueError, match="boom"):
                await rt.wait(rt.dispatch(jobs.fails, "boom"), timeout=30)
            with pytest.raises(KeyError):
                await rt.wait("no-such-run", timeout=1)
            held = rt.dispatch(jobs.gated, str(log), str(gate), run_id="held")
            await asyncio.to_thread(wait_until, lambda: lines(log), "the run to start")
            with pytest.raises(TimeoutError, match="goes on"):
                await rt.wait(held, timeout=0.3)
            assert rt.status(held) in ("running", "pending", "waiting")
            gate.touch()  # the run was not cancelled by the wait: it ends now
            assert await rt.wait(held, timeout=30) == "done"
            assert lines(log) == ["start", "passed"]
        finally:
            stop.set()
            await worker
            rt.close()

    asyncio.run(main())


def test_wait_refuses_a_bad_timeout(url: str) -> None:
    with Runtime(url) as rt, pytest.raises(ValueError, match="timeout"):
        asyncio.run(rt.wait("x", timeout=-1))


def test_dispatch_of_an_existing_run_id_with_other_arguments_is_a_conflict(
    jobs: ModuleType, url: str
) -> None:
    with Runtime(url) as rt:
        assert rt.dispatch(jobs.double, 1, run_id="d") == "d"
        assert rt.dispatch(jobs.double, x=1, run_id="d") == "d"  # the same call
        with pytest.raises(RunConflict, match="other arguments") as caught:
            rt.dispatch(jobs.double, 2, run_id="d")
        assert caught.value.run_id == "d"
        with pytest.raises(RunConflict, match="is a run of"):
            rt.dispatch(jobs.fails, "x", run_id="d")
        assert isinstance(caught.value, ValueError)  # as it was before: a refused argument
        assert [r.run_id for r in rt.store.list_runs()] == ["d"]


# -- the lifespan and the in-app worker --------------------------------------------------


def make_app(
    jobs: ModuleType, url: str, events: list[str] | None = None, **options: Any
) -> tuple[FastAPI, Resumable]:
    lifespan = None
    if events is not None:

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
            events.append("user startup")
            yield {"greeting": "hello"}
            events.append("user shutdown")

    app = FastAPI(lifespan=lifespan)
    options.setdefault("poll", 0.02)
    durable = Resumable(app, store=url, **options)

    @app.post("/sync/{x}")
    def sync_dispatch(x: int) -> dict[str, str]:
        return {"run_id": jobs.double.dispatch(x)}

    @app.post("/async/{x}")
    async def async_dispatch(x: int) -> dict[str, Any]:
        run_id = jobs.double.dispatch(x)
        return {"run_id": run_id, "result": await durable.wait(run_id, timeout=30)}

    @app.get("/result/{run_id}")
    async def result(run_id: str) -> Any:
        return await durable.wait(run_id, timeout=30)

    @app.get("/greeting")
    def greeting(request: Request) -> str:
        return str(request.state.greeting)

    return app, durable


def test_sync_and_async_handlers_dispatch_and_the_in_app_worker_drives(
    jobs: ModuleType, url: str
) -> None:
    app, durable = make_app(jobs, url)
    with TestClient(app) as client:
        assert durable.worker_running
        sync = client.post("/sync/5")
        assert sync.status_code == 200, sync.text
        assert client.get(f"/result/{sync.json()['run_id']}").json() == 10
        done = client.post("/async/7")
        assert done.status_code == 200, done.text
        assert done.json()["result"] == 14
    assert not durable.worker_running
    with Runtime(url) as rt:
        assert rt.result(sync.json()["run_id"]) == 10


def test_the_apps_own_lifespan_is_kept(jobs: ModuleType, url: str) -> None:
    events: list[str] = []
    app, durable = make_app(jobs, url, events)
    with TestClient(app) as client:
        assert events == ["user startup"]
        assert client.get("/greeting").json() == "hello"  # its state reaches requests
        assert client.get(f"/result/{client.post('/sync/1').json()['run_id']}").json() == 2
    assert events == ["user startup", "user shutdown"]
    assert not durable.worker_running


def test_without_the_worker_runs_wait_for_one(jobs: ModuleType, url: str) -> None:
    app, durable = make_app(jobs, url, worker=False)
    with TestClient(app) as client:
        assert not durable.worker_running
        run_id = client.post("/sync/4").json()["run_id"]
        time.sleep(0.3)  # (a negative check: nothing in this process drives it)
        assert durable.runtime.status(run_id) == "pending"
    with Runtime(url) as rt:
        report = asyncio.run(work(rt, drain=True, log=lambda _: None))
        assert report.completed == 1 and rt.result(run_id) == 8


def test_shutdown_stops_the_worker_with_no_further_checkpoint(
    jobs: ModuleType, url: str, tmp_path: Path
) -> None:
    log, gate = tmp_path / "log", tmp_path / "gate"
    app, durable = make_app(jobs, url)
    with TestClient(app):
        run_id = jobs.gated.dispatch(str(log), str(gate), run_id="g")
        wait_until(lambda: lines(log) == ["start"], "the run to start")
        rt = durable.runtime
        wait_until(lambda: rt.get(run_id).seq == 1, "its checkpoint at the await")
        before = rt.get(run_id)
    assert not durable.worker_running
    assert durable.report is not None and durable.report.interrupted == 1
    with Runtime(url) as rt:
        after = rt.get(run_id)
    # Nothing was written for it at shutdown: it stands where it stood, resumable.
    assert (after.seq, after.status, after.checkpoint, after.updated_at, after.attempts) == (
        before.seq,
        before.status,
        before.checkpoint,
        before.updated_at,
        before.attempts,
    )
    assert after.status == "running"
    gate.touch()
    with TestClient(app) as client:  # the next process (here: the app started again)
        assert client.get(f"/result/{run_id}").json() == "done"
    assert lines(log) == ["start", "passed"]  # resumed at its await, not from its start


def test_resumable_refuses_bad_options(jobs: ModuleType, url: str) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Resumable(FastAPI(), store=url, concurrency=0)
    with pytest.raises(TypeError, match="ResumableAPI"):
        Resumable(FastAPI(), store=url, api={"double": jobs.double})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one of"):
        ResumableAPI(functions={"double": jobs.double})
    with pytest.raises(ValueError, match="exactly one of"):
        ResumableAPI(functions={"double": jobs.double}, token="t", hmac_secret="s")
    with pytest.raises(TypeError, match="not a @resumable"):
        ResumableAPI(functions={"double": print}, token="t")  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="function name"):
        ResumableAPI(functions={"a/b": jobs.double}, token="t")
    with pytest.raises(RuntimeError, match="has not started"):
        _ = Resumable(FastAPI(), store=url).runtime


# -- the runs API ------------------------------------------------------------------------


def api_app(jobs: ModuleType, url: str, **auth: Any) -> tuple[FastAPI, Resumable]:
    functions = {"double": jobs.double, "gated": jobs.gated, "pair": jobs.pair}
    functions["waits-event"] = jobs.waits_event
    return make_app(jobs, url, api=ResumableAPI(functions=functions, **auth))


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_the_api_is_off_by_default(jobs: ModuleType, url: str) -> None:
    app, _ = make_app(jobs, url)
    with TestClient(app) as client:
        assert (
            client.post("/resumable/functions/double/runs", json={"args": [1]}).status_code == 404
        )
        assert client.get("/resumable/runs/x", headers=BEARER).status_code == 404
    assert runs_of(url, "double") == []


def test_the_api_with_a_bearer_token(jobs: ModuleType, url: str) -> None:
    app, _ = api_app(jobs, url, token=TOKEN)
    start = "/resumable/functions/double/runs"
    with TestClient(app) as client:
        missing = client.post(start, json={"args": [1]})
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert (
            client.post(
                start, json={"args": [1]}, headers={"Authorization": "Bearer no"}
            ).status_code
            == 403
        )
        assert (
            client.post(start, json={"args": [1]}, headers={"Authorization": TOKEN}).status_code
            == 401
        )
        assert (
            client.get("/resumable/runs/x", headers={"Authorization": "Bearer x"}).status_code
            == 403
        )
        assert runs_of(url, "double") == []  # nothing started without the token
        made = client.post(start, json={"args": [21], "run_id": "d1"}, headers=BEARER)
        assert made.status_code == 202, made.text
        assert made.json()["run_id"] == "d1" and made.json()["function"] == "double"
        read = client.get("/resumable/runs/d1?wait=20", headers=BEARER)
        assert read.status_code == 200
        assert read.json() == {
            "run_id": "d1",
            "function": "double",
            "status": "completed",
            "result": 42,
            "encoding": "json",
        }
        again = client.post(start, json={"kwargs": {"x": 21}, "run_id": "d1"}, headers=BEARER)
        assert again.status_code == 202 and again.json()["run_id"] == "d1"
        other = client.post(start, json={"args": [22], "run_id": "d1"}, headers=BEARER)
        assert other.status_code == 409 and "other arguments" in other.json()["detail"]
        # A value that is not plain JSON comes in the codec's JSON.
        client.post(
            "/resumable/functions/pair/runs", json={"args": [1, 2], "run_id": "p"}, headers=BEARER
        )
        pair = client.get("/resumable/runs/p?wait=20", headers=BEARER).json()
        assert pair["encoding"] == "resumable-codec" and pair["status"] == "completed"
        assert orjson.dumps(pair["result"])  # JSON all the same


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (b'"text"', 422, "JSON object"),
        (b'{"args": 3}', 422, "args must be a JSON array"),
        (b'{"kwargs": [1]}', 422, "kwargs must be a JSON object"),
        (b'{"args": [1], "junk": true}', 422, "unknown fields ['junk']"),
        (b'{"args": [1, 2, 3]}', 422, "cannot start double"),
        (b'{"kwargs": {"y": 1}}', 422, "cannot start double"),
        (b'{"kwargs": {"x": 1, "queue": "q"}}', 422, "never taken from a request"),
        (b'{"args": [1], "run_id": "a/b"}', 422, "contains '/'"),
        (b'{"args": [1], "run_id": ""}', 422, "cannot be empty"),
        (b'{"args": [1], "run_id": 5}', 422, "run_id must be a JSON string"),
        (b'{"function": "fastapi_jobs:pair", "args": [1]}', 422, "unknown fields ['function']"),
    ],
)
def test_the_api_refuses_bad_bodies_with_4xx(
    jobs: ModuleType, url: str, body: bytes, status: int, words: str
) -> None:
    app, _ = api_app(jobs, url, token=TOKEN)
    with TestClient(app) as client:
        got = client.post("/resumable/functions/double/runs", content=body, headers=BEARER)
        assert got.status_code == status, got.text
        assert words in got.json()["detail"]
    assert runs_of(url, "double") == runs_of(url, "pair") == []


def test_the_api_starts_only_functions_of_its_allowlist(jobs: ModuleType, url: str) -> None:
    app, durable = api_app(jobs, url, token=TOKEN)
    with TestClient(app) as client:
        for name in ("fails", "fastapi_jobs:fails", "fastapi_jobs.fails", "..", "double2"):
            got = client.post(
                f"/resumable/functions/{name}/runs", json={"args": ["x"]}, headers=BEARER
            )
            assert got.status_code == 404, (name, got.text)
        assert runs_of(url, "fails") == []
        # A run of a function outside the allowlist is not shown either.
        hidden = jobs.fails.dispatch("x", run_id="hidden")
        assert client.get(f"/resumable/runs/{hidden}", headers=BEARER).status_code == 404
        assert client.get("/resumable/runs/nothing", headers=BEARER).status_code == 404
        assert (
            client.post(f"/resumable/runs/{hidden}/events/go", json={}, headers=BEARER).status_code
            == 404
        )
        assert durable.runtime.status(hidden) in ("pending", "running", "failed")


def test_the_api_sends_events(jobs: ModuleType, url: str) -> None:
    app, _ = api_app(jobs, url, token=TOKEN)
    with TestClient(app) as client:
        made = client.post(
            "/resumable/functions/waits-event/runs", json={"run_id": "e"}, headers=BEARER
        )
        assert made.status_code == 202, made.text
        sent = client.post(
            "/resumable/runs/e/events/go",
            json={"payload": {"ok": [1, 2]}, "dedup_key": "k"},
            headers=BEARER,
        )
        assert sent.status_code == 202 and sent.json() == {"sent": True}
        resent = client.post(
            "/resumable/runs/e/events/go", json={"payload": 1, "dedup_key": "k"}, headers=BEARER
        )
        assert resent.json() == {"sent": False}
        done = client.get("/resumable/runs/e?wait=20", headers=BEARER).json()
        assert done["status"] == "completed" and done["result"] == {"ok": [1, 2]}
        late = client.post("/resumable/runs/e/events/go", json={"payload": 2}, headers=BEARER)
        assert late.status_code == 409
        junk = client.post(
            "/resumable/runs/e/events/go", json={"payload": 2, "x": 1}, headers=BEARER
        )
        assert junk.status_code == 422
        assert client.get("/resumable/runs/e?wait=nope", headers=BEARER).status_code == 422


def test_the_api_shows_a_failed_run(jobs: ModuleType, url: str) -> None:
    app, _ = make_app(jobs, url, api=ResumableAPI(functions={"fails": jobs.fails}, token=TOKEN))
    with TestClient(app) as client:
        client.post(
            "/resumable/functions/fails/runs",
            json={"args": ["bad day"], "run_id": "f"},
            headers=BEARER,
        )
        got = client.get("/resumable/runs/f?wait=20", headers=BEARER).json()
        assert got["status"] == "failed"
        assert got["error"] == {"type": "builtins.ValueError", "message": "bad day"}


def test_the_api_with_hmac_signatures(jobs: ModuleType, url: str) -> None:
    app, _ = api_app(jobs, url, hmac_secret=SECRET)
    path = "/resumable/functions/double/runs"
    body = orjson.dumps({"args": [4], "run_id": "h"})
    with TestClient(app) as client:

        def post(headers: dict[str, str], content: bytes = body) -> int:
            headers = {**headers, "content-type": "application/json"}
            return client.post(path, content=content, headers=headers).status_code

        assert post({}) == 401
        assert post(BEARER) == 401
        assert post(sign(b"other secret", "POST", path, body)) == 403
        assert post(sign(SECRET, "POST", path, body, time.time() - 3600)) == 403  # too old
        assert post(sign(SECRET, "POST", "/elsewhere", body)) == 403
        assert post(sign(SECRET, "GET", path, body)) == 403
        assert post(sign(SECRET, "POST", path, body), body.replace(b"4", b"5")) == 403
        bad = sign(SECRET, "POST", path, body)
        bad["X-Resumable-Timestamp"] = "soon"
        assert post(bad) == 403
        assert runs_of(url, "double") == []
        good = sign(SECRET, "POST", path, body)
        assert post(good) == 202
        assert post(good) == 403  # the same signed request again: a replay
        read = "/resumable/runs/h?wait=20"
        got = client.get(read, headers=sign(SECRET, "GET", read))
        assert got.status_code == 200 and got.json()["result"] == 8
        assert (
            client.get(read, headers=sign(SECRET.decode(), "GET", read.split("?")[0])).status_code
            == 403
        )
