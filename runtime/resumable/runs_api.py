"""The optional HTTP endpoints of the FastAPI integration (fastapi.py):
start runs of an allowlist of functions, read them, send them events,
behind a bearer token or an HMAC signature (docs/fastapi.md).

This module imports the real `fastapi` library: imports inside the package
are absolute unless written with a dot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

try:
    from fastapi import APIRouter, Depends, HTTPException, Request
    from fastapi.responses import JSONResponse
except ImportError as e:  # the extra is not installed
    raise ImportError(
        f"resumable.fastapi needs FastAPI ({e}): pip install 'resumable[fastapi]'"
    ) from None

from . import codec
from .codec import Unencodable
from .errors import (
    DuplicateRun,
    RunCancelled,
    RunConflict,
    SerializationError,
    StoreUnavailable,
)
from .function import BoundFunction, Function
from .ids import check_run_id
from .runtime import Runtime
from .store import COMPLETED, FINISHED

__all__ = ["ResumableAPI", "sign"]


class _HasRuntime(Protocol):
    """What serves the routes (fastapi.Resumable): its runtime, once the app started."""

    @property
    def runtime(self) -> Runtime: ...


# -- the optional HTTP API -----------------------------------------------------------------

#: Names of the allowlist: what may stand in a URL path segment.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: Keywords of `dispatch` itself, refused as argument names in a request.
_DISPATCH_KEYWORDS = frozenset({"run_id", "queue", "priority", "dedup_key"})
#: Request bodies beyond this are refused (413).
MAX_BODY = 1 << 20

TIMESTAMP_HEADER = "x-resumable-timestamp"
SIGNATURE_HEADER = "x-resumable-signature"


def sign(
    secret: str | bytes,
    method: str,
    path: str,
    body: bytes = b"",
    timestamp: float | None = None,
) -> dict[str, str]:
    """The headers that sign a request to a ResumableAPI with `hmac_secret`:
    `X-Resumable-Timestamp` (Unix seconds) and `X-Resumable-Signature`
    (`sha256=` HMAC-SHA256, hex, of "<timestamp>\\n<METHOD>\\n<path>\\n"
    followed by the body; `path` with its query string exactly as sent: percent-encoded)."""
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return {
        "X-Resumable-Timestamp": stamp,
        "X-Resumable-Signature": "sha256=" + _mac(_secret(secret), stamp, method, path, body),
    }


def _request_target(request: Request) -> str:
    """The path and query as the client sent them (percent-encoded, as HTTP
    clients sign them), not as decoded for routing."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    target = bytes(raw).decode("latin-1")
    return target + ("?" + bytes(query).decode("latin-1") if query else "")


