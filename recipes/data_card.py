"""The per-package table of a training set (from build_dataset.py's MANIFEST.tsv), for a shipped model's
folder: what it was trained on, how many hours of each kind, under which licenses.

    python recipes/data_card.py /data/alat-train-all > latentcodec/weights/NAME/DATA.md
"""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path


def main(folder: Path) -> None:
    with (folder / "MANIFEST.tsv").open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by_package: dict[tuple[str, str], list[dict]] = defaultdict(list)
    hours: dict[str, float] = defaultdict(float)
    for r in rows:
        by_package[r["package"], r["version"]].append(r)
        hours[r["kind"] + (" (narrowband)" if r.get("band") == "narrow" else "")] += float(r["seconds"]) / 3600
    print(f"# Training data\n\n{len(rows)} files from {len(by_package)} Debian packages, "
          f"{sum(hours.values()):.2f} h: " + ", ".join(f"{k} {h:.2f} h" for k, h in sorted(hours.items()))
          + ". Built by `recipes/build_dataset.py` (licenses as the packages' copyright files give them).\n")
    print("| package | version | files | hours | kinds | licenses |\n|---|---|---|---|---|---|")
    for (package, version), rs in sorted(by_package.items()):
        kinds = sorted({r["kind"] + ("/narrow" if r.get("band") == "narrow" else "") for r in rs})
        print(f"| {package} | {version} | {len(rs)} | {sum(float(r['seconds']) for r in rs) / 3600:.2f} | "
              f"{', '.join(kinds)} | {rs[0]['license'].replace('|', '/')} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
