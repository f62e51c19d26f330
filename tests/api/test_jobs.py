"""`/v1/jobs` over ASGI: create, read, list, events, cancel, refresh; errors as problem+json."""

from __future__ import annotations

import json

from service.domain.states import JobStatus
from tests.conftest import Api, now
from tests.factories import client_id, processing_job

BODY = {
    "image": "https://example.invalid/in.png",
    "prompt": "a lighthouse",
    "width": 256,
    "height": 192,
}


def assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


async def test_create_answers_202_with_location_and_the_job(api: Api) -> None:
    headers = await api.key()
    r = await api.client.post("/v1/jobs", json={**BODY, "metadata": {"order": 7}}, headers=headers)
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and isinstance(job["track_id"], int)
    assert job["request"]["width"] == 256 and job["request"]["overlap_width"] == 10
    assert job["metadata"] == {"order": 7} and job["version"] == 1
    assert job["output"] == [] and job["error"] is None
    assert job["created_at"].endswith("Z")
    got = await api.client.get(r.headers["location"], headers=headers)
    assert got.json()["id"] == job["id"]


async def test_create_validates_against_the_seed_limits(api: Api) -> None:
    headers = await api.key()
    r = await api.client.post(
        "/v1/jobs", json={**BODY, "width": 1441, "overlap_width": 64}, headers=headers
    )
    body = assert_problem(r, 422)
    assert {e["field"] for e in body["errors"]} == {"width", "overlap_width"}


async def test_unknown_fields_are_422(api: Api) -> None:
    r = await api.client.post("/v1/jobs", json={**BODY, "key": "x"}, headers=await api.key())
    assert assert_problem(r, 422)["errors"][0]["field"] == "key"


async def test_malformed_json_is_400_and_stores_nothing(api: Api) -> None:
    headers = await api.key()
    r = await api.client.post("/v1/jobs", content=b'{"image": ', headers=headers)
    assert_problem(r, 400)
    r = await api.client.post("/v1/jobs", json=["not", "an", "object"], headers=headers)
    assert_problem(r, 422)
    listed = await api.client.get("/v1/jobs", headers=headers)
    assert listed.json()["items"] == []


async def test_bodies_over_a_mebibyte_are_413(api: Api) -> None:
    big = json.dumps({**BODY, "prompt": "x" * (1024 * 1024)}).encode()
    r = await api.client.post("/v1/jobs", content=big, headers=await api.key())
    assert_problem(r, 413)


async def test_missing_or_wrong_key_is_401_missing_scope_403(api: Api) -> None:
    assert_problem(await api.client.post("/v1/jobs", json=BODY), 401)
    bad = {"Authorization": "Bearer opj_nope"}
    assert_problem(await api.client.get("/v1/jobs", headers=bad), 401)
    reader = await api.key("team-a", "jobs:read")
    assert_problem(await api.client.post("/v1/jobs", json=BODY, headers=reader), 403)
    writer = await api.key("team-a", "jobs:write")
    assert_problem(await api.client.get("/v1/jobs", headers=writer), 403)


async def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    raw, _ = await api.store.clients.create_key("team-a", ["jobs:read"], now())
    headers = {"Authorization": f"Bearer {raw}"}
    assert (await api.client.get("/v1/jobs", headers=headers)).status_code == 200
    await api.store.clients.revoke_key(raw[:12], now())
    assert_problem(await api.client.get("/v1/jobs", headers=headers), 401)


async def test_idempotency_key_replays_and_conflicts(api: Api) -> None:
    headers = {**await api.key(), "Idempotency-Key": "order-7"}
    first = await api.client.post("/v1/jobs", json=BODY, headers=headers)
    again = await api.client.post("/v1/jobs", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    other = await api.client.post("/v1/jobs", json={**BODY, "prompt": "other"}, headers=headers)
    assert_problem(other, 422)
    # Another client may use the same key for its own job.
    theirs = await api.client.post(
        "/v1/jobs", json=BODY, headers={**await api.key("team-b"), "Idempotency-Key": "order-7"}
    )
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]


async def test_another_clients_job_is_404_everywhere(api: Api) -> None:
    mine = await api.key("team-a", "jobs:write,jobs:read")
    theirs = await api.key("team-b", "jobs:write,jobs:read")
    job = (await api.client.post("/v1/jobs", json=BODY, headers=mine)).json()
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/events"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("POST", f"/v1/jobs/{job['id']}/refresh"),
    ]:
        assert_problem(await api.client.request(method, path, headers=theirs), 404)
    assert (await api.client.get("/v1/jobs", headers=theirs)).json()["items"] == []
    still = await api.client.get(f"/v1/jobs/{job['id']}", headers=mine)
    assert still.json()["status"] == "queued"


async def test_ops_read_sees_every_client_but_cannot_write(api: Api) -> None:
    job = (await api.client.post("/v1/jobs", json=BODY, headers=await api.key("team-a"))).json()
    ops = await api.key("ops", "ops:read")
    assert (await api.client.get(f"/v1/jobs/{job['id']}", headers=ops)).status_code == 200
    assert len((await api.client.get("/v1/jobs", headers=ops)).json()["items"]) == 1
    assert_problem(await api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=ops), 403)


async def test_list_is_newest_first_with_a_cursor(api: Api) -> None:
    headers = await api.key()
    ids = [
        (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()["id"]
        for _ in range(7)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/jobs", params=params, headers=headers)).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


async def test_list_filters_by_status_and_validates_its_parameters(api: Api) -> None:
    headers = await api.key()
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    await api.client.post("/v1/jobs", json=BODY, headers=headers)
    await api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    canceled = (await api.client.get("/v1/jobs?status=canceled", headers=headers)).json()["items"]
    assert [j["id"] for j in canceled] == [job["id"]]
    assert_problem(await api.client.get("/v1/jobs?status=done", headers=headers), 422)
    assert_problem(await api.client.get("/v1/jobs?limit=0", headers=headers), 422)
    assert_problem(await api.client.get("/v1/jobs?limit=abc", headers=headers), 422)
    assert_problem(await api.client.get("/v1/jobs?cursor=!!", headers=headers), 422)


async def test_cancel_then_cancel_again_is_409(api: Api) -> None:
    headers = await api.key()
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    r = await api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert r.json()["completed_at"] is not None and r.json()["version"] == 2
    assert_problem(await api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers), 409)


async def test_cancel_a_processing_job(api: Api) -> None:
    cid = await client_id(api.store, "team-a")
    job = await processing_job(api.store, cid, now())
    r = await api.client.post(f"/v1/jobs/{job.public_id}/cancel", headers=await api.key("team-a"))
    assert r.json()["status"] == JobStatus.CANCELED.value


async def test_events_list_the_history(api: Api) -> None:
    headers = await api.key()
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    await api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    events = (await api.client.get(f"/v1/jobs/{job['id']}/events", headers=headers)).json()["items"]
    assert [(e["kind"], e["from_status"], e["to_status"]) for e in events] == [
        ("created", None, "queued"),
        ("action", None, None),  # the cancel, and the key that asked
        ("transition", "queued", "canceled"),
    ]
    assert set(events[0]) == {"id", "at", "kind", "source", "from_status", "to_status", "detail"}


async def test_refresh_of_a_queued_job_answers_the_job(api: Api) -> None:
    headers = await api.key()
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    r = await api.client.post(f"/v1/jobs/{job['id']}/refresh", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "queued"


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert_problem(await api.client.get("/nope"), 404)
    assert_problem(await api.client.delete("/v1/jobs", headers=await api.key()), 405)
    assert_problem(await api.client.get("/v1/jobs/job_missing", headers=await api.key()), 404)
