"""Finding jobs (`GET /v1/jobs?q=&client=&status=`) and the calling key (`GET /v1/me`):
ops search every client's jobs, a client key only its own, and no filter reveals another
client's job."""

from __future__ import annotations

from tests.api.test_jobs import BODY, assert_problem
from tests.conftest import Api, now
from tests.factories import client_id, force, processing_job


async def _ids(api: Api, params: dict[str, str], headers: dict[str, str]) -> list[str]:
    response = await api.client.get("/v1/jobs", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [j["id"] for j in response.json()["items"]]


async def test_q_finds_a_job_by_each_of_its_names(api: Api) -> None:
    mine = await api.key("team-a")
    created = await api.client.post(
        "/v1/jobs", json=BODY, headers={**mine, "Idempotency-Key": "order 7"}
    )
    job = created.json()
    other = (await api.client.post("/v1/jobs", json=BODY, headers=mine)).json()
    running = await processing_job(api.store, await client_id(api.store, "team-a"), now())
    await force(api.store, running.id, provider_id="prov-123")
    ops = await api.key("ops", "ops:read")
    for text, expected in [
        (job["id"], [job["id"]]),
        (str(job["track_id"]), [job["id"]]),
        ("order 7", [job["id"]]),
        ("prov-123", [running.public_id]),
        ("no-such-thing", []),
    ]:
        assert await _ids(api, {"q": text}, ops) == expected, text
        assert await _ids(api, {"q": text}, mine) == expected, text
    assert other["id"] not in await _ids(api, {"q": job["id"]}, ops)


async def test_client_and_status_filter_and_never_cross_tenants(api: Api) -> None:
    a, b = await api.key("team-a"), await api.key("team-b")
    job_a = (
        await api.client.post("/v1/jobs", json=BODY, headers={**a, "Idempotency-Key": "k1"})
    ).json()
    job_b = (
        await api.client.post("/v1/jobs", json=BODY, headers={**b, "Idempotency-Key": "k1"})
    ).json()
    await api.client.post(f"/v1/jobs/{job_b['id']}/cancel", headers=b)
    ops = await api.key("ops", "ops:read")
    assert await _ids(api, {"client": "team-a"}, ops) == [job_a["id"]]
    assert await _ids(api, {"client": "team-b", "status": "canceled"}, ops) == [job_b["id"]]
    assert await _ids(api, {"client": "team-b", "status": "queued"}, ops) == []
    assert await _ids(api, {"client": "nobody"}, ops) == []
    # The same Idempotency-Key at two clients: ops see both, each client only its own.
    assert await _ids(api, {"q": "k1"}, ops) == [job_b["id"], job_a["id"]]
    assert await _ids(api, {"q": "k1", "client": "team-b"}, ops) == [job_b["id"]]
    assert await _ids(api, {"q": "k1"}, a) == [job_a["id"]]
    # A client key naming another client, or searching another's job by any of its names,
    # lists nothing.
    assert await _ids(api, {"client": "team-b"}, a) == []
    running = await processing_job(api.store, await client_id(api.store, "team-b"), now())
    await force(api.store, running.id, provider_id="prov-b")
    for name in (job_b["id"], str(job_b["track_id"]), "prov-b", str(running.id)):
        assert await _ids(api, {"q": name}, a) == [], name
        assert await _ids(api, {"q": name}, ops) != [], name
    assert await _ids(api, {"client": "team-a"}, a) == [job_a["id"]]


async def test_search_parameters_are_validated(api: Api) -> None:
    ops = await api.key("ops", "ops:read")
    bad = [{"q": ""}, {"q": "é"}, {"q": "x" * 201}, {"client": "a\x01b"}, {"q": "\x00"}]
    for params in bad:
        body = assert_problem(await api.client.get("/v1/jobs", params=params, headers=ops), 422)
        assert body["errors"][0]["field"] in params
    body = assert_problem(
        await api.client.get(
            "/v1/jobs", params={"q": "", "limit": "0", "status": "x"}, headers=ops
        ),
        422,
    )
    assert {e["field"] for e in body["errors"]} == {"q", "limit", "status"}


async def test_a_numeric_search_too_big_for_a_track_id_is_no_error(api: Api) -> None:
    ops = await api.key("ops", "ops:read")
    # Past a bigint (PostgreSQL would refuse the comparison): matched as text only.
    assert await _ids(api, {"q": "9" * 30}, ops) == []
    assert await _ids(api, {"q": "9" * 18}, ops) == []


async def test_me_names_the_key_and_its_scopes(api: Api) -> None:
    headers = await api.key("team-a", "jobs:read,ops:read")
    response = await api.client.get("/v1/me", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["client"] == "team-a" and body["scopes"] == ["jobs:read", "ops:read"]
    assert headers["Authorization"].removeprefix("Bearer ").startswith(body["key_prefix"])
    assert len(body["key_prefix"]) >= 8
    assert_problem(await api.client.get("/v1/me"), 401)


async def test_a_client_name_with_spaces_and_accents_filters_too(api: Api) -> None:
    mine = await api.key("Équipe A")
    job = (await api.client.post("/v1/jobs", json=BODY, headers=mine)).json()
    ops = await api.key("ops", "ops:read")
    assert await _ids(api, {"client": "Équipe A"}, ops) == [job["id"]]
    assert await _ids(api, {"client": "Équipe A"}, mine) == [job["id"]]
