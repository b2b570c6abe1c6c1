"""Prompt tokens, context against the window, cost (issue 11 item 6): only what the
server reported and the profile says, never a guess."""

from __future__ import annotations

from tokentide.backends.events import Usage
from tokentide.config.model import Profile
from tokentide.meter import AnswerUse, Meter, money

PRICED = Profile(name="p", api="openai", price_in=0.15, price_out=0.60)


def test_cost_is_prompt_and_answer_tokens_at_the_profiles_prices_per_million() -> None:
    use = AnswerUse.of(Usage(prompt_tokens=1_000, completion_tokens=500), PRICED)
    assert use.cost == (1_000 * 0.15 + 500 * 0.60) / 1_000_000
    assert use.context_used == 1_500


def test_no_prices_or_missing_counts_give_no_cost_rather_than_a_wrong_one() -> None:
    unpriced = Profile(name="p", api="openai")
    assert AnswerUse.of(Usage(10, 5), unpriced).cost is None
    assert AnswerUse.of(Usage(None, 5), PRICED).cost is None  # price_in needs the prompt
    only_out = Profile(name="p", api="openai", price_out=2.0)
    assert AnswerUse.of(Usage(None, 5), only_out).cost == 10 / 1_000_000
    assert AnswerUse.of(None, PRICED) == AnswerUse()


def test_the_line_shows_what_is_known_and_adds_up_the_chat() -> None:
    meter = Meter()
    assert meter.line(8192) == ""
    meter.add(AnswerUse.of(Usage(1_000, 24), PRICED))
    assert meter.line(8192) == "prompt 1,000 · context 1,024/8,192 (12%) · cost 0.000164"
    meter.add(AnswerUse.of(Usage(2_000, 48), PRICED))
    assert meter.line(None) == "prompt 2,000 · context 2,048 · cost 0.000329 (chat 0.000493)"
    meter.add(AnswerUse())  # a stopped answer: nothing reported
    assert meter.line(8192) == ""
    assert meter.total_cost is not None and abs(meter.total_cost - 0.0004932) < 1e-12
    meter.reset()
    assert meter.line(8192) == ""
    assert meter.answers_costed == 0


def test_saved_figures_read_back_the_same_and_old_answers_count_nothing() -> None:
    use = AnswerUse.of(Usage(1_000, 24), PRICED)
    saved = {"tokens": 24, "unit": "tokens", **use.as_dict()}
    assert AnswerUse.from_saved(saved) == use
    assert AnswerUse.from_saved({"tokens": 3, "unit": "chunks"}).completion_tokens is None
    assert AnswerUse.from_saved({"tokens": 3}) == AnswerUse(None, 3, None)
    assert AnswerUse.from_saved({"prompt_tokens": True, "cost": "x"}) == AnswerUse()


def test_money_has_no_currency_and_no_scientific_notation_for_everyday_amounts() -> None:
    assert money(0) == "0"
    assert money(0.000345) == "0.000345"
    assert money(12.5) == "12.5"
    assert money(1234.5) == "1,234.5"
    assert money(0.0000001) == "1.0e-07"
