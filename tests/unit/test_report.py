"""Report formatting: what a reviewer reads has no raw Python reprs and no float noise."""

import re

import numpy as np
import pandas as pd

from spine import report

REPRS = re.compile(r">\s*(None|nan|NaN|NaT|<NA>|inf)\s*<|Timestamp\(|\d{2}:\d{2}:\d{2}<|"
                   r"\de[+-]\d\d|\.\d{5,}<")


def test_styled_tables_have_no_raw_reprs():
    df = pd.DataFrame({
        "summary_type": ["ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"],
        "participant_name": [None, "X LLC"],
        "shares": [4584707340.5117, np.nan],
        "odd_measure": [56.0, -4.241e6],
        "small_measure": [0.123456789, None],
        "week_start": pd.to_datetime(["2025-08-21", None]),
        "ats_share": [0.5, np.nan],
        "rank_change": pd.array([1, None], dtype="Int64"),
    })
    html = report.styled(df).to_html()
    assert not REPRS.search(html), REPRS.search(html)
    assert "4,584,707,341" in html and "-4,241,000" in html and "2025-08-21<" in html
    assert ">ATS<" in html and ">non-ATS<" in html  # FINRA's codes in words
    assert ">ATS share<" in html and ">Participant name<" in html


def test_gate_measurements_read_as_numbers():
    assert report._plain(None) == "-"
    assert report._plain(1234567.891) == "1,234,568"
    assert report._plain([1, 2.5]) == "1, 2.5"
    assert report.header("z_shares_per_day") == "Z-score shares per day"
    assert report.header("mean_13w_tier_share") == "Mean 13-week tier share"
