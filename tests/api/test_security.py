"""Tenancy, scopes, SSRF, abuse limits and keys, on every route."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from service.netguard import check_callback, is_forbidden
from tests.conftest import Api, now
from tests.factories import IMAGE, client_id

BODY = {"image": IMAGE, "prompt": "x"}


# --- every route, every boundary ----------------------------------------------------------

ROUTES = [
    ("GET", "/v1/jobs/{id}", "jobs:read"),
    ("GET", "/v1/jobs/{id}/events", "jobs:read"),
    ("POST", "/v1/jobs/{id}/event-links", "jobs:read"),
    ("POST", "/v1/jobs/{id}/cancel", "jobs:write"),
    ("POST", "/v1/jobs/{id}/refresh", "jobs:write"),
    ("POST", "/v1/jobs/{id}/callbacks/replay", "jobs:write"),
    ("GET", "/v1/jobs", "jobs:read"),
    ("POST", "/v1/jobs", "jobs:write"),
    ("GET", "/v1/stats", "ops:read"),
]
WRONG_SCOPE = {
    "jobs:read": "jobs:write",
    "jobs:write": "jobs:read",
    "ops:read": "jobs:read,jobs:write",
}


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
async def test_every_route_refuses_missing_wrong_and_underscoped_keys(
    api: Api, method: str, path: str, scope: str
) -> None:
    owner = await api.key("team-a", "jobs:write,jobs:read")
    job = (await api.client.post("/v1/jobs", json=BODY, headers=owner)).json()
    url = path.format(id=job["id"])
    body = BODY if (method, path) == ("POST", "/v1/jobs") else None
    for headers in (
        {},
        {"Authorization": "Bearer opj_" + "x" * 43},
        {"Authorization": "Basic abc"},
    ):
        r = await api.client.request(method, url, json=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = await api.client.request(
        method, url, json=body, headers=await api.key("team-a", WRONG_SCOPE[scope])
    )
    assert r.status_code == 403


@pytest.mark.parametrize(("method", "path", "scope"), [r for r in ROUTES if "{id}" in r[1]])
async def test_another_tenants_job_is_404_even_with_the_right_scope(
    api: Api, method: str, path: str, scope: str
) -> None:
    job = (await api.client.post("/v1/jobs", json=BODY, headers=await api.key("team-a"))).json()
    other = await api.key("team-b", "jobs:write,jobs:read")
    r = await api.client.request(method, path.format(id=job["id"]), headers=other)
    assert r.status_code == 404 and r.json()["detail"] == "Job not found."
    # Indistinguishable from a job that does not exist.
    missing = await api.client.request(method, path.format(id="job_" + "0" * 24), headers=other)
    assert missing.json() == r.json()
    assert (await api.client.get(f"/v1/jobs/{job['id']}", headers=await api.key("team-a"))).json()[
        "version"
    ] == 1


async def test_admin_reaches_every_job(api: Api) -> None:
    job = (await api.client.post("/v1/jobs", json=BODY, headers=await api.key("team-a"))).json()
    admin = await api.key("root", "admin")
    assert (await api.client.get(f"/v1/jobs/{job['id']}", headers=admin)).status_code == 200
    assert (await api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=admin)).status_code == 200


# --- keys -----------------------------------------------------------------------------------


async def test_keys_carry_256_random_bits_and_record_their_last_use(api: Api) -> None:
    raw, _ = await api.store.clients.create_key("team-a", ["jobs:read"], now())
    assert raw.startswith("opj_") and len(raw) == 4 + 43  # token_urlsafe(32)
    [info] = await api.store.clients.list_keys()
    assert info.last_used_at is None and info.prefix == raw[:12]
    await api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {raw}"})
    [info] = await api.store.clients.list_keys()
    assert info.last_used_at is not None


async def test_a_client_rotates_keys(api: Api) -> None:
    old, _ = await api.store.clients.create_key("team-a", ["jobs:read"], now())
    new, secret = await api.store.clients.create_key("team-a", ["jobs:read"], now())
    assert secret is None
    for raw in (old, new):
        assert (
            await api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {raw}"})
        ).status_code == 200
    await api.store.clients.revoke_key(old[:12], now())
    assert (
        await api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {old}"})
    ).status_code == 401
    assert (
        await api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {new}"})
    ).status_code == 200


# --- SSRF -------------------------------------------------------------------------------------

FORBIDDEN = [
    "http://127.0.0.1/cb",
    "http://localhost:8000/cb",
    "http://10.0.0.7/cb",
    "http://172.16.3.4/cb",
    "http://192.168.0.10/cb",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/cb",
    "http://224.0.0.1/cb",
    "http://0.0.0.0/cb",
    "http://[::1]/cb",
    "http://[fe80::1]/cb",
    "http://[fd00:ec2::254]/cb",
    "http://[::ffff:127.0.0.1]/cb",
    "http://user:pass@hooks.example.invalid/cb",
]


@pytest.mark.parametrize("url", FORBIDDEN)
async def test_callbacks_into_our_own_network_are_refused(api: Api, url: str) -> None:
    r = await api.client.post(
        "/v1/jobs", json={**BODY, "callback_url": url}, headers=await api.key()
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["callback_url"]
    assert (await api.client.get("/v1/jobs", headers=await api.key())).json()["items"] == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "ftp://192.0.2.1/"])
async def test_only_http_callbacks(api: Api, url: str) -> None:
    r = await api.client.post(
        "/v1/jobs", json={**BODY, "callback_url": url}, headers=await api.key()
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "callback_url"


async def test_a_public_address_passes_the_guard_without_any_lookup() -> None:
    """Checked on literals only: no test names a public host or sends anything to one."""
    for literal in ("8.8.8.8", "2606:4700::1111", "93.184.216.34"):
        assert not is_forbidden(ipaddress.ip_address(literal))
        assert await check_callback(
            f"https://[{literal}]/hooks" if ":" in literal else f"https://{literal}/hooks", False
        )


async def test_allow_private_callbacks_lifts_the_guard(make_api: Any) -> None:
    api = await make_api(allow_private_callbacks=True)
    r = await api.client.post(
        "/v1/jobs", json={**BODY, "callback_url": "http://127.0.0.1:9/cb"}, headers=await api.key()
    )
    assert r.status_code == 202


# --- abuse limits --------------------------------------------------------------------------------


async def test_creation_rate_limit_per_client(make_api: Any) -> None:
    api = await make_api(client_jobs_per_minute=3)
    mine, theirs = await api.key("team-a"), await api.key("team-b")
    codes = [
        (await api.client.post("/v1/jobs", json=BODY, headers=mine)).status_code for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]
    refused = await api.client.post("/v1/jobs", json=BODY, headers=mine)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert (await api.client.post("/v1/jobs", json=BODY, headers=theirs)).status_code == 202
    assert len((await api.client.get("/v1/jobs", headers=mine)).json()["items"]) == 3


async def test_the_rate_limit_holds_across_replicas(make_api: Any) -> None:
    one = await make_api(client_jobs_per_minute=5)
    two = await make_api(client_jobs_per_minute=5)
    headers = await one.key("team-a")
    results = await asyncio.gather(
        *[
            (one if i % 2 else two).client.post("/v1/jobs", json=BODY, headers=headers)
            for i in range(12)
        ]
    )
    assert sorted(r.status_code for r in results) == [202] * 5 + [429] * 7


async def test_cap_on_unfinished_jobs_per_client(make_api: Any) -> None:
    api = await make_api(client_max_unfinished=2)
    headers = await api.key("team-a")
    first = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    await api.client.post("/v1/jobs", json=BODY, headers=headers)
    refused = await api.client.post("/v1/jobs", json=BODY, headers=headers)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    await api.client.post(f"/v1/jobs/{first['id']}/cancel", headers=headers)
    assert (await api.client.post("/v1/jobs", json=BODY, headers=headers)).status_code == 202


async def test_the_unfinished_cap_holds_under_concurrent_creators(api: Api, db_url: str) -> None:
    from service.domain.requests import JobRequest
    from service.store import Store
    from service.store.records import AtCap, Created, CreationLimits

    cid = await client_id(api.store, "team-a")
    stores = [Store.connect(db_url) for _ in range(4)]

    async def create(store: Store) -> bool:
        limits = CreationLimits(per_minute=1000, max_unfinished=3)
        result = await store.jobs.create_job(cid, JobRequest(image=IMAGE), None, now(), limits)
        assert isinstance(result, Created | AtCap)
        return isinstance(result, Created)

    try:
        created = await asyncio.gather(*[create(stores[i % 4]) for i in range(10)])
    finally:
        for s in stores:
            await s.close()
    assert sum(created) == 3