def _secret(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _mac(secret: bytes, stamp: str, method: str, path: str, body: bytes) -> str:
    message = f"{stamp}\n{method.upper()}\n{path}\n".encode() + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class ResumableAPI:
    """HTTP endpoints for runs of an allowlist of functions, served by
    `Resumable(app, api=ResumableAPI(...))`; nothing is served without it.

        POST {prefix}/functions/{name}/runs   {"args": [...], "kwargs": {...}, "run_id": "..."}
             -> 202 {"run_id": ..., "function": name, "status": ...}
        GET  {prefix}/runs/{run_id}[?wait=seconds]
             -> 200 {"run_id", "function", "status", "result" | "error"}
        POST {prefix}/runs/{run_id}/events/{event}   {"payload": ..., "dedup_key": "..."}
             -> 202 {"sent": true|false}

    functions: {name: decorated function}; a request names one by its key
    here, never by its function id, and reaches only runs of these.
    token: requests carry `Authorization: Bearer <token>`; or hmac_secret:
    requests carry `sign(...)`'s headers, a timestamp at most `max_skew`
    seconds off, and each signature is taken once (a replay is refused).
    One of the two is required. `max_wait`: the longest `?wait=` (seconds)."""

    def __init__(
        self,
        *,
        functions: Mapping[str, Function | BoundFunction],
        prefix: str = "/resumable",
        token: str | None = None,
        hmac_secret: str | bytes | None = None,
        max_skew: float = 300.0,
        max_wait: float = 30.0,
    ) -> None:
        if not isinstance(functions, Mapping) or not functions:
            raise ValueError("ResumableAPI(functions=...) takes {name: decorated function}")
        for name, fn in functions.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ValueError(
                    f"ResumableAPI: function name {name!r} must match {_NAME.pattern} "
                    "(it stands in a URL)"
                )
            if not isinstance(fn, Function | BoundFunction):
                raise TypeError(f"ResumableAPI: {name!r} is not a @resumable.function: {fn!r:.80}")
        if (token is None) == (hmac_secret is None):
            raise ValueError(
                "ResumableAPI starts runs over HTTP: give exactly one of token=... (a bearer "
                "token) or hmac_secret=... (signed requests)"
            )
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("ResumableAPI(token=...) is a non-empty str")
        if hmac_secret is not None and not (isinstance(hmac_secret, str | bytes) and hmac_secret):
            raise ValueError("ResumableAPI(hmac_secret=...) is a non-empty str or bytes")
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(
                f"ResumableAPI(prefix=...) starts with '/' and does not end with one: {prefix!r}"
            )
        if not (max_skew > 0 and math.isfinite(max_skew)):
            raise ValueError(f"ResumableAPI(max_skew=...) is seconds > 0, not {max_skew!r}")
        self.functions = dict(functions)
        self.prefix = prefix
        self.max_skew = float(max_skew)
        self.max_wait = float(max_wait)
        self._token = None if token is None else token.encode()
        self._secret = None if hmac_secret is None else _secret(hmac_secret)
        #: Signatures taken, with when they may be forgotten (their timestamp is too old then).
        self._seen: dict[str, float] = {}
        #: function id -> its name in the allowlist (the first one).
        self._names: dict[str, str] = {}
        for name, fn in self.functions.items():
            self._names.setdefault(fn.function_id, name)

    # -- authentication ---------------------------------------------------------------

    async def authorize(self, request: Request) -> bytes:
        """The request's body, once its credentials are checked: 401 without
        any, 403 with wrong ones (compared in constant time)."""
        body = await _body(request)
        if self._token is not None:
            header = request.headers.get("authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                raise HTTPException(
                    401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
                )
            if not hmac.compare_digest(given.strip().encode(), self._token):
                raise HTTPException(403, "wrong bearer token")
            return body
        assert self._secret is not None
        stamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not stamp or not signature:
            raise HTTPException(
                401,
                f"missing signature: sign the request ({TIMESTAMP_HEADER}, {SIGNATURE_HEADER})",
            )
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise HTTPException(403, f"{TIMESTAMP_HEADER} is Unix seconds")
        now = time.time()
        if abs(now - int(stamp)) > self.max_skew:
            raise HTTPException(403, f"{TIMESTAMP_HEADER} is more than {self.max_skew:g} s off")
        path = _request_target(request)
        expected = "sha256=" + _mac(self._secret, stamp, request.method, path, body)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise HTTPException(403, "wrong signature")
        self._seen = {s: t for s, t in self._seen.items() if t > now}
        if expected in self._seen:
            raise HTTPException(403, "this signed request was sent already (replay refused)")
        self._seen[expected] = int(stamp) + self.max_skew + 1
        return body

    # -- the routes -------------------------------------------------------------------

    def router(self, app: _HasRuntime) -> APIRouter:
        router = APIRouter(prefix=self.prefix, tags=["resumable"])
        Body = Depends(self.authorize)

        @router.post("/functions/{name}/runs", status_code=202)
        async def start_run(name: str, body: bytes = Body) -> JSONResponse:
            fn = self.functions.get(name)
            if fn is None:
                raise HTTPException(404, f"no function {name!r} here")
            fields = _fields(body, {"args": list, "kwargs": dict, "run_id": str})
            args = fields.get("args", [])
            kwargs = fields.get("kwargs", {})
            run_id = fields.get("run_id")
            reserved = sorted(set(kwargs) & _DISPATCH_KEYWORDS)
            if reserved:  # dispatch's own keywords: never taken from a request
                raise HTTPException(
                    422,
                    f"kwargs: {reserved} are dispatch's own keywords, never taken from a "
                    "request (a parameter of that name goes in args)",
                )
            if run_id is not None:
                _check_id(run_id)
            rt = app.runtime
            try:
                started = await asyncio.to_thread(rt.dispatch, fn, *args, run_id=run_id, **kwargs)
                status = (await asyncio.to_thread(rt.get, started)).status
            except RunConflict as e:
                raise HTTPException(409, str(e)) from None
            except DuplicateRun as e:
                raise HTTPException(409, str(e)) from None
            except (TypeError, ValueError, SerializationError) as e:
                text = str(e)
                prefix = f"cannot start {name}: "
                raise HTTPException(
                    422, text if text.startswith(prefix) else prefix + text
                ) from None
            except StoreUnavailable as e:
                raise HTTPException(503, f"the store is unavailable: {e}") from None
            return JSONResponse(
                {"run_id": started, "function": name, "status": status}, status_code=202
            )

        @router.get("/runs/{run_id}")
        async def read_run(run_id: str, request: Request, _: bytes = Body) -> JSONResponse:
            _check_id(run_id)
            wait = request.query_params.get("wait")
            rt = app.runtime
            name = await self._name_of(rt, run_id)
            if wait is not None:
                try:
                    seconds = float(wait)
                except ValueError:
                    seconds = math.nan
                if not (0 <= seconds <= self.max_wait):
                    raise HTTPException(422, f"wait is seconds from 0 to {self.max_wait:g}")
                with contextlib.suppress(Exception, RunCancelled):
                    await rt.wait(run_id, timeout=seconds)  # its outcome is read below
            return JSONResponse(await asyncio.to_thread(_describe, rt, run_id, name))

        @router.post("/runs/{run_id}/events/{event}", status_code=202)
        async def send_event(run_id: str, event: str, body: bytes = Body) -> JSONResponse:
            _check_id(run_id)
            rt = app.runtime
            await self._name_of(rt, run_id)
            fields = _fields(body, {"payload": object, "dedup_key": str})
            try:
                sent = await asyncio.to_thread(
                    rt.send_event,
                    run_id,
                    event,
                    fields.get("payload"),
                    dedup_key=fields.get("dedup_key"),
                )
            except LookupError:
                raise HTTPException(404, f"no run {run_id!r}") from None
            except ValueError as e:  # the run has ended
                raise HTTPException(409, str(e)) from None
            except (TypeError, SerializationError) as e:
                raise HTTPException(422, str(e)) from None
            return JSONResponse({"sent": sent}, status_code=202)

        return router

    async def _name_of(self, rt: Runtime, run_id: str) -> str:
        """The allowlist name of the run's function; 404 for an unknown run
        or a run of a function not in the allowlist (the same answer)."""
        record = await rt.store.io(rt.store.get, run_id)
        name = None if record is None else self._names.get(record.function)
        if name is None:
            raise HTTPException(404, f"no run {run_id!r} here")
        return name


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # (starlette's cache: the stream is consumed)
    return body


def _fields(body: bytes, allowed: dict[str, type]) -> dict[str, Any]:
    """The body as a JSON object with only `allowed` keys of their types
    (an empty body is {}); 400/422 with what is wrong."""
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPException(400, f"the body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise HTTPException(422, f"the body must be a JSON object, with the keys {sorted(allowed)}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise HTTPException(422, f"unknown fields {unknown}: the body has only {sorted(allowed)}")
    for key, kind in allowed.items():
        value = data.get(key)
        if value is not None and kind is not object and not isinstance(value, kind):
            raise HTTPException(422, f"{key} must be a JSON {_JSON_KIND[kind]}")
    return {k: v for k, v in data.items() if v is not None}


_JSON_KIND: dict[type, str] = {list: "array", dict: "object", str: "string"}


def _check_id(run_id: object) -> None:
    try:
        check_run_id(run_id)
    except (TypeError, ValueError) as e:
        raise HTTPException(422, str(e)) from None


def _describe(rt: Runtime, run_id: str, name: str) -> dict[str, Any]:
    """A run as JSON: its status, and once it has ended its result (the
    codec's JSON of the value: the value itself when it is plain JSON,
    `"encoding"` says which) or its error (type and message)."""
    record = rt.get(run_id)
    out: dict[str, Any] = {"run_id": run_id, "function": name, "status": record.status}
    if record.status not in FINISHED:
        if record.reason:
            out["reason"] = record.reason
        return out
    try:
        value = rt.result(run_id)
    except (Exception, RunCancelled) as e:
        kind = type(e)
        out["error"] = {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(e)}
        return out
    assert record.status == COMPLETED
    try:
        tree, plain = codec.encode_tree(value, rt.limits)
    except Unencodable as e:
        out["error"] = {"type": "resumable.SerializationError", "message": e.reason}
        return out
    out["result"] = tree
    out["encoding"] = "json" if plain else "resumable-codec"
    return out
