"""Geo enrichment against known places of the 17 markets (no network: the data ships in
packages). Country must be right everywhere, border towns included; the city is right for
all but the places GeoNames' cities1000 does not list (Rosso, Senegal side: the nearest
listed Senegalese town, Richard-Toll, is given)."""

from __future__ import annotations

import random

import h3  # type: ignore[import-untyped]
import pytest

from enrich.geo import (
    H3_RESOLUTION,
    LOW_ACCURACY_M,
    Gazetteer,
    locate_batch,
    normalise_name,
)
from enrich.places import load_gazetteer
from terrain_contracts.markets import Market
from terrain_contracts.submission import Location

# Coordinates from public maps (town centres).
# (market of the place, what we call it, lat, lon, the GeoNames name expected as city)
KNOWN_PLACES: list[tuple[str, str, float, float, str]] = [
    ("BW", "Gaborone", -24.6282, 25.9231, "Gaborone"),
    ("BW", "Francistown", -21.1700, 27.5078, "Francistown"),
    ("BW", "Maun", -19.9833, 23.4167, "Maun"),
    ("BW", "Kasane (border with Zambia, Zimbabwe, Namibia)", -17.8167, 25.1500, "Kasane"),
    ("BF", "Ouagadougou", 12.3714, -1.5197, "Ouagadougou"),
    ("BF", "Bobo-Dioulasso", 11.1771, -4.2979, "Bobo-Dioulasso"),
    ("BF", "Niangoloko (border with Côte d'Ivoire)", 10.2800, -4.9200, "Niangoloko"),
    ("CM", "Yaoundé", 3.8480, 11.5021, "Yaoundé"),
    ("CM", "Douala", 4.0511, 9.7679, "Douala"),
    ("CM", "Garoua", 9.3017, 13.3921, "Garoua"),
    ("CM", "Kousséri (across the river from N'Djamena)", 12.0769, 15.0306, "Kousséri"),
    ("CF", "Bangui", 4.3947, 18.5582, "Bangui"),
    ("CF", "Berbérati", 4.2612, 15.7922, "Berbérati"),
    ("CF", "Bambari", 5.7680, 20.6757, "Bambari"),
    ("CI", "Abidjan", 5.3600, -4.0083, "Abidjan"),
    ("CI", "Bouaké", 7.6906, -5.0391, "Bouaké"),
    ("CI", "Yamoussoukro", 6.8276, -5.2893, "Yamoussoukro"),
    ("CI", "San-Pédro", 4.7485, -6.6363, "San-Pédro"),
    ("CD", "Kinshasa", -4.3217, 15.3125, "Kinshasa"),
    ("CD", "Lubumbashi", -11.6609, 27.4794, "Lubumbashi"),
    ("CD", "Goma (border with Rwanda)", -1.6792, 29.2228, "Goma"),
    ("CD", "Kisangani", 0.5153, 25.1911, "Kisangani"),
    ("CD", "Zongo (across the river from Bangui)", 4.3433, 18.5928, "Zongo"),
    ("EG", "Cairo", 30.0444, 31.2357, "Cairo"),
    ("EG", "Alexandria", 31.2001, 29.9187, "Alexandria"),
    ("EG", "Aswan", 24.0889, 32.8998, "Aswan"),
    ("EG", "Port Said", 31.2653, 32.3019, "Port Said"),
    ("GN", "Conakry", 9.6412, -13.5784, "Conakry"),
    ("GN", "Kankan", 10.3854, -9.3057, "Kankan"),
    ("GN", "Nzérékoré", 7.7562, -8.8179, "Nzérékoré"),
    ("GW", "Bissau", 11.8636, -15.5977, "Bissau"),
    ("GW", "Gabú", 12.2800, -14.2222, "Gabú"),
    ("GW", "São Domingos (border with Senegal)", 12.4050, -16.1983, "São Domingos"),
    ("JO", "Amman", 31.9539, 35.9106, "Amman"),
    ("JO", "Irbid", 32.5556, 35.8500, "Irbid"),
    ("JO", "Aqaba (next to Eilat)", 29.5321, 35.0063, "Aqaba"),
    ("JO", "Ramtha (border with Syria)", 32.5592, 36.0069, "Ar Ramthā"),
    ("LR", "Monrovia", 6.3156, -10.8074, "Monrovia"),
    ("LR", "Gbarnga", 6.9956, -9.4722, "Gbarnga"),
    ("LR", "Ganta (border with Guinea)", 7.2353, -8.9814, "Ganta"),
    ("MG", "Antananarivo", -18.8792, 47.5079, "Antananarivo"),
    ("MG", "Toamasina", -18.1492, 49.4023, "Toamasina"),
    ("MG", "Mahajanga", -15.7167, 46.3167, "Mahajanga"),
    ("ML", "Bamako", 12.6392, -8.0029, "Bamako"),
    ("ML", "Sikasso", 11.3176, -5.6665, "Sikasso"),
    ("ML", "Kayes", 14.4469, -11.4456, "Kayes"),
    ("MA", "Rabat", 34.0209, -6.8416, "Rabat"),
    ("MA", "Casablanca", 33.5731, -7.5898, "Casablanca"),
    ("MA", "Marrakesh", 31.6295, -7.9811, "Marrakesh"),
    ("MA", "Oujda (near the Algerian border)", 34.6814, -1.9086, "Oujda"),
    ("SN", "Dakar", 14.6928, -17.4467, "Dakar"),
    ("SN", "Saint-Louis", 16.0179, -16.4896, "Saint-Louis"),
    ("SN", "Ziguinchor", 12.5681, -16.2719, "Ziguinchor"),
    ("SN", "Touba", 14.8500, -15.8833, "Touba"),
    ("SN", "Rosso-Sénégal (across the river from Rosso, Mauritania)", 16.4920, -15.8060, "Rosso"),
    ("SL", "Freetown", 8.4657, -13.2317, "Freetown"),
    ("SL", "Bo", 7.9647, -11.7383, "Bo"),
    ("SL", "Kenema", 7.8769, -11.1903, "Kenema"),
    ("TN", "Tunis", 36.8065, 10.1815, "Tunis"),
    ("TN", "Sfax", 34.7406, 10.7603, "Sfax"),
    ("TN", "Sousse", 35.8256, 10.6084, "Sousse"),
    ("TN", "Ben Gardane (border with Libya)", 33.1378, 11.2197, "Ben Gardane"),
]

