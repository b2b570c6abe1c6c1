"""The redaction's quick pre-checks (a substring test before each pattern) never skip a
match: on any text, masking with them is masking with the patterns alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokentide import redact

PIECES = st.sampled_from([
    "Bearer ", "bearer ", "BeArEr ", "Basic ", "BASIC ", "Token ", "token ", "sk-", "hf_",
    "gsk_", "xai-", "AIza", "ghp_", "gho_", "eyJ", ".", "abcDEF123456", "zzzzzzzzzzzzzzzzzzzz",
    "0123456789abcdefghij", " ", "\n", "password", "x",
])  # fmt: skip


def full(text: str) -> str:
    text = redact._CREDENTIAL.sub(lambda m: f"{m['scheme']} {redact.MASK}", text)
    return redact._KEY_SHAPES.sub(redact.MASK, text)


@given(st.lists(PIECES, max_size=30).map("".join))
def test_the_pre_checks_never_skip_a_match(text: str) -> None:
    assert redact._masked_shapes(text) == full(text)
