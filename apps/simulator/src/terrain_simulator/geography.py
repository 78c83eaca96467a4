"""Where the visits happen: main cities of the 17 markets, with real coordinates and a
weight for how many visits each gets, plus border towns where a GPS fix can land in the
neighbouring country."""

from __future__ import annotations

from dataclasses import dataclass

from terrain_contracts.markets import Market


@dataclass(frozen=True, slots=True)
class City:
    name: str
    lat: float
    lon: float
    weight: int


CITIES: dict[Market, tuple[City, ...]] = {
    Market.BW: (
        City("Gaborone", -24.6282, 25.9231, 5),
        City("Francistown", -21.1700, 27.5078, 2),
        City("Maun", -19.9833, 23.4167, 1),
    ),
    Market.BF: (
        City("Ouagadougou", 12.3714, -1.5197, 5),
        City("Bobo-Dioulasso", 11.1771, -4.2979, 3),
        City("Koudougou", 12.2526, -2.3627, 1),
    ),
    Market.CM: (
        City("Douala", 4.0511, 9.7679, 5),
        City("Yaoundé", 3.8480, 11.5021, 5),
        City("Garoua", 9.3017, 13.3921, 1),
        City("Bamenda", 5.9597, 10.1460, 1),
    ),
    Market.CF: (City("Bangui", 4.3947, 18.5582, 5), City("Berbérati", 4.2612, 15.7922, 1)),
    Market.CI: (
        City("Abidjan", 5.3600, -4.0083, 8),
        City("Bouaké", 7.6906, -5.0300, 2),
        City("Yamoussoukro", 6.8276, -5.2893, 1),
        City("San-Pédro", 4.7485, -6.6363, 1),
    ),
    Market.CD: (
        City("Kinshasa", -4.4419, 15.2663, 8),
        City("Lubumbashi", -11.6609, 27.4794, 3),
        City("Goma", -1.6792, 29.2228, 2),
        City("Kisangani", 0.5167, 25.2000, 1),
    ),
    Market.EG: (
        City("Cairo", 30.0444, 31.2357, 8),
        City("Alexandria", 31.2001, 29.9187, 4),
        City("Giza", 30.0131, 31.2089, 3),
        City("Aswan", 24.0889, 32.8998, 1),
    ),
    Market.GN: (
        City("Conakry", 9.6412, -13.5784, 5),
        City("Kankan", 10.3854, -9.3057, 1),
        City("Labé", 11.3182, -12.2833, 1),
    ),
    Market.GW: (City("Bissau", 11.8817, -15.6178, 4), City("Bafatá", 12.1667, -14.6667, 1)),
    Market.JO: (
        City("Amman", 31.9454, 35.9284, 6),
        City("Irbid", 32.5556, 35.8500, 2),
        City("Zarqa", 32.0728, 36.0880, 2),
        City("Aqaba", 29.5320, 35.0063, 1),
    ),
    Market.LR: (City("Monrovia", 6.3156, -10.8074, 5), City("Gbarnga", 6.9956, -9.4722, 1)),
    Market.MG: (
        City("Antananarivo", -18.8792, 47.5079, 6),
        City("Toamasina", -18.1492, 49.4023, 2),
        City("Mahajanga", -15.7167, 46.3167, 1),
        City("Fianarantsoa", -21.4536, 47.0858, 1),
    ),
    Market.ML: (
        City("Bamako", 12.6392, -8.0029, 6),
        City("Sikasso", 11.3176, -5.6665, 1),
        City("Mopti", 14.4843, -4.1830, 1),
    ),
    Market.MA: (
        City("Casablanca", 33.5731, -7.5898, 7),
        City("Rabat", 34.0209, -6.8416, 4),
        City("Marrakech", 31.6295, -7.9811, 3),
        City("Fès", 34.0181, -5.0078, 2),
        City("Tanger", 35.7595, -5.8340, 2),
    ),
    Market.SN: (
        City("Dakar", 14.7167, -17.4677, 7),
        City("Thiès", 14.7910, -16.9256, 2),
        City("Saint-Louis", 16.0326, -16.4818, 1),
        City("Ziguinchor", 12.5681, -16.2719, 1),
    ),
    Market.SL: (
        City("Freetown", 8.4657, -13.2317, 5),
        City("Bo", 7.9647, -11.7383, 2),
        City("Kenema", 7.8767, -11.1875, 1),
    ),
    Market.TN: (
        City("Tunis", 36.8065, 10.1815, 6),
        City("Sfax", 34.7406, 10.7603, 3),
        City("Sousse", 35.8256, 10.6084, 2),
        City("Gabès", 33.8815, 10.0982, 1),
    ),
}

# Where an agent of the first market, working near the border, gets a fix in the second.
ACROSS_BORDER: dict[Market, City] = {
    Market.SN: City("Banjul (GM)", 13.4549, -16.5790, 1),
    Market.CI: City("Bobo-Dioulasso (BF)", 11.1771, -4.2979, 1),
    Market.ML: City("Ouagadougou (BF)", 12.3714, -1.5197, 1),
    Market.GN: City("Freetown (SL)", 8.4657, -13.2317, 1),
    Market.CD: City("Brazzaville (CG)", -4.2634, 15.2429, 1),
    Market.JO: City("Irbid outskirts (SY)", 32.6500, 36.1000, 1),
    Market.TN: City("Tébessa (DZ)", 35.4040, 8.1240, 1),
}
