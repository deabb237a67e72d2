"""The stand-in's Cortex image rules, on their own: it decodes each image with an imaging library of its own, so a
file that only looks right (a truncated PNG, a mislabelled type, an oversized side) is refused, and a good one is
described by what was decoded."""

import base64
import hashlib

import pytest
from PIL import Image

from spcs_standin.cortex_images import MAX_IMAGE_SIDE, ImageRefusedError, see_images, tiny_png


def _query(data: bytes, mime: str = "image/png") -> list[dict]:
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def test_a_good_image_is_described_by_its_decoded_size_and_hash():
    png = tiny_png(5, 3)
    messages, (seen,) = see_images(_query(png), "claude-tiny", accepts_images=True)
    assert (seen.mime, seen.width, seen.height, seen.size) == ("image/png", 5, 3, len(png))
    assert seen.sha256 == hashlib.sha256(png).hexdigest()
    assert messages[0]["content"][1] == {"type": "text", "text": seen.description()}


@pytest.mark.parametrize("data, mime, words", [
    (tiny_png(4, 4)[:-20], "image/png", "not a readable image/png"),  # the header is fine, the data is cut
    (tiny_png(4, 4), "image/jpeg", "not image/jpeg"),
    (b"GIF89a" + b"\x00" * 20, "image/gif", "not a readable image/gif"),
])
def test_an_image_that_does_not_decode_as_its_type_is_refused(data, mime, words):
    with pytest.raises(ImageRefusedError, match=words) as refused:
        see_images(_query(data, mime), "claude-tiny", accepts_images=True)
    assert "messages[0].content[1]" in str(refused.value)


def test_an_image_wider_than_the_limit_is_refused_before_it_is_decoded(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("1", (MAX_IMAGE_SIDE + 1, 1)).save(path)
    with pytest.raises(ImageRefusedError, match=f"{MAX_IMAGE_SIDE + 1}x1 pixels"):
        see_images(_query(path.read_bytes()), "claude-tiny", accepts_images=True)
