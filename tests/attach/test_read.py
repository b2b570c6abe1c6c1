"""The attachment reader on real files in ``tmp_path``: text, text that is not UTF-8,
folders (hidden and VCS folders, ``.gitignore``, binary files skipped and counted),
pictures known by their magic bytes whatever their names, stdin, and every limit and
refusal, each a :class:`UsageError` naming the path and the limit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tokentide.attach import Limits, read_attachments
from tokentide.attach.read import image_type
from tokentide.errors import UsageError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 24
GIF = b"GIF89a" + b"\0" * 24
WEBP = b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 16


def write(root: Path, files: dict[str, bytes | str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)


def test_a_text_file_is_its_text_with_its_path_as_label(tmp_path: Path) -> None:
    write(tmp_path, {"notes/a.md": "# Title\n\nbody é\n"})
    got = read_attachments(["notes/a.md"], cwd=tmp_path)
    assert [(t.label, t.text, t.replaced) for t in got.texts] == [
        ("notes/a.md", "# Title\n\nbody é\n", False)
    ]
    assert got.texts[0].size == len("# Title\n\nbody é\n".encode())
    assert got.texts[0].tokens == (len("# Title\n\nbody é\n") + 3) // 4
    assert got.notes == () and got.images == ()


def test_an_absolute_path_and_a_bom(tmp_path: Path) -> None:
    write(tmp_path, {"b.txt": b"\xef\xbb\xbfhi"})
    got = read_attachments([str(tmp_path / "b.txt")])
    assert got.texts[0].label == str(tmp_path / "b.txt")
    assert got.texts[0].text == "hi"


def test_text_that_is_not_utf8_is_decoded_with_replacement_and_a_note(tmp_path: Path) -> None:
    write(tmp_path, {"latin1.txt": "café crème".encode("latin-1")})
    got = read_attachments(["latin1.txt"], cwd=tmp_path)
    assert got.texts[0].text == "caf\ufffd cr\ufffdme"
    assert got.texts[0].replaced
    assert got.notes == ("latin1.txt is not UTF-8: read with U+FFFD (�) for what was not",)


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_pictures_are_known_by_their_bytes_not_their_names(
    tmp_path: Path, data: bytes, media_type: str
) -> None:
    write(tmp_path, {"picture.txt": data})  # the extension says text: the bytes win
    got = read_attachments(["picture.txt"], cwd=tmp_path)
    assert got.texts == ()
    [image] = got.images
    assert (image.label, image.image.media_type, image.image.data) == (
        "picture.txt",
        media_type,
        data,
    )
    assert image.image.name == "picture.txt" and image.tokens is None


def test_a_file_named_png_that_is_not_one_is_text(tmp_path: Path) -> None:
    write(tmp_path, {"fake.png": "not a picture"})
    got = read_attachments(["fake.png"], cwd=tmp_path)
    assert got.images == () and got.texts[0].text == "not a picture"
    assert image_type(b"RIFF\0\0\0\0WAVE") is None


def test_a_folder_attaches_its_text_files_sorted_skipping_hidden_vcs_ignored_binary(
    tmp_path: Path,
) -> None:
    write(tmp_path, {
        "proj/b.py": "b", "proj/a.py": "a", "proj/sub/c.md": "c",
        "proj/.env": "SECRET=1", "proj/.hidden/x.txt": "x", "proj/.git/config": "[core]",
        "proj/.hg/store": "h", "proj/.svn/entries": "s",
        "proj/build/out.txt": "built", "proj/app.log": "log", "proj/keep.log": "kept",
        "proj/.gitignore": "build/\n*.log\n!keep.log\n", "proj/sub/.gitignore": "/local.md\n",
        "proj/sub/local.md": "mine", "proj/sub/deep/local.md": "not anchored here",
        "proj/logo.png": PNG, "proj/blob.bin": b"\0\1\2",
    })  # fmt: skip
    got = read_attachments(["proj/"], cwd=tmp_path)
    assert [t.label for t in got.texts] == [
        "proj/a.py", "proj/b.py", "proj/keep.log", "proj/sub/c.md", "proj/sub/deep/local.md",
    ]  # fmt: skip
    assert got.images == ()  # a folder attaches text; pictures are named one by one
    assert got.notes == ("proj: 2 binary files skipped",)


def test_the_current_folder_labels_files_by_their_relative_paths(tmp_path: Path) -> None:
    write(tmp_path, {"x.txt": "x", "d/y.txt": "y"})
    got = read_attachments(["."], cwd=tmp_path)
    assert [t.label for t in got.texts] == ["d/y.txt", "x.txt"]


def test_each_file_once_in_the_order_given(tmp_path: Path) -> None:
    write(tmp_path, {"d/a.txt": "a", "d/b.txt": "b", "z.txt": "z"})
    got = read_attachments(["z.txt", "d/b.txt", "d", "z.txt", "./z.txt"], cwd=tmp_path)
    assert [t.label for t in got.texts] == ["z.txt", "d/b.txt", "d/a.txt"]


def test_a_folder_with_no_text_files_says_so(tmp_path: Path) -> None:
    write(tmp_path, {"pics/a.png": PNG})
    got = read_attachments(["pics"], cwd=tmp_path)
    assert not got
    assert got.notes == ("pics: 1 binary file skipped", "pics: no text files to attach")


def test_stdin_is_an_attachment_bytes_or_text() -> None:
    got = read_attachments(["-"], stdin=io.BytesIO(b"piped\n"))
    assert [(t.label, t.text) for t in got.texts] == [("stdin", "piped\n")]
    got = read_attachments(["-", "-"], stdin=io.StringIO("text"))
    assert [(t.label, t.text) for t in got.texts] == [("stdin", "text")]
    got = read_attachments(["-"], stdin=io.BytesIO(PNG))
    assert got.images[0].image.media_type == "image/png"


def refusal(specs: list[str], cwd: Path, **kwargs: object) -> str:
    with pytest.raises(UsageError) as caught:
        read_attachments(specs, cwd=cwd, **kwargs)  # type: ignore[arg-type]
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_refusals_name_the_path(tmp_path: Path) -> None:
    write(tmp_path, {"data.bin": b"\x00\x01\x02binary", "secret.txt": "s"})
    assert refusal(["nope.txt"], tmp_path) == "cannot attach nope.txt: no such file or folder."
    assert refusal(["data.bin"], tmp_path) == (
        "cannot attach data.bin: it is a binary file, neither text nor a picture "
        "(PNG, JPEG, GIF or WebP)."
    )
    assert "nothing is piped in" in refusal(["-"], tmp_path)
    assert "nothing is piped in" in refusal(["-"], tmp_path, stdin=None)
    empty = "-a - attaches stdin, but stdin was empty."
    assert refusal(["-"], tmp_path, stdin=io.BytesIO()) == empty


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"secret.txt": "s"})
    (tmp_path / "secret.txt").chmod(0)
    assert refusal(["secret.txt"], tmp_path) == "cannot attach secret.txt: Permission denied."


def test_the_limit_a_file(tmp_path: Path) -> None:
    write(tmp_path, {"big.txt": "x" * 1001, "ok.txt": "x" * 1000})
    limits = Limits(max_file_bytes=1000)
    assert read_attachments(["ok.txt"], cwd=tmp_path, limits=limits).texts[0].size == 1000
    assert refusal(["big.txt"], tmp_path, limits=limits) == (
        "cannot attach big.txt: it is 1 kB, over the limit of 1 kB a file."
    )
    message = refusal(["-"], tmp_path, limits=limits, stdin=io.BytesIO(b"y" * 1001))
    assert message == "cannot attach stdin: it is more than 1 kB, over the limit of 1 kB a file."


def test_the_default_limits_are_the_issues() -> None:
    assert Limits() == Limits(10_000_000, 50_000_000, 200)


def test_the_limit_a_message(tmp_path: Path) -> None:
    write(tmp_path, {"a.txt": "a" * 600, "b.txt": "b" * 600, "d/c.txt": "c" * 600})
    limits = Limits(max_total_bytes=1000)
    assert refusal(["a.txt", "b.txt"], tmp_path, limits=limits).startswith(
        "cannot attach b.txt: the attachments come to more than 1 kB, the limit for one message."
    )
    assert refusal(["a.txt", "d"], tmp_path, limits=limits).startswith(
        "cannot attach d (at d/c.txt): the attachments come to more than 1 kB"
    )


def test_a_folder_over_its_limits(tmp_path: Path) -> None:
    write(tmp_path, {f"many/{i:02}.txt": "x" for i in range(4)})
    write(tmp_path, {"many/pic.png": PNG})  # binary files do not count
    assert (
        len(read_attachments(["many"], cwd=tmp_path, limits=Limits(max_folder_files=4)).texts) == 4
    )
    assert refusal(["many"], tmp_path, limits=Limits(max_folder_files=3)).startswith(
        "cannot attach many: it has more than 3 text files, the limit for a folder."
    )
    write(tmp_path, {"many/huge.txt": "x" * 2000})
    assert refusal(["many"], tmp_path, limits=Limits(max_file_bytes=1000)).startswith(
        "cannot attach many: many/huge.txt is 2 kB, over the limit of 1 kB a file."
    )


def test_a_symlinked_folder_inside_is_not_followed(tmp_path: Path) -> None:
    write(tmp_path, {"d/a.txt": "a"})
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    assert [t.label for t in read_attachments(["d"], cwd=tmp_path).texts] == ["d/a.txt"]
