#!/usr/bin/env python3
"""Validate dmr's hand-written classifier datasets (datasets/*.jsonl, and the capability rows in
datasets/capability/*.jsonl, which also carry `needs`).

Stdlib only. Checks every line of every datasets/*.jsonl file:
  * valid JSON object
  * non-empty string `task`
  * `task_type` in the taxonomy, `complexity` in the taxonomy
  * `language` is an ISO 639-1 code (two lowercase letters, known code)
  * `source` optional; if present a non-empty string
  * `needs` (capability rows) optional; if present an integer 0..3
  * no unknown keys
Reports duplicates across all files (after lowercasing + whitespace folding),
counts per task_type x complexity, per language, the non-English share,
length buckets and the train/test split sizes.

Exit status: 0 if everything is valid, 1 on any invalid line or duplicate.

Usage: python3 scripts/check_datasets.py [DATASET_DIR]
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

TASK_TYPES = (
    "reasoning", "thinking", "analyzing", "code_creation", "doc_creation",
    "translation", "math", "conversation", "multimodal",
)
COMPLEXITIES = ("simple", "standard", "complex", "research")
ALLOWED_KEYS = {"task", "task_type", "complexity", "language", "source", "needs"}

# ISO 639-1 (two-letter) language codes.
ISO_639_1 = set("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co
cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl
gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg
ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk
ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps
pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta
te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za
zh zu
""".split())

LENGTH_BUCKETS = ("1 word", "<100 chars", "<500 chars", "<2000 chars", ">=2000 chars")


def is_test(task: str) -> bool:
    """Fixed test split: 20% of tasks, chosen by a hash of the exact task text.

    A task is in the test split iff sha256(task as UTF-8) interpreted as an
    integer is divisible by 5. The test split is never trained on.
    """
    return int(hashlib.sha256(task.encode("utf-8")).hexdigest(), 16) % 5 == 0


def normalise(task: str) -> str:
    """Key used for duplicate detection: lowercase, whitespace folded."""
    return re.sub(r"\s+", " ", task.lower()).strip()


def length_bucket(task: str) -> str:
    if len(task.split()) <= 1:
        return LENGTH_BUCKETS[0]
    n = len(task)
    if n < 100:
        return LENGTH_BUCKETS[1]
    if n < 500:
        return LENGTH_BUCKETS[2]
    if n < 2000:
        return LENGTH_BUCKETS[3]
    return LENGTH_BUCKETS[4]


def validate_row(row: object) -> list[str]:
    errors: list[str] = []
    if not isinstance(row, dict):
        return ["line is not a JSON object"]
    extra = set(row) - ALLOWED_KEYS
    if extra:
        errors.append(f"unknown keys: {sorted(extra)}")
    task = row.get("task")
    if not isinstance(task, str) or not task.strip():
        errors.append("`task` missing or empty")
    if row.get("task_type") not in TASK_TYPES:
        errors.append(f"invalid task_type: {row.get('task_type')!r}")
    if row.get("complexity") not in COMPLEXITIES:
        errors.append(f"invalid complexity: {row.get('complexity')!r}")
    lang = row.get("language")
    if not isinstance(lang, str) or lang not in ISO_639_1:
        errors.append(f"invalid language (need ISO 639-1 code): {lang!r}")
    if "needs" in row and (isinstance(row["needs"], bool) or row["needs"] not in (0, 1, 2, 3)):
        errors.append(f"`needs` present but not an integer 0..3: {row['needs']!r}")
    if "source" in row:
        src = row["source"]
        if not isinstance(src, str) or not src.strip():
            errors.append("`source` present but not a non-empty string")
    return errors


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "  n/a"


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    data_dir = Path(argv[1]) if len(argv) > 1 else root / "datasets"
    files = sorted(data_dir.glob("*.jsonl"))
    if not files:
        print(f"no *.jsonl files in {data_dir}")
        return 1

    invalid = 0
    seen: dict[str, str] = {}          # normalised task -> "file:line"
    duplicates: list[tuple[str, str, str]] = []
    cells: Counter = Counter()
    langs: Counter = Counter()
    buckets: Counter = Counter()
    per_file: Counter = Counter()
    split: Counter = Counter()
    split_by_type: dict[str, Counter] = defaultdict(Counter)
    total = 0

    for path in files:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                where = f"{path.name}:{lineno}"
                if not line.strip():
                    print(f"INVALID {where}: blank line")
                    invalid += 1
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    print(f"INVALID {where}: bad JSON ({exc})")
                    invalid += 1
                    continue
                errors = validate_row(row)
                if errors:
                    print(f"INVALID {where}: " + "; ".join(errors))
                    invalid += 1
                    continue
                task = row["task"]
                key = normalise(task)
                if key in seen:
                    duplicates.append((where, seen[key], task[:80]))
                else:
                    seen[key] = where
                total += 1
                per_file[path.name] += 1
                cells[(row["task_type"], row["complexity"])] += 1
                langs[row["language"]] += 1
                buckets[length_bucket(task)] += 1
                part = "test" if is_test(task) else "train"
                split[part] += 1
                split_by_type[row["task_type"]][part] += 1

    for where, first, snippet in duplicates:
        print(f"DUPLICATE {where} (first seen {first}): {snippet!r}")

    print(f"\n== files ({len(files)}) ==")
    for name, n in sorted(per_file.items()):
        print(f"  {name:<32} {n:6d}")
    print(f"  {'total valid rows':<32} {total:6d}")

    print("\n== task_type x complexity ==")
    header = f"  {'task_type':<14}" + "".join(f"{c:>10}" for c in COMPLEXITIES) + f"{'total':>10}"
    print(header)
    for tt in TASK_TYPES:
        row_counts = [cells[(tt, c)] for c in COMPLEXITIES]
        print(f"  {tt:<14}" + "".join(f"{n:>10}" for n in row_counts) + f"{sum(row_counts):>10}")
    col = [sum(cells[(tt, c)] for tt in TASK_TYPES) for c in COMPLEXITIES]
    print(f"  {'total':<14}" + "".join(f"{n:>10}" for n in col) + f"{sum(col):>10}")

    print("\n== languages ==")
    for lang, n in langs.most_common():
        print(f"  {lang:<6} {n:6d}  {pct(n, total)}")
    non_en = total - langs.get("en", 0)
    print(f"  non-English share: {non_en}/{total} = {pct(non_en, total).strip()}")

    print("\n== length buckets ==")
    for b in LENGTH_BUCKETS:
        print(f"  {b:<14} {buckets[b]:6d}  {pct(buckets[b], total)}")

    print("\n== train/test split (test iff sha256(task) % 5 == 0) ==")
    print(f"  train {split['train']:6d}  {pct(split['train'], total)}")
    print(f"  test  {split['test']:6d}  {pct(split['test'], total)}")
    for tt in TASK_TYPES:
        c = split_by_type.get(tt)
        if c:
            print(f"    {tt:<14} train {c['train']:5d}  test {c['test']:5d}")

    print(f"\ninvalid lines: {invalid}   duplicates: {len(duplicates)}")
    if invalid or duplicates:
        print("FAIL")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
