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
