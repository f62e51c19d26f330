"""Callback surfaces of the API: replay, callback status, a client's default URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.app import create_app
from service.domain.changes import cancel
from tests.conftest import Api, make_settings, now

# Loopback (no worker runs here, so nothing is ever sent), allowed by the setting below.
CB = "http://127.0.0.1:9/hooks/outpaint"
BODY = {"image": "https://example.invalid/in.png"}


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    # port 9: the mounted simulator's address, so a refresh's poll is refused at once
    settings = make_settings(db_url, allow_private_callbacks=True, port=9)
    app = create_app(settings, run_workers=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app.state.ctx.store, settings)


async def finished(api: Api, headers: dict[str, str], **extra: object) -> dict:  # type: ignore[type-arg]
    job = (await api.client.post("/v1/jobs", json={**BODY, **extra}, headers=headers)).json()
    stored = await api.store.jobs.get_job(job["id"])
    assert stored is not None
    await api.store.changes.apply_change(stored, cancel(), now())
    return (await api.client.get(f"/v1/jobs/{job['id']}", headers=headers)).json()  # type: ignore[no-any-return]


async def test_a_finished_job_shows_its_callback_pending_and_can_be_replayed(api: Api) -> None:
    headers = await api.key()
    job = await finished(api, headers, callback_url=CB)
    assert job["callback_url"] == CB and job["callback_status"] == "pending"
    r = await api.client.post(f"/v1/jobs/{job['id']}/callbacks/replay", headers=headers)
    assert r.status_code == 202 and r.json()["webhook_id"].startswith("msg_")
    again = await api.client.post(f"/v1/jobs/{job['id']}/callbacks/replay", headers=headers)
    assert again.json()["webhook_id"] == r.json()["webhook_id"]


async def test_replay_without_a_callback_or_before_the_end(api: Api) -> None:
    headers = await api.key()
    plain = await finished(api, headers)
    assert plain["callback_status"] is None
    assert (
        await api.client.post(f"/v1/jobs/{plain['id']}/callbacks/replay", headers=headers)
    ).status_code == 409
    running = (
        await api.client.post("/v1/jobs", json={**BODY, "callback_url": CB}, headers=headers)
    ).json()
    assert (
        await api.client.post(f"/v1/jobs/{running['id']}/callbacks/replay", headers=headers)
    ).status_code == 409


async def test_replay_is_the_owners_only(api: Api) -> None:
    job = await finished(api, await api.key("team-a"), callback_url=CB)
    url = f"/v1/jobs/{job['id']}/callbacks/replay"
    assert (
        await api.client.post(url, headers=await api.key("team-b", "jobs:write"))
    ).status_code == 404
    assert (await api.client.post(url, headers=await api.key("ops", "ops:read"))).status_code == 403


async def test_a_clients_default_callback_url_is_used_when_a_job_names_none(api: Api) -> None:
    headers = await api.key("team-a")
    assert await api.store.clients.set_default_callback("team-a", CB)
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    assert job["callback_url"] == CB
    own = (
        await api.client.post(
            "/v1/jobs", json={**BODY, "callback_url": "http://127.0.0.1:9/x"}, headers=headers
        )
    ).json()
    assert own["callback_url"] == "http://127.0.0.1:9/x"
    theirs = (await api.client.post("/v1/jobs", json=BODY, headers=await api.key("team-b"))).json()
    assert theirs["callback_url"] is None


async def test_every_action_names_the_key_that_asked(api: Api) -> None:
    """Cancel, refresh and replay each leave an event with the acting key's prefix."""
    from tests.factories import processing_job

    headers = await api.key()
    prefix = (await api.store.clients.list_keys())[0].prefix
    events = lambda job_id: api.client.get(f"/v1/jobs/{job_id}/events", headers=headers)  # noqa: E731

    job = (
        await api.client.post("/v1/jobs", json={**BODY, "callback_url": CB}, headers=headers)
    ).json()
    assert (
        await api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    ).status_code == 200
    r = await api.client.post(f"/v1/jobs/{job['id']}/callbacks/replay", headers=headers)
    assert r.status_code == 202
    items = (await events(job["id"])).json()["items"]
    actions = [e["detail"] for e in items if e["kind"] == "action"]
    assert actions == [{"action": "cancel", "key": prefix}]
    [replay] = [e["detail"] for e in items if e["kind"] == "callback_replay"]
    assert replay["key"] == prefix

    client_id = (
        await api.store.clients.authenticate(headers["Authorization"][7:], now())
    ).client_id  # type: ignore[union-attr]
    running = await processing_job(api.store, client_id, now())
    assert (
        await api.client.post(f"/v1/jobs/{running.public_id}/refresh", headers=headers)
    ).status_code in (200, 202)
    items = (await events(running.public_id)).json()["items"]
    assert {"action": "refresh", "key": prefix} in [
        e["detail"] for e in items if e["kind"] == "action"
    ]
