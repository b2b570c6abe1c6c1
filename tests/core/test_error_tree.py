"""The error tree's two branches (issue 13 item 1): "never got an answer" and "the
server answered", with every exit code and retry flag as it was."""

from __future__ import annotations

from tokentide import errors as e


def test_each_failure_sits_in_the_branch_its_meaning_says() -> None:
    no_answer: set[type[e.BackendError]] = {e.CannotConnect, e.ConnectTimeout}
    answered: set[type[e.BackendError]] = {
        e.HTTPStatusError, e.Overloaded, e.GrpcStatusError, e.ServerError, e.ProtocolError,
        e.IncompleteStream, e.LimitExceeded, e.IdleTimeout,
    }  # fmt: skip
    for kind in no_answer:
        assert issubclass(kind, e.NoAnswer) and not issubclass(kind, e.ServerAnswered), kind
    for kind in answered:
        assert issubclass(kind, e.ServerAnswered) and not issubclass(kind, e.NoAnswer), kind
    neither: tuple[type[e.BackendError], ...] = (e.FirstTokenTimeout, e.LocalFunctionError)
    for kind in neither:
        assert not issubclass(kind, e.NoAnswer | e.ServerAnswered), kind


def test_exit_codes_and_retries_are_unchanged() -> None:
    assert (e.CannotConnect.exit_code, e.CannotConnect.retryable) == (3, True)
    assert (e.ConnectTimeout.exit_code, e.ConnectTimeout.retryable) == (5, True)
    assert (e.IdleTimeout.exit_code, e.IdleTimeout.retryable) == (5, False)
    assert (e.FirstTokenTimeout.exit_code, e.HTTPStatusError.exit_code) == (5, 4)
    assert e.ProtocolError("x").exit_code == 4 and not e.ProtocolError.retryable
