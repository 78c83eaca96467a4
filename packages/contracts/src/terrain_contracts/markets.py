"""The 17 markets of Orange Africa and Middle East that Terrain serves.

The market code is the ISO 3166-1 alpha-2 country code. It routes alerts (a manager only
ever sees their own market), is the default region for parsing local phone numbers, and
partitions analytics. Adding a market is a contract change: it widens the accepted values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Market(StrEnum):
    BW = "BW"
    BF = "BF"
    CM = "CM"
    CF = "CF"
    CI = "CI"
    CD = "CD"
    EG = "EG"
    GN = "GN"
    GW = "GW"
    JO = "JO"
    LR = "LR"
    MG = "MG"
    ML = "ML"
    MA = "MA"
    SN = "SN"
    SL = "SL"
    TN = "TN"


@dataclass(frozen=True, slots=True)
class MarketInfo:
    code: Market
    name: str
    timezone: str
    capital: str
    capital_lat: float
    capital_lon: float


MARKETS: dict[Market, MarketInfo] = {
    info.code: info
    for info in (
        MarketInfo(Market.BW, "Botswana", "Africa/Gaborone", "Gaborone", -24.6282, 25.9231),
        MarketInfo(
            Market.BF, "Burkina Faso", "Africa/Ouagadougou", "Ouagadougou", 12.3714, -1.5197
        ),
        MarketInfo(Market.CM, "Cameroon", "Africa/Douala", "Yaoundé", 3.8480, 11.5021),
        MarketInfo(
            Market.CF, "Central African Republic", "Africa/Bangui", "Bangui", 4.3947, 18.5582
        ),
        MarketInfo(Market.CI, "Côte d'Ivoire", "Africa/Abidjan", "Abidjan", 5.3600, -4.0083),
        MarketInfo(Market.CD, "DR Congo", "Africa/Kinshasa", "Kinshasa", -4.4419, 15.2663),
        MarketInfo(Market.EG, "Egypt", "Africa/Cairo", "Cairo", 30.0444, 31.2357),
        MarketInfo(Market.GN, "Guinea", "Africa/Conakry", "Conakry", 9.6412, -13.5784),
        MarketInfo(Market.GW, "Guinea-Bissau", "Africa/Bissau", "Bissau", 11.8817, -15.6178),
        MarketInfo(Market.JO, "Jordan", "Asia/Amman", "Amman", 31.9454, 35.9284),
        MarketInfo(Market.LR, "Liberia", "Africa/Monrovia", "Monrovia", 6.3156, -10.8074),
        MarketInfo(
            Market.MG, "Madagascar", "Indian/Antananarivo", "Antananarivo", -18.8792, 47.5079
        ),
        MarketInfo(Market.ML, "Mali", "Africa/Bamako", "Bamako", 12.6392, -8.0029),
        MarketInfo(Market.MA, "Morocco", "Africa/Casablanca", "Rabat", 34.0209, -6.8416),
        MarketInfo(Market.SN, "Senegal", "Africa/Dakar", "Dakar", 14.7167, -17.4677),
        MarketInfo(Market.SL, "Sierra Leone", "Africa/Freetown", "Freetown", 8.4657, -13.2317),
        MarketInfo(Market.TN, "Tunisia", "Africa/Tunis", "Tunis", 36.8065, 10.1815),
    )
}
