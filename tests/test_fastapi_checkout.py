"""The example app, examples/fastapi_checkout/app.py, as it is deployed: a
copy of its folder compiled with `resumable compile .` and served by a real
uvicorn process (`python -m uvicorn app:app --port N`), called over real
HTTP. The server is killed (SIGKILL) once the card is charged and before
the order completes; started again, it completes the order without charging
again, and a resend of the order answers the same run. Malformed orders get
4xx, never 5xx."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.procs import clean_env, lines, resumable_cmd, rows, wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_checkout"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """(status, JSON answer) of a request; `body` is sent as JSON, `raw` as it is."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


@dataclass
class Server:
    folder: Path
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, **env: str) -> None:
        self.port = free_port()
        out = open(self.folder / "server.log", "ab")  # noqa: SIM115 (the process holds it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(self.port)],
            cwd=self.folder,
            env={**self.env, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()

        def up() -> bool:
            try:
                return http("GET", f"{self.url}/openapi.json")[0] == 200
            except OSError:
                return False

        try:
            wait_until(up, "the server to answer", proc=self.proc)  # type: ignore[arg-type]
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log()}") from None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def post(self, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        return http("POST", self.url + path, body, raw)

    def get(self, path: str) -> tuple[int, Any]:
        return http("GET", self.url + path)


def deploy(folder: Path, **env: str) -> Server:
    """A copy of the example's folder, compiled as the README says."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "app.py", folder / "app.py")
    environment = clean_env(**env)
    compiled = resumable_cmd("compile", ".", cwd=folder, env=environment)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert (folder / "__resumable__" / "app.py").exists()
    return Server(folder, environment)


def test_a_killed_server_completes_the_order_without_charging_again(tmp_path: Path) -> None:
    server = deploy(tmp_path / "shop")  # the default store: .resumable/state.db
    db = server.folder / ".resumable" / "state.db"
    data = server.folder / ".resumable" / "checkout"
    order = {"user_id": "user_123", "order_id": "order-456"}
    server.start(CHECKOUT_SLOW_EMAIL="60")  # the email takes long: a window to kill it in
    try:
        assert server.post("/buy", order) == (202, {"run_id": "order-456"})

        def charged() -> bool:
            done = rows(db, "function LIKE '%:charge_credit_card' AND status = 'completed'")
            return bool(done) and len(lines(data / "charges.log")) == 1

        wait_until(charged, "the card to be charged", proc=server.proc)  # type: ignore[arg-type]
        status, shown = server.get("/orders/order-456")
        assert status == 200 and shown["status"] != "completed", shown
        assert lines(data / "completed.log") == []
    finally:
        server.stop(signal.SIGKILL)
    assert lines(data / "completed.log") == []  # killed before the order completed

    server.start()  # the same folder and store; the mail goes fast now
    try:

        def completed() -> Any:
            status, shown = server.get("/orders/order-456?wait=5")
            assert status == 200, shown
            return shown if shown["status"] == "completed" else None

        shown = wait_until(completed, "the order to complete", proc=server.proc)  # type: ignore[arg-type]
        assert shown == {
            "order_id": "order-456",
            "status": "completed",
            "receipt_id": "receipt-order-456",
        }
        assert len(lines(data / "charges.log")) == 1  # the completed charge never ran again
        assert lines(data / "completed.log") == ["order-456"]
        # The mail server failed twice (counted durably, across the kill), then it was sent.
        assert [line.rsplit(" ", 1)[1] for line in lines(data / "emails.log")] == ["3"]
        assert server.post("/buy", order) == (202, {"run_id": "order-456"})
        assert server.post("/buy", {**order, "user_id": "user_999"})[0] == 409
        assert len(lines(data / "charges.log")) == 1
        assert [r["run_id"] for r in rows(db, "parent IS NULL")] == ["order-456"]
    finally:
        code = server.stop()
    assert clean_exit(code, server.log())  # SIGTERM: a clean shutdown, the worker stopped


def clean_exit(code: int, log: str) -> bool:
    """Whether uvicorn shut down cleanly (the app's lifespan ended: the
    worker stopped); uvicorn re-raises SIGTERM once done, so its exit status
    may be -SIGTERM rather than 0."""
    assert code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log, log
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the checks that do not restart it, its store named by
    $RESUMABLE_STORE and its side effects in $CHECKOUT_DATA."""
    folder = tmp_path_factory.mktemp("shop")
    store = folder / "elsewhere" / "orders.db"
    data = folder / "effects"
    server = deploy(folder / "app", RESUMABLE_STORE=f"sqlite:///{store}", CHECKOUT_DATA=str(data))
    server.start()
    yield server
    assert clean_exit(server.stop(), server.log())
    assert store.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"",
        b"[]",
        b'"order"',
        b"{}",
        b'{"user_id": "u1"}',
        b'{"order_id": "o1"}',
        b'{"user_id": 5, "order_id": "o1"}',
        b'{"user_id": "u1", "order_id": 7}',
        b'{"user_id": "u1", "order_id": null}',
        b'{"user_id": ["u1"], "order_id": "o1"}',
        b'{"user_id": "", "order_id": "o1"}',
        b'{"user_id": "u1", "order_id": "o1", "junk": 1}',
        b'{"user_id": "u1", "order_id": "o1"} trailing',
        b'{"user_id": "\\ud800", "order_id": "o1"',
        b'{"user_id": "\\ud800", "order_id": "o1"}',  # a lone surrogate: valid JSON, not UTF-8
        b'{"user_id": "u1", "order_id": "\\udfff"}',
        b'{"user_id": "' + b"x" * 100_000 + b'", "order_id": "o1"}',  # too large
    ],
)
def test_malformed_orders_get_4xx(server: Server, raw: bytes) -> None:
    status, answer = server.post("/buy", raw=raw)
    assert 400 <= status < 500, (status, answer)
    assert server.get("/orders/o1")[0] == 404  # nothing was started


@pytest.mark.parametrize("order_id", ["", "a/b", "x" * 201, "line\nbreak", "bidi\u202e"])
def test_an_order_id_that_is_not_a_run_id_gets_4xx(server: Server, order_id: str) -> None:
    status, answer = server.post("/buy", {"user_id": "u1", "order_id": order_id})
    assert 400 <= status < 500, (status, answer)
    assert status == 422 and "order_id" in json.dumps(answer)


def test_the_same_order_answers_the_same_run_and_another_one_409(server: Server) -> None:
    order = {"user_id": "u7", "order_id": "order-7"}
    assert server.post("/buy", order) == (202, {"run_id": "order-7"})
    assert server.post("/buy", order) == (202, {"run_id": "order-7"})
    status, answer = server.post("/buy", {"user_id": "u8", "order_id": "order-7"})
    assert status == 409 and "other" in answer["detail"], answer
    status, shown = wait_until(
        lambda: (got := server.get("/orders/order-7?wait=5"))[1]["status"] == "completed" and got,
        "the order to complete",
    )
    assert status == 200 and shown["receipt_id"] == "receipt-order-7"
    assert server.get("/orders/order-404")[0] == 404
    assert server.get("/orders/order-7?wait=-1")[0] == 422
    assert server.get("/resumable/runs/order-7")[0] == 404  # the runs API is off
