"""Road registry: poles, segments, feeders and cabinets of each road."""

from .geojson import road_geojson
from .loader import load_road, load_road_file, road_from_mapping, road_to_mapping, shipped_roads
from .lwm2m import default_endpoint, with_lwm2m_share
from .model import EQUIPMENT, PORT_KINDS, Cabinet, Feeder, Pole, Port, Road, RoadArrays, Segment, format_chainage
from .synthetic import make_road

__all__ = [
    "EQUIPMENT", "PORT_KINDS", "Cabinet", "Feeder", "Pole", "Port", "Road", "RoadArrays", "Segment", "format_chainage",
    "default_endpoint", "load_road", "load_road_file", "make_road", "road_from_mapping", "road_geojson",
    "road_to_mapping", "shipped_roads", "with_lwm2m_share",
]
