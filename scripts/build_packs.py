"""Write src/dmr/data/keywords/bundled.json: the bundled keyword packs read from their YAML, so that
a cold start does not parse 31 YAML files. Run it after editing a pack; a test fails until you do
(and until then the edited pack is read from its YAML, so nothing is ever stale at run time).

usage: python scripts/build_packs.py
"""

from __future__ import annotations

import json
from pathlib import Path

from dmr.packs import SNAPSHOT, snapshot

OUT = Path(__file__).resolve().parents[1] / "src" / "dmr" / "data" / "keywords" / SNAPSHOT

if __name__ == "__main__":
    OUT.write_text(json.dumps(snapshot(), ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
