import pytest

from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.sizes import MAX_BYTES, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("512M", 512 * 1024**2),
        ("512m", 512 * 1024**2),
        ("2G", 2 * 1024**3),
        ("2GiB", 2 * 1024**3),
        ("1.5G", 3 * 1024**3 // 2),
        ("10K", 10240),
        ("1T", 1024**4),
        (4096, 4096),
    ],
)
def test_it_parses_sizes_in_base_1024(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("-1", "negative"),
        ("-5G", "negative"),
        (-1, "negative"),
        ("nan", "not_finite"),
        ("inf", "not_finite"),
        ("1X", "invalid_size"),
        ("G", "invalid_size"),
        ("", "invalid_size"),
        (" 5G", "invalid_size"),
        ("5 G ", "invalid_size"),
        ("1e9", "invalid_size"),
        ("99999999999P", "too_large"),
        (str(MAX_BYTES + 1), "too_large"),
    ],
)
def test_it_refuses_bad_sizes_naming_field_and_rule(text, rule):
    with pytest.raises(ValidationError) as caught:
        parse_size(text, "quota")
    assert (caught.value.field, caught.value.rule) == ("quota", rule)


def test_it_refuses_booleans_as_sizes():
    with pytest.raises(ValidationError):
        parse_size(True, "quota")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "unlimited"), (512, "512 B"), (1024**3, "1 GiB"), (3 * 1024**3 // 2, "1.5 GiB")],
)
def test_it_formats_sizes_for_people(size, text):
    assert format_size(size) == text