KNOWN_CITY_MISSES = {"Rosso-Sénégal (across the river from Rosso, Mauritania)"}


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_gazetteer()


def test_known_places_cover_every_market() -> None:
    assert len(KNOWN_PLACES) >= 40
    assert {market for market, *_ in KNOWN_PLACES} == {m.value for m in Market}


def test_country_right_for_every_known_place_and_city_for_all_but_known_misses(
    gazetteer: Gazetteer,
) -> None:
    places = locate_batch(
        gazetteer,
        [Market(market) for market, *_ in KNOWN_PLACES],
        [Location(lat=lat, lon=lon, accuracy_m=10) for _, _, lat, lon, _ in KNOWN_PLACES],
    )
    wrong_country = [
        (name, place.country_code)
        for (market, name, *_), place in zip(KNOWN_PLACES, places, strict=True)
        if place.country_code != market
    ]
    assert wrong_country == []
    wrong_city = {
        name
        for (_, name, _, _, city), place in zip(KNOWN_PLACES, places, strict=True)
        if normalise_name(place.city or "") != normalise_name(city)
    }
    assert wrong_city == KNOWN_CITY_MISSES
    for place in places:
        assert place.flags == []
        assert place.source == "gps"
        assert place.region
        assert place.timezone and "/" in place.timezone
        assert place.h3_cell and len(place.h3_cell) == 15
        assert place.city_distance_km is not None and place.city_distance_km < 20


