"""The address guard's parsing: host names are checked before anything resolves them, and
`.invalid` never reaches a resolver. (Resolution itself is exercised on loopback in the API
and callback tests.)"""

import pytest

from service.netguard import Unresolvable, UnsafeCallback, check_callback, split_callback


@pytest.mark.parametrize(
    "url",
    [
        "http://a..b.invalid/cb",
        "http://" + "a" * 64 + ".invalid/cb",
        "http://" + "a." * 130 + "invalid/cb",
        "http://-a.invalid/cb",
        "http://a\u0000b.invalid/cb",
        "http://a b.invalid/cb",
        "http://hooks.invalid:99999/cb",
        "http://user:pw@hooks.invalid/cb",
        "ftp://hooks.invalid/cb",
        "http://x" + "a" * 3000 + ".invalid/",
    ],
)
def test_malformed_hosts_are_refused_before_resolving(url: str) -> None:
    with pytest.raises(UnsafeCallback):
        split_callback(url)


async def test_invalid_names_are_refused_at_once() -> None:
    with pytest.raises(Unresolvable):
        await check_callback("https://hooks.example.invalid/cb", allow_private=True)


async def test_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(UnsafeCallback):
        await check_callback("http://localhost:9/cb", allow_private=False)
    assert await check_callback("http://127.0.0.1:9/cb", allow_private=True)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("169.254.169.254", "169.254.169.254"),
    ],
)
def test_numeric_hosts_are_read_as_the_addresses_a_resolver_would_make_of_them(
    host: str, address: str
) -> None:
    from service.netguard import literal_address

    assert str(literal_address(host)) == address


def test_names_are_not_addresses() -> None:
    from service.netguard import literal_address

    for host in ("images.example.invalid", "deadbeef", "face.b00c", "localhost"):
        assert literal_address(host) is None, host


async def test_an_image_url_on_our_network_is_refused_in_any_form() -> None:
    from service.netguard import UnsafeCallback, check_image

    for url in ("http://2130706433/a.png", "http://0x7f.1/a.png", "http://10.1.2.3/a.png"):
        with pytest.raises(UnsafeCallback):
            await check_image(url, allow_private=False)
        await check_image(url, allow_private=True)
    await check_image("https://images.example.invalid/a.png", allow_private=False)  # no DNS
