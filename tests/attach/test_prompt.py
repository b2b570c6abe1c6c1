"""The user message made from a prompt and attachments: fenced files labelled with
their paths (a fence no backtick run inside can close), in the order read, then the
prompt; pictures as images; what the history keeps; pictures refused before sending
by a backend that cannot take them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tokentide.attach import Attachments, TextFile, attached_message, check_backend, user_message
from tokentide.attach.model import ImageFile, human_size
from tokentide.attach.prompt import fenced, saved_text
from tokentide.backends.media import ImageData
from tokentide.config.model import Profile
from tokentide.errors import UsageError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24


class Sees:
    """A backend that says it takes pictures."""

    takes_images = True


class Blind:
    """A backend that says it does not."""

    takes_images = False


def test_a_fence_longer_than_any_backtick_run_inside() -> None:
    assert fenced(TextFile("a.py", "x = 1\n", 6)) == "a.py\n```\nx = 1\n```"
    assert fenced(TextFile("r.md", "```py\ncode\n```", 14)) == "r.md\n````\n```py\ncode\n```\n````"
    inner = "`````` and ``` and `"
    assert fenced(TextFile("t", inner, 1)).split("\n")[1] == "`" * 7
    assert fenced(TextFile("empty", "", 0)) == "empty\n```\n```"


def test_the_files_then_the_prompt_and_the_pictures_as_images() -> None:
    image = ImageData("image/png", PNG, name="cat.png")
    attachments = Attachments(
        texts=(TextFile("b.txt", "B\n", 2), TextFile("a.txt", "A", 1)),
        images=(ImageFile("pics/cat.png", image),),
    )
    message = user_message("compare them", attachments)
    assert message.role == "user"
    assert message.content == "b.txt\n```\nB\n```\n\na.txt\n```\nA\n```\n\ncompare them"
    assert message.images == (image,)
    assert saved_text(message, attachments) == (
        f"{message.content}\n\n[image: pics/cat.png, {human_size(len(PNG))}]"
    )
    assert user_message("", attachments).content == "b.txt\n```\nB\n```\n\na.txt\n```\nA\n```"
    only_image = Attachments(images=attachments.images)
    assert saved_text(user_message("", only_image), only_image) == "[image: pics/cat.png, 32 B]"


def test_human_sizes() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 120_400, 5_000_000, 5_240_000)] == [
        "0 B", "999 B", "1 kB", "120 kB", "5 MB", "5.2 MB",
    ]  # fmt: skip


def test_pictures_are_refused_before_sending_by_a_backend_that_cannot_take_them() -> None:
    pictures = Attachments(images=(ImageFile("cat.png", ImageData("image/png", PNG)),))
    check_backend(pictures, Sees(), "vision", "openai")
    check_backend(Attachments(texts=(TextFile("a", "a", 1),)), Blind(), "tgi", "tgi")
    with pytest.raises(UsageError) as caught:
        check_backend(pictures, Blind(), "work", "tgi")
    assert caught.value.exit_code == 2
    assert caught.value.message == "work (tgi) cannot take pictures: cat.png not sent."
    with pytest.raises(UsageError):
        check_backend(pictures, object(), "x", "y")  # a backend that does not say: no


def test_attached_message_reads_checks_and_says_what_the_history_keeps(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "odd\x1b[31m.txt").write_bytes(b"\xff")
    profile = Profile(name="p", api="openai")
    message, saved, notes = attached_message(
        [str(tmp_path / "cat.png"), "-"], "look", io.BytesIO(b"piped"), Sees(), profile
    )
    assert message.content == "stdin\n```\npiped\n```\n\nlook"
    assert message.images[0].media_type == "image/png"
    assert saved.endswith("[image: " + str(tmp_path / "cat.png") + ", 32 B]")
    with pytest.raises(UsageError, match="cannot take pictures"):
        attached_message([str(tmp_path / "cat.png")], "look", None, Blind(), profile)
    _, _, notes = attached_message([str(tmp_path / "odd\x1b[31m.txt")], "", None, Sees(), profile)
    assert "\x1b" not in notes[0] and "is not UTF-8" in notes[0]  # notes name files: sanitised
