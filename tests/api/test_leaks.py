"""The small leaks, closed (over ASGI, on both databases): an output index past what the
column holds is a 404, not a 500; a key without jobs:read learns only a job's Location;
image URLs follow the callback URLs' address rule; /metrics can require a token; no answer
is sniffed as another type."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_jobs import BODY, assert_problem
from tests.conftest import Api


async def test_an_output_index_past_the_column_is_a_404_not_a_500(api: Api) -> None:
    headers = await api.key()
    job = (await api.client.post("/v1/jobs", json=BODY, headers=headers)).json()
    for n in ("2147483647", "2147483648", "999999999999999999"):
        r = await api.client.get(f"/v1/jobs/{job['id']}/outputs/{n}", headers=headers)
        assert_problem(r, 404)


async def test_a_key_without_jobs_read_learns_only_the_jobs_location(api: Api) -> None:
    writer = await api.key("team-a", "jobs:write")
    headers = {**writer, "Idempotency-Key": "order-1", "Prefer": "wait=5"}
    created = await api.client.post("/v1/jobs", json=BODY, headers=headers)
    assert created.status_code == 204 and created.content == b""
    location = created.headers["location"]
    assert location.startswith("/v1/jobs/job_") and "preference-applied" not in created.headers
    # the same key and body again: the same answer, not the job as it now stands
    replayed = await api.client.post("/v1/jobs", json=BODY, headers=headers)
    assert replayed.status_code == 204 and replayed.content == b""
    assert replayed.headers["location"] == location
    assert_problem(await api.client.get(location, headers=writer), 403)
    # a key that reads gets the job, as ever
    reader = await api.key("team-a", "jobs:write,jobs:read")
    r = await api.client.post("/v1/jobs", json=BODY, headers={**reader, "Idempotency-Key": "o-2"})
    assert r.status_code == 202 and r.json()["id"] == r.headers["location"].rsplit("/", 1)[1]


@pytest.mark.parametrize(
    "image",
    [
        "http://127.0.0.1:8000/in.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/in.png",  # 127.0.0.1, in decimal
        "http://0x7f.1/in.png",  # the same, in hex and short
        "http://10.0.0.7/in.png",
        "http://[::1]/in.png",
        "http://[::ffff:127.0.0.1]/in.png",
        "http://user:pass@images.example.invalid/in.png",
        "http://localhost/in.png",
    ],
)
async def test_image_urls_naming_our_network_are_refused(api: Api, image: str) -> None:
    r = await api.client.post("/v1/jobs", json={**BODY, "image": image}, headers=await api.key())
    body = assert_problem(r, 422)
    # refused by the address rule, or already by the field's pattern (IPv6 literals and
    # credentials are not in it)
    assert body["errors"][0]["field"] == "image"
    assert body["errors"][0]["type"] in ("unsafe_url", "value_error")
    if "[" not in image and "@" not in image:
        assert body["errors"][0]["type"] == "unsafe_url"


async def test_image_urls_that_do_not_resolve_or_are_data_pass(api: Api) -> None:
    headers = await api.key()
    for image in ("https://images.example.invalid/in.png", "iVBORw0KGgo="):
        r = await api.client.post("/v1/jobs", json={**BODY, "image": image}, headers=headers)
        assert r.status_code == 202, (image, r.text)


async def test_allow_private_callbacks_lets_private_images_through(make_api: Any) -> None:
    api = await make_api(allow_private_callbacks=True)
    r = await api.client.post(
        "/v1/jobs",
        json={**BODY, "image": "http://127.0.0.1:9/in.png"},
        headers=await api.key(),
    )
    assert r.status_code == 202, r.text


async def test_the_simulators_own_samples_pass(make_api: Any) -> None:
    api = await make_api(port=8123)  # the built-in simulator, on this service's address
    sample = "http://127.0.0.1:8123/simulator/samples/room.png"
    r = await api.client.post("/v1/jobs", json={**BODY, "image": sample}, headers=await api.key())
    assert r.status_code == 202, r.text
    elsewhere = "http://127.0.0.1:8123/other/room.png"
    r = await api.client.post(
        "/v1/jobs", json={**BODY, "image": elsewhere}, headers=await api.key()
    )
    assert_problem(r, 422)


async def test_metrics_can_require_a_token(make_api: Any) -> None:
    open_api = await make_api()
    assert (await open_api.client.get("/metrics")).status_code == 200
    api = await make_api(metrics_token="scrape-token-0123456789")
    refused = await api.client.get("/metrics")
    assert_problem(refused, 401)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    wrong = await api.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = await api.client.get(
        "/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"}
    )
    assert ok.status_code == 200 and "outpaint_jobs" in ok.text


async def test_no_answer_is_sniffed_as_another_type(api: Api) -> None:
    headers = await api.key()
    for method, path, extra in (
        ("GET", "/healthz", {}),
        ("GET", "/v1/jobs", headers),
        ("GET", "/v1/jobs", {}),  # a 401 problem
        ("GET", "/nope", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/dashboard", {}),
        ("GET", "/metrics", {}),
        ("POST", "/webhooks/modelslab/1.x", {}),
    ):
        r = await api.client.request(method, path, headers=extra)
        assert r.headers["x-content-type-options"] == "nosniff", (method, path, r.status_code)
