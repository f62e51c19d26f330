"""Per-job webhook tokens."""

from service.domain.tokens import make_token, read_token


def test_a_token_names_its_job() -> None:
    assert read_token("s3cret", make_token("s3cret", 42)) == 42


def test_a_token_from_another_secret_is_refused() -> None:
    assert read_token("s3cret", make_token("other", 42)) is None


def test_a_token_for_another_job_is_refused() -> None:
    mac = make_token("s3cret", 42).split(".", 1)[1]
    assert read_token("s3cret", f"43.{mac}") is None


def test_garbage_is_refused() -> None:
    for token in ["", "42", "42.", ".abc", "x.abc", "-1.abc", "9" * 40 + ".abc"]:
        assert read_token("s3cret", token) is None


def test_unicode_digits_and_overlong_ids_are_refused_not_raised() -> None:
    mac = make_token("s3cret", 42).split(".", 1)[1]
    for token in [
        "²." + mac,
        "٤٢." + mac,
        "9" * 19 + "." + mac,
        "42." + mac + "=",
        "42\x00." + mac,
    ]:
        assert read_token("s3cret", token) is None
