"""The funnel model: a stage's label, the funnel's checks and its open, won, shown and folded
stages, and what the figures read of a run's settings."""

from __future__ import annotations

from dataclasses import fields

import pytest

from funnel_reports.transforms.funnel_model import (
    ExchangeRate,
    ExchangeRates,
    FunnelModel,
    MetricsSettings,
    RunSettings,
    SourceSettings,
    Stage,
)


def funnel(*ids: str, won: str = "won", named: bool = False) -> FunnelModel:
    """A funnel of the given stage ids, each labelled by its id in upper case (en) and
    with a trailing "!" (zh)."""
    return FunnelModel(tuple(Stage(i, i.upper(), f"{i}!") for i in ids), won, named)


FIVE = funnel("lead", "demo", "won", "renewal", "upsell")


def test_a_stage_is_labelled_in_chinese_for_zh() -> None:
    assert Stage("lead", "Lead", "线索").label("zh") == "线索"


def test_a_stage_is_labelled_in_english_for_en_and_any_other_language() -> None:
    stage = Stage("lead", "Lead", "线索")
    assert (stage.label("en"), stage.label("fr")) == ("Lead", "Lead")


def test_two_stages_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match=r"stage ids must be unique, got \['a', 'won', 'a'\]"):
        funnel("a", "won", "a")


def test_a_won_stage_that_is_not_a_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="won stage 'signed' is not one of the stages"):
        funnel("a", "won", won="signed")


def test_the_won_stage_cannot_be_the_first() -> None:
    with pytest.raises(ValueError, match="the won stage cannot be the first stage"):
        funnel("won", "a")


def test_the_stages_before_won_are_open_and_won_with_those_after_it_count_as_won() -> None:
    assert FIVE.ids == ["lead", "demo", "won", "renewal", "upsell"]
    assert FIVE.won_index == 2
    assert FIVE.open_ids == ["lead", "demo"]
    assert [s.id for s in FIVE.open_stages] == ["lead", "demo"]
    assert FIVE.won_ids == ["won", "renewal", "upsell"]


def test_a_won_stage_named_otherwise_and_last_is_the_only_won_stage() -> None:
    signed = funnel("lead", "demo", "signed", won="signed")
    assert (signed.won_index, signed.open_ids, signed.won_ids) == (2, ["lead", "demo"], ["signed"])


def test_a_stage_is_found_by_its_id() -> None:
    assert FIVE.index("renewal") == 3
    assert FIVE.stage("renewal") == Stage("renewal", "RENEWAL", "renewal!")


def test_an_unknown_stage_id_has_no_index() -> None:
    with pytest.raises(ValueError):
        FIVE.index("lost")


def test_an_unnamed_funnel_shows_the_first_the_won_and_the_observed_stages_in_order() -> None:
    assert FIVE.shown_ids({"upsell", "demo"}) == ["lead", "demo", "won", "upsell"]


def test_an_unnamed_funnel_with_nothing_observed_shows_the_first_and_the_won_stage() -> None:
    assert FIVE.shown_ids(set()) == ["lead", "won"]


def test_an_observed_value_that_is_no_stage_shows_nothing_more() -> None:
    assert FIVE.shown_ids({"lost", "renewal"}) == ["lead", "won", "renewal"]


def test_a_named_funnel_shows_every_stage_even_one_never_observed() -> None:
    named = funnel("lead", "demo", "won", "renewal", named=True)
    assert named.shown_ids(set()) == ["lead", "demo", "won", "renewal"]


def test_a_folded_funnel_keeps_only_the_shown_stages_and_its_won_stage() -> None:
    folded = FIVE.folded({"lead", "won", "upsell"})
    assert folded.ids == ["lead", "won", "upsell"]
    assert (folded.won_stage, folded.won_index, folded.won_ids) == ("won", 1, ["won", "upsell"])
    assert folded.stage("upsell") == FIVE.stage("upsell")  # labels and settings kept


def test_a_folded_funnel_stays_named_as_it_was() -> None:
    named = funnel("lead", "demo", "won", named=True)
    assert named.folded({"lead", "won"}).named is True


def test_folding_away_the_won_stage_is_refused() -> None:
    """The shown stages must hold the won stage: a funnel without it is no funnel."""
    with pytest.raises(ValueError, match="won stage 'won' is not one of the stages"):
        FIVE.folded({"lead", "demo"})


def test_the_default_funnel_is_the_six_stages_of_the_chinese_template() -> None:
    """lead, qualified, proposal, negotiation, won, retention (README, funnel.toml): the four
    before won stall after 7 days, won and retention never."""
    default = RunSettings().funnel
    assert default.ids == ["lead", "qualified", "proposal", "negotiation", "won", "retention"]
    assert default.won_ids == ["won", "retention"]
    assert [s.stall_days for s in default.stages] == [7, 7, 7, 7, None, None]
    assert default.named is False


def test_the_figures_read_the_funnel_zone_currency_window_and_statistics_of_a_run() -> None:
    run = RunSettings(
        funnel=FIVE,
        timezone="Asia/Shanghai",
        currency="CNY",
        window_months=6,
        immature_open_share=0.5,
        smoothing_strength=2.0,
        min_resolved_for_p_win=10,
        lang="zh",
        stale_after_days=30,
    )
    assert run.metrics == MetricsSettings(
        funnel=FIVE,
        timezone="Asia/Shanghai",
        currency="CNY",
        window_months=6,
        immature_open_share=0.5,
        smoothing_strength=2.0,
        min_resolved_for_p_win=10,
        partial_history=False,
    )


def test_the_figures_never_read_the_language_mail_or_layout() -> None:
    names = {f.name for f in fields(MetricsSettings)}
    assert not names & {"lang", "reports", "source", "parse", "targets", "rates"}


def test_a_history_from_stage_date_columns_is_partial() -> None:
    run = RunSettings(source=SourceSettings(stage_dates={"won": "Won On"}))
    assert run.metrics.partial_history is True
    assert RunSettings().metrics.partial_history is False


def test_the_currencies_of_rates_are_theirs_and_the_base() -> None:
    rates = ExchangeRates(
        "CurrencyType.csv",
        (ExchangeRate("EUR", 0.9), ExchangeRate("EUR", 0.8), ExchangeRate("GBP", 0.75)),
        base="USD",
    )
    assert rates.currencies == {"EUR", "GBP", "USD"}


def test_rates_without_a_base_hold_only_their_own_currencies() -> None:
    rates = ExchangeRates("funnel.toml", (ExchangeRate("EUR", 0.9),))
    assert rates.currencies == {"EUR"}
