"""What archiving decides: why an output still missing at its deadline is given up."""

from __future__ import annotations

from service.domain.archive import STORE_MISS, given_up


def test_an_output_the_store_kept_refusing_is_given_up_as_not_stored() -> None:
    assert given_up(f"{STORE_MISS}NoSuchBucket: gone") == "not_stored_by_deadline"
    assert given_up("http_404") == "not_found_by_deadline"
    assert given_up("connection: ConnectTimeout") == "not_found_by_deadline"