def test_timezones_of_a_country_with_two(gazetteer: Gazetteer) -> None:
    kinshasa, lubumbashi = locate_batch(
        gazetteer,
        [Market.CD, Market.CD],
        [Location(lat=-4.3217, lon=15.3125), Location(lat=-11.6609, lon=27.4794)],
    )
    assert (kinshasa.timezone, lubumbashi.timezone) == ("Africa/Kinshasa", "Africa/Lubumbashi")


def test_across_a_border_is_outside_market(gazetteer: Gazetteer) -> None:
    # Rosso, Mauritania, seen by a Senegalese agent; Brazzaville by one from Kinshasa.
    rosso, brazzaville = locate_batch(
        gazetteer,
        [Market.SN, Market.CD],
        [Location(lat=16.5138, lon=-15.8050), Location(lat=-4.2634, lon=15.2429)],
    )
    assert rosso.country_code == "MR" and "outside_market" in rosso.flags
    assert brazzaville.country_code == "CG" and "outside_market" in brazzaville.flags


def test_low_accuracy_is_flagged_but_still_placed(gazetteer: Gazetteer) -> None:
    (place,) = locate_batch(
        gazetteer, [Market.SN], [Location(lat=14.6928, lon=-17.4467, accuracy_m=LOW_ACCURACY_M + 1)]
    )
    assert place.flags == ["low_accuracy"]
    assert place.city == "Dakar"


def test_without_gps_the_typed_place_then_the_market(gazetteer: Gazetteer) -> None:
    typed, district, unknown, nothing = locate_batch(
        gazetteer,
        [Market.SN, Market.CI, Market.MA, Market.TN],
        [
            Location(place="Marché Sandaga, Dakar"),
            Location(place="quartier Commerce - BOUAKE"),
            Location(place="chez le client"),
            None,
        ],
    )
    assert (typed.city, typed.country_code, typed.source) == ("Dakar", "SN", "place")
    assert typed.flags == ["no_gps"] and typed.timezone == "Africa/Dakar"
    assert (district.city, district.source) == ("Bouaké", "place")
    assert (unknown.city, unknown.country_code, unknown.source) == (None, "MA", "market")
    assert unknown.timezone == "Africa/Casablanca"
    assert (nothing.country_code, nothing.flags, nothing.source) == ("TN", ["no_gps"], "market")


def test_typed_place_is_only_looked_up_in_the_agents_market(gazetteer: Gazetteer) -> None:
    (place,) = locate_batch(gazetteer, [Market.SN], [Location(place="Bamako")])
    assert place.source == "market" and place.country_code == "SN"


def test_outside_the_region_has_no_country(gazetteer: Gazetteer) -> None:
    (paris,) = locate_batch(gazetteer, [Market.SN], [Location(lat=48.8566, lon=2.3522)])
    assert paris.country_code is None and paris.city is None
    assert paris.flags == ["outside_market"]


def test_a_cells_candidates_give_each_fix_its_own_nearest_places(gazetteer: Gazetteer) -> None:
    """The nearest places searched once per H3 cell are those of a search from the fix."""
    rng = random.Random(5)
    compared = 0
    for _, _, lat, lon, _ in KNOWN_PLACES:
        for _ in range(40):
            fix_lat, fix_lon = lat + rng.uniform(-0.3, 0.3), lon + rng.uniform(-0.3, 0.3)
            facts = gazetteer.cell(h3.latlng_to_cell(fix_lat, fix_lon, H3_RESOLUTION))
            compared += facts.candidates is not None
            assert gazetteer.nearest_in(fix_lat, fix_lon, facts.candidates) == gazetteer.nearest(
                fix_lat, fix_lon
            )
    assert compared > len(KNOWN_PLACES) * 10  # both paths are compared
