"""The simulator over real HTTP: the seed's validation, the reply shapes, real PNGs."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from service.provider.simulator import Simulator, SimulatorConfig
from tests.live import LiveServer


@pytest.fixture
async def sim(live: LiveServer) -> AsyncIterator[tuple[httpx.AsyncClient, Simulator]]:
    simulator = Simulator(
        SimulatorConfig(public_url=live.url, eta_seconds=0.2, seed=1, api_key="k")
    )
    await live.start(simulator.app)
    async with httpx.AsyncClient(base_url=f"{live.url}/api/v6") as client:
        yield client, simulator


def png_base64(size: tuple[int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width", 1441),
        ("height", 2000),
        ("overlap_width", 64),
        ("num_inference_steps", 31),
        ("width", "wide"),
    ],
)
async def test_the_seeds_limits_are_enforced(
    sim: tuple[httpx.AsyncClient, Simulator], field: str, value: object
) -> None:
    client, _ = sim
    r = await client.post(
        "/image_editing/outpaint",
        json={"key": "k", "image": "https://x.invalid/i.png", field: value},
    )
    assert r.status_code == 400 and r.json()["status"] == "error" and field in r.json()["message"]


async def test_a_key_and_an_image_are_required(sim: tuple[httpx.AsyncClient, Simulator]) -> None:
    client, _ = sim
    assert (
        await client.post("/image_editing/outpaint", json={"image": "https://x.invalid/i.png"})
    ).status_code == 401
    assert (await client.post("/image_editing/outpaint", json={"key": "k"})).status_code == 400


async def test_processing_then_fetch_then_a_png_of_the_requested_size(
    sim: tuple[httpx.AsyncClient, Simulator],
) -> None:
    client, _ = sim
    body = {
        "key": "k",
        "image": png_base64((64, 48)),
        "base64": True,
        "width": 320,
        "height": 200,
        "track_id": 5,
    }
    first = (await client.post("/image_editing/outpaint", json=body)).json()
    assert first["status"] == "processing" and first["eta"] == 0.2 and first["output"] == []
    early = (await client.post(first["fetch_result"], json={"key": "k"})).json()
    assert early["status"] == "processing"
    await asyncio.sleep(0.25)
    done = (await client.post(first["fetch_result"], json={"key": "k"})).json()
    assert done["status"] == "success" and done["output"] == first["future_links"]
    png = await client.get(done["output"][0])
    image = Image.open(io.BytesIO(png.content))
    assert image.format == "PNG" and image.size == (320, 200)
    assert image.getpixel((160, 100)) == (200, 40, 40)  # the input sits in the middle


async def test_the_simulator_serves_samples_and_outpaints_its_own_without_fetching(
    sim: tuple[httpx.AsyncClient, Simulator], live: LiveServer
) -> None:
    """The walk-through's input: no network, not even loopback, to outpaint a sample."""
    client, simulator = sim
    sample = await client.get(f"{live.url}/samples/room.png")
    assert sample.status_code == 200 and sample.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(sample.content)).size == (256, 192)
    assert (await client.get(f"{live.url}/samples/nope.png")).status_code == 404
    body = {"key": "k", "image": f"{live.url}/samples/room.png", "width": 320, "height": 200}
    first = (await client.post("/image_editing/outpaint", json=body)).json()
    done = first
    while done["status"] == "processing":  # until its eta has passed
        done = (await client.post(first["fetch_result"], json={"key": "k"})).json()
    image = Image.open(io.BytesIO((await client.get(done["output"][0])).content))
    # the room's floor, scaled into the middle of the output (not the placeholder gradient)
    r, g, b = image.getpixel((91, 150))
    assert abs(r - 120) < 8 and abs(g - 84) < 8 and abs(b - 52) < 8
    assert simulator.webhooks_refused == 0


async def test_fetch_of_an_unknown_id_answers_failed(
    sim: tuple[httpx.AsyncClient, Simulator],
) -> None:
    client, _ = sim
    r = (await client.post("/image_editing/fetch/1", json={"key": "k"})).json()
    assert r == {"status": "failed", "id": "", "message": "Request not found"}


async def test_generations_are_bounded_and_their_ids_unguessable(live: LiveServer) -> None:
    simulator = Simulator(
        SimulatorConfig(public_url=live.url, eta_seconds=0, api_key="k", max_generations=3)
    )
    await live.start(simulator.app)
    body = {"key": "k", "image": png_base64((8, 8)), "base64": True}
    async with httpx.AsyncClient(base_url=f"{live.url}/api/v6") as client:
        ids = [
            (await client.post("/image_editing/outpaint", json={**body, "track_id": n})).json()[
                "id"
            ]
            for n in range(5)
        ]
        assert len(set(ids)) == 5 and all(i >= 2**52 for i in ids)
        oldest = await client.post(f"/image_editing/fetch/{ids[0]}", json={"key": "k"})
        newest = await client.post(f"/image_editing/fetch/{ids[-1]}", json={"key": "k"})
        assert oldest.json()["message"] == "Request not found"
        assert newest.json()["status"] == "success"
        assert (await client.post(f"/image_editing/fetch/{ids[-1]}", json={})).status_code == 401
    assert len(simulator._generations) == 3


def test_instrumentation_forgets_its_oldest_keys() -> None:
    from service.provider.simulator import Bounded, Tally

    tally: Tally[str] = Tally(limit=3)
    outcomes: Bounded[str, str] = Bounded(limit=3)
    for n in range(10):
        tally[str(n)] += 1
        outcomes[str(n)] = "success"
    assert list(tally) == ["7", "8", "9"] and list(outcomes) == ["7", "8", "9"]
