"""The ModelsLab client: outpaint and fetch over httpx, every reply normalised."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from typing import Any

import httpx

from service import metrics
from service.clock import utcnow
from service.domain import jsonsafe
from service.domain.circuit import Circuit, State
from service.domain.redaction import redact
from service.domain.replies import ProviderReply, ReplyKind
from service.domain.scheduling import retry_after_seconds
from service.provider.replies import as_number, parse_reply, speaks_of_capacity

RETRYABLE_STATUS = frozenset({408, 425, 429})
CIRCUIT_LEVELS = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}


class ProviderError(Exception):
    kind = "provider_error"


class RetryableProviderError(ProviderError):
    """Try again later: 429, 5xx, a timeout, a connection error, or an unreadable reply."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    """A verdict on the request itself (400, 401, 402, 403, other 4xx): do not retry."""

    kind = "rejected"

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _body(response: httpx.Response) -> Any:
    """The reply as strict JSON (no NaN, no NUL, bounded nesting: what we store must load
    back), or None."""
    try:
        return jsonsafe.loads(response.content)
    except ValueError:  # UnsafeJson, JSONDecodeError, UnicodeDecodeError
        return None


def _message(data: Any, response: httpx.Response) -> str:
    if isinstance(data, dict):
        for name in ("message", "messege", "error", "detail"):
            if data.get(name):
                return str(data[name])[:500]
    return f"HTTP {response.status_code}"


def _retry_after(data: Any, response: httpx.Response) -> float | None:
    """The body's `retry_after` (seconds), else the `Retry-After` header (seconds or an
    HTTP date). Callers clamp it to the job's deadline."""
    if isinstance(data, dict) and as_number(data.get("retry_after")) is not None:
        return as_number(data.get("retry_after"))
    return retry_after_seconds(response.headers.get("retry-after"), utcnow())


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class ModelsLabClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_seconds: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
        circuit: Circuit | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        # The provider's health, fed by every call; the workers ask it before claiming.
        self.circuit = circuit or Circuit()
        # The circuit's changes, for the workers to follow (`circuit_change`); a process
        # without workers lets the few newest stand (changes are rare: one per outage).
        self._changes: asyncio.Queue[State] = asyncio.Queue(maxsize=16)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
            follow_redirects=False,
            headers={"user-agent": "outpaint-jobs/0.1"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(self, fields: dict[str, Any], webhook: str, track_id: int) -> ProviderReply:
        body = {**fields, "key": self._key, "webhook": webhook, "track_id": track_id}
        return await self._post(
            f"{self.base_url}/image_editing/outpaint", body, "submit", secrets=(webhook,)
        )

    async def fetch(self, fetch_result: str | None, provider_id: str | None) -> ProviderReply:
        """Poll one generation: its `fetch_result` URL when it is on the provider's own
        host (the key goes in the body, so never to anyone else), else fetch/{id}."""
        if fetch_result and self._is_provider_url(fetch_result):
            url = fetch_result
        elif provider_id:
            url = f"{self.base_url}/image_editing/fetch/{provider_id}"
        else:
            raise ProviderRejected(0, "no fetch_result and no provider id to poll")
        return await self._post(url, {"key": self._key}, "fetch", secrets=())

    def _is_provider_url(self, url: str) -> bool:
        """The provider's own origin (scheme, host and port alike), or, for a named host,
        a subdomain of its registered domain (`api.modelslab.com` for `modelslab.com`).
        Parsed as httpx will send it, so `127.0.0.1:18406.evil.test` is not ours."""
        try:
            ours, theirs = httpx.URL(self.base_url), httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            return False
        if theirs.scheme not in ("http", "https") or not theirs.host or theirs.userinfo:
            return False
        if (theirs.scheme, theirs.host, theirs.port) == (ours.scheme, ours.host, ours.port):
            return True
        if theirs.scheme != "https" or theirs.port is not None or _is_address(ours.host):
            return False
        domain = ".".join(ours.host.split(".")[-2:])
        return "." in domain and theirs.host.endswith("." + domain)

    async def _post(
        self, url: str, body: dict[str, Any], operation: str, secrets: tuple[str, ...]
    ) -> ProviderReply:
        """Replies and error messages come back with our key and the webhook URL (which
        holds the job's token) redacted, so they can be stored and logged."""
        started = time.perf_counter()
        hidden = (self._key, *secrets)
        try:
            reply = await self._call(url, body, operation, hidden)
        except ProviderRejected as exc:
            metrics.PROVIDER_ERRORS.labels(operation, exc.kind).inc()
            self._heard(None)
            raise ProviderRejected(exc.status_code, redact(exc.message, hidden)) from None
        except RetryableProviderError as exc:
            metrics.PROVIDER_ERRORS.labels(operation, exc.kind).inc()
            self._heard(exc.kind)
            raise RetryableProviderError(
                exc.kind, redact(str(exc), hidden), exc.retry_after
            ) from None
        finally:
            metrics.PROVIDER_LATENCY.labels(operation).observe(time.perf_counter() - started)
        self._heard(None)
        return reply

    def _heard(self, failure: str | None) -> None:
        """Feed the circuit: an outage answer (connection, timeout, 5xx), or any other
        answer, which shows the provider is there."""
        before = self.circuit.state
        now = time.monotonic()
        if failure is None:
            self.circuit.succeeded(now)
        else:
            self.circuit.failed(failure, now)
        after = self.circuit.state
        if after is not before:
            metrics.CIRCUIT.set(CIRCUIT_LEVELS[after])
            if after is State.OPEN:
                metrics.CIRCUIT_OPENED.inc()
            self._changed(after)

    def may_call(self, wanted: int) -> int:
        """How many calls may start now (the circuit: all, the one probe, or none)."""
        before = self.circuit.state
        granted = self.circuit.capacity(time.monotonic(), wanted)
        if self.circuit.state is not before:
            metrics.CIRCUIT.set(CIRCUIT_LEVELS[self.circuit.state])
            self._changed(self.circuit.state)
        return granted

    def _changed(self, state: State) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._changes.put_nowait(state)

    async def circuit_change(self) -> State:
        """The circuit's next change (its state after it), as it happens."""
        return await self._changes.get()

    def unused(self, granted: int, used: int) -> None:
        """Calls granted by `may_call` that were not made (nothing was due)."""
        if used < granted and self.circuit.state is State.HALF_OPEN:
            self.circuit.probing = False

    async def _call(
        self, url: str, body: dict[str, Any], operation: str, hidden: tuple[str, ...]
    ) -> ProviderReply:
        try:
            response = await self._http.post(url, json=body)
        except httpx.TimeoutException as exc:
            raise RetryableProviderError("timeout", f"{operation} timed out") from exc
        except httpx.TransportError as exc:
            raise RetryableProviderError(
                "connection", f"{operation}: {type(exc).__name__}"
            ) from exc
        data = _body(response)
        code = response.status_code
        if code == 429 or code in RETRYABLE_STATUS:
            raise RetryableProviderError(
                "rate_limited", _message(data, response), _retry_after(data, response)
            )
        if code >= 500:
            raise RetryableProviderError(
                "server_error", _message(data, response), _retry_after(data, response)
            )
        if 300 <= code < 400:
            raise RetryableProviderError("redirect", f"{operation}: unexpected HTTP {code}")
        if code >= 400:
            raise ProviderRejected(code, _message(data, response))
        if data is None:
            raise RetryableProviderError("bad_reply", f"{operation}: reply is not JSON")
        reply = parse_reply(redact(data, hidden))
        if reply.kind is ReplyKind.ERROR and speaks_of_capacity(reply.message):
            raise RetryableProviderError(
                "rate_limited", reply.message or "queue full", _retry_after(data, response)
            )
        return reply
