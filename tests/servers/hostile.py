"""Payloads and certificates for the transport-security tests: a self-signed TLS
certificate made on the spot, compression bombs built lazily, and JSON nested too deep.

    from tests.servers.hostile import bomb_body, deep_json, self_signed_tls

    tls = self_signed_tls(tmp_path)                # ssl.SSLContext for raw_server(tls=...)
    steps = bomb_body(256, prefix=b"data: ...")     # HTTP chunks: ~256 KB that inflate to 256 MiB

A bomb is one compressed block of 1 MiB of filler repeated: after a full flush a deflate
stream's state is reset, so the same input compresses to the same bytes every time and
the body is built by repetition, in milliseconds, never holding the expansion.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.servers.raw import chunk

__all__ = ["bomb_body", "deep_json", "self_signed_tls"]

MIB = 1 << 20

_WBITS = {"gzip": 31, "deflate": 15, "raw-deflate": -15}


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server-side TLS context with a fresh self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def bomb_body(
    expanded_mib: int,
    *,
    prefix: bytes = b"",
    filler: bytes = b"\0",
    encoding: str = "gzip",
    per_chunk: int = 32,
) -> list[bytes]:
    """HTTP/1.1 chunks of a compressed body: ``prefix``, then ``expanded_mib`` MiB of
    ``filler`` repeated, ``per_chunk`` MiB of it in each HTTP chunk.  No end is sent:
    the reader must stop long before."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, _WBITS[encoding])
    block_in = (filler * (MIB // len(filler) + 1))[:MIB]
    first = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    compressor.compress(block_in)
    compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(block_in) + compressor.flush(zlib.Z_FULL_FLUSH)
    # What the repeated block inflates to, checked: the test is only as good as its bomb.
    check = zlib.decompressobj(_WBITS[encoding])
    assert check.decompress(first + block + block) == prefix + block_in + block_in
    steps = [chunk(first)]
    for start in range(0, expanded_mib, per_chunk):
        steps.append(chunk(block * min(per_chunk, expanded_mib - start)))
    return steps


def deep_json(depth: int = 10_000) -> bytes:
    """``[[[[…]]]]`` nested ``depth`` levels: valid JSON no parser will follow."""
    return b"[" * depth + b"]" * depth
