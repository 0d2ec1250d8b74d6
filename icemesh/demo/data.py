"""The demo mesh's raw data: a vaccine maker's material lots, shipments, batches, yields and quality tests.

Deterministic (a fixed seed; the same `--scale` always writes the same bytes) and consistent across domains:
manufacturing's batches consume lots that supply_chain received. Written as CSV seeds into each project's
`seeds/` directory, because seeds load the same way on every dbt adapter (DuckDB today, Spark later).

    python -m icemesh.demo.data --scale 1 [--projects DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
from dataclasses import dataclass

SEED = 20260101
START = dt.date(2026, 1, 5)
SUPPLIERS = ["Lonza", "Merck KGaA", "Croda", "Schott", "West Pharma", "Avantor"]
MATERIALS = {  # material -> (suppliers that make it, unit cost range per kg or per thousand units)
    "antigen": (["Lonza", "Merck KGaA"], (900.0, 1400.0)),
    "adjuvant": (["Croda", "Merck KGaA"], (300.0, 520.0)),
    "buffer": (["Avantor", "Merck KGaA"], (12.0, 30.0)),
    "vial": (["Schott"], (40.0, 65.0)),
    "stopper": (["West Pharma"], (8.0, 15.0)),
}
CARRIERS = ["Kuehne+Nagel", "DHL Life Sciences", "World Courier", "Marken"]
VACCINES = ["FluShield", "RSVax", "CovaGuard"]
PLANTS = ["Basel", "Durham", "Pune"]
STAGES = ["formulation", "filling", "inspection"]
TESTS = {"sterility": (0.0, 0.0), "potency": (0.9, 1.2), "endotoxin": (0.0, 5.0), "ph": (6.8, 7.6)}


@dataclass(frozen=True)
class Sizes:
    lots: int
    shipments_per_lot: int
    batches: int

    @classmethod
    def for_scale(cls, scale: float) -> "Sizes":
        if scale <= 0:
            raise ValueError(f"--scale must be above 0 (got {scale}): 1 is about 9,400 raw rows")
        return cls(lots=max(20, round(1000 * scale)), shipments_per_lot=2, batches=max(10, round(800 * scale)))


def _money(value: float) -> str:
    return f"{value:.2f}"


def generate(projects_dir: str, scale: float = 1.0) -> dict[str, int]:
    """Write every project's seeds under `projects_dir`; returns rows per seed file."""
    sizes = Sizes.for_scale(scale)
    rng = random.Random(SEED)
    lots, shipments = [], []
    for i in range(sizes.lots):
        material = list(MATERIALS)[i % len(MATERIALS)]
        suppliers, (low, high) = MATERIALS[material]
        received = START + dt.timedelta(days=rng.randrange(0, 120))
        status = rng.choices(["released", "quarantine", "rejected"], weights=[88, 9, 3])[0]
        lots.append({"lot_id": f"L{i + 1:06d}", "material": material, "supplier": rng.choice(suppliers),
                     "received_on": received.isoformat(),
                     "expires_on": (received + dt.timedelta(days=rng.choice([180, 365, 730]))).isoformat(),
                     "quantity_kg": _money(rng.uniform(50, 500)), "unit_cost": _money(rng.uniform(low, high)),
                     "qc_status": status})
        for leg in range(sizes.shipments_per_lot):
            shipped = received - dt.timedelta(days=rng.randrange(2, 10) * (sizes.shipments_per_lot - leg))
            carrier = rng.choice(CARRIERS)
            shipments.append({"shipment_id": f"S{len(shipments) + 1:07d}", "lot_id": lots[-1]["lot_id"],
                              "carrier": carrier, "shipped_on": shipped.isoformat(),
                              "delivered_on": (shipped + dt.timedelta(days=rng.randrange(1, 6))).isoformat(),
                              "min_temp_c": _money(rng.uniform(0.5, 2.0) if rng.random() < 0.02 else rng.uniform(2.1, 4.0)),
                              "max_temp_c": _money(rng.uniform(8.1, 11.0) if rng.random() < 0.03 else rng.uniform(5.0, 7.9)),
                              "carrier_contact": f"dispatch{rng.randrange(1, 40)}@{carrier.split()[0].lower().replace('+', '')}.example"})
    by_material = {m: [lot for lot in lots if lot["material"] == m and lot["qc_status"] == "released"] for m in MATERIALS}
    batches, yields, tests = [], [], []
    for i in range(sizes.batches):
        batch_id = f"B{i + 1:06d}"
        started = START + dt.timedelta(days=30 + rng.randrange(0, 150))
        planned = rng.choice([50000, 100000, 200000])
        batches.append({"batch_id": batch_id, "vaccine": VACCINES[i % len(VACCINES)], "plant": rng.choice(PLANTS),
                        "started_on": started.isoformat(),
                        "finished_on": (started + dt.timedelta(days=rng.randrange(10, 25))).isoformat(),
                        "planned_doses": planned,
                        "antigen_lot_id": rng.choice(by_material["antigen"])["lot_id"],
                        "antigen_kg": _money(planned / 1000 * rng.uniform(0.18, 0.22)),
                        "adjuvant_lot_id": rng.choice(by_material["adjuvant"])["lot_id"],
                        "adjuvant_kg": _money(planned / 1000 * rng.uniform(0.45, 0.55))})
        doses = planned
        for stage in STAGES:
            out = int(doses * rng.uniform(0.95, 0.995))
            yields.append({"batch_id": batch_id, "stage": stage, "input_doses": doses, "output_doses": out})
            doses = out
        for test, (low, high) in TESTS.items():
            failed = rng.random() < 0.03
            value = (1.0 if failed else 0.0) if test == "sterility" else \
                (rng.uniform(high, high * 1.2) if failed else rng.uniform(low, high))
            tests.append({"test_id": f"T{len(tests) + 1:07d}", "batch_id": batch_id, "test": test,
                          "result": f"{value:.3f}", "spec_min": f"{low:.3f}", "spec_max": f"{high:.3f}",
                          "tested_on": (started + dt.timedelta(days=rng.randrange(20, 30))).isoformat()})
    written = {}
    for project, name, rows in [("supply_chain", "raw_material_lots", lots), ("supply_chain", "raw_shipments", shipments),
                                ("manufacturing", "raw_batches", batches), ("manufacturing", "raw_yields", yields),
                                ("manufacturing", "raw_quality_tests", tests)]:
        directory = os.path.join(projects_dir, project, "seeds")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"{name}.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        written[f"{project}/{name}"] = len(rows)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icemesh.demo.data", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 is about 9,400 raw rows; rows grow linearly")
    parser.add_argument("--projects", default="dbt_projects", help="the directory holding the dbt projects")
    args = parser.parse_args(argv)
    try:
        written = generate(args.projects, args.scale)
    except (ValueError, OSError) as exc:
        parser.exit(1, f"error: {exc}\n")
    for name, rows in written.items():
        print(f"{name}: {rows:,} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
