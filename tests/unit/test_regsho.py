"""Reg SHO daily files: header, trailer record count, errors; HTTP source;
short_volume_weekly."""

import pandas as pd
import pytest

from spine.derive import calcs
from spine.emulator import Emulator
from spine.ingest.sources import SourceError, catalog, regsho, synthetic
from tests.helpers import clean_frame

FILE = ("Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market\n"
        "20250602|AAPL|1200.5|10|3000|B,Q,N\n"
        "20250602|aapl|10|0|20|Q\n"
        "2\n")


def test_parse_the_published_layout():
    df = regsho.parse(FILE, "CNMSshvol20250602.txt")
    assert list(df["Symbol"]) == ["AAPL", "aapl"]  # case-sensitive symbols
    assert df.loc[0, "ShortVolume"] == 1200.5 and df.loc[0, "Market"] == "B,Q,N"


@pytest.mark.parametrize("text, message", [
    (FILE.replace("\n2\n", "\n3\n"), "trailer declares 3 records but the file has 2"),
    (FILE.replace("\n2\n", "\n"), "expected a trailer with the record count"),
    (FILE.replace("Date|", "Day|"), "line 1: expected the header"),
    (FILE.replace("|1200.5|", "|12o0|"), "line 2: field ShortVolume: '12o0'"),
    (FILE.replace("|Q\n2", "\n2"), "line 3: 5 fields, expected 6"),
])
def test_damaged_files_are_refused(text, message):
    with pytest.raises(SourceError, match=f"CNMSshvol20250602.txt.*{message}"):
        regsho.parse(text, "CNMSshvol20250602.txt")


def test_http_source_against_the_emulator():
    with Emulator(as_of="2025-08-01") as em:
        src = catalog.get("finra_regsho", {"regsho": {"base_url": f"{em.base_url}/regsho"}})
        cap = src.fetch("finra_regsho_daily", {"trade_date": "2025-06-02"})
        expected = synthetic.regsho_rows("2025-06-02")
        assert len(cap.table) == len(expected) and cap.payload[0][0] == "CNMSshvol20250602.txt"
        pd.testing.assert_series_equal(cap.table["TotalVolume"], expected["TotalVolume"])
        with pytest.raises(SourceError, match="HTTP 404.*trading day"):
            src.fetch("finra_regsho_daily", {"trade_date": "2025-05-26"})  # Memorial Day


def test_short_volume_weekly_by_hand():
    sw = calcs.symbol_week(clean_frame([("AAA", "ATS", "XATS", 300, 3),
                                        ("AAA", "OTC", "ZFRM", 700, 7),
                                        ("BBB", "ATS", "XATS", 50, 1)]))
    daily = pd.DataFrame({
        "trade_date": pd.to_datetime(["2025-06-02", "2025-06-03", "2025-06-02"]),
        "symbol": ["AAA", "AAA", "CCC"], "short_volume": [40.0, 60.0, 5.0],
        "short_exempt_volume": [0.0, 1.0, 0.0], "total_volume": [100.0, 300.0, 10.0],
        "market": ["Q", "B,Q,N", "N"], "capture_id": "x"})
    week = pd.Timestamp("2025-06-02")
    out = calcs.compute("short_volume_weekly", {"symbol_week": sw, "regsho": daily},
                        week_start=week, trading_days={week: 5}).set_index("symbol")
    assert out.loc["AAA", "short_ratio"] == pytest.approx(100 / 400)
    assert out.loc["AAA", "ats_share"] == pytest.approx(0.3)
    assert out.loc["AAA", "days_with_data"] == 2 and out.loc["AAA", "trading_days"] == 5
    assert pd.isna(out.loc["BBB", "short_ratio"]) and out.loc["BBB", "days_with_data"] == 0
    # FINRA's weekly OTC total for AAA (1,000) against Reg SHO's volume for it (400)
    assert out.loc["AAA", "otc_share_of_regsho"] == pytest.approx(1000 / 400)
    assert "CCC" not in out.index  # not traded off-exchange in this tier
