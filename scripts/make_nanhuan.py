"""Regenerate streetlight/data/roads/nanhuan-1.yaml (kept for provenance; the YAML is the source of truth)."""

from pathlib import Path

import yaml

from streetlight.registry import make_road, road_to_mapping

HEADER = """\
# Road registry: 南环一路 (Nanhuan 1st Road), Jintan District, Changzhou.
#
# 93 multi-function poles NH-001 … NH-093 in chainage order. THE GEOMETRY IS SYNTHETIC but
# plausible for an east–west urban arterial in Jintan (about 31.7° N, 119.6° E): staggered poles
# 35 m apart on both sides, four segments between intersections, two distribution cabinets each
# feeding a west (L1) and an east (L2) radial feeder. Intersection names are illustrative.
# feeder_position counts from the cabinet outward (1 = nearest), which is what cable-fault
# localisation walks along. Each pole's ported equipment (fed around the clock through a switched,
# metered port): a camera at the intersections and every sixth pole, a small cell every eighth,
# the traffic signals at the four junctions, advance signs before them, parking displays, one
# weather station. Each cabinet meters its feeders (meter EM-C1, EM-C2).
"""


def main() -> None:
    road = make_road(
        93, road_id="nanhuan-1", prefix="NH", name="Nanhuan 1st Road", local_name="南环一路",
        segment_every_m=820.0, cabinet_every_m=1620.0, origin_lat=31.7181, origin_lon=119.5432,
        intersections=["西环一路 Xihuan 1st Rd", "华城路 Huacheng Rd", "金沙路 Jinsha Rd", "东门大街 Dongmen St",
                       "南洲路 Nanzhou Rd"],
        note="Synthetic geometry, plausible for an east-west urban arterial in Jintan (about 31.7 N, 119.6 E).",
    )
    data = road_to_mapping(road)
    data["road"]["lighting_class"] = "CJJ45-I"
    out = Path(__file__).resolve().parent.parent / "streetlight" / "data" / "roads" / "nanhuan-1.yaml"
    out.write_text(HEADER + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=140), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
