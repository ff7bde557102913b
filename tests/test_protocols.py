import pytest
from law_fixtures import synthetic_table

from p2law.analysis import protocols


def test_split_by_tokens_first_80_percent_of_each_curve():
    df = synthetic_table(n_ckpt=10)
    fit_rows, val = protocols.split_by_tokens(df, 0.8)
    assert len(fit_rows) == 8 * 9 and len(val) == 2 * 9
    for run, g in fit_rows.groupby("run_id"):
        assert g.tokens.max() < val.loc[val.run_id == run, "tokens"].min()


def test_split_by_model_size_holds_out_largest():
    fit_rows, val = protocols.split_by_model_size(synthetic_table())
    assert set(val.n0) == {8e9} and set(fit_rows.n0) == {1e9, 3e9}


def test_split_by_rate_holds_out_highest_per_model():
    fit_rows, val = protocols.split_by_rate(synthetic_table())
    assert set(val.rate) == {0.35} and set(fit_rows.rate) == {0.15, 0.25}


def test_splits_refuse_degenerate_tables():
    with pytest.raises(ValueError, match="two model sizes"):
        protocols.split_by_model_size(synthetic_table(sizes=(1e9,)))
    with pytest.raises(ValueError, match=r"two pruning rates .*m1e\+09/depth"):
        protocols.split_by_rate(synthetic_table(rates=(0.2,)))
    with pytest.raises(ValueError, match="too few to split"):
        protocols.split_by_tokens(synthetic_table(n_ckpt=1))
