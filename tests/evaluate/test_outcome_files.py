"""Reading outcome files and prices."""

from __future__ import annotations

import json

import pytest

from dmr.errors import InputError, UnknownModelError
from dmr.evaluate.outcomes import (
    load_outcomes,
    load_prices,
    resolve_prices,
    rows_from_dicts,
)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_contaminated_rows_are_left_out_and_counted(tmp_path):
    path = _write(tmp_path / "o.jsonl", [
        {"id": "a", "prompt": "one", "outcomes": {"s": 1, "w": 0}, "benchmark": "x"},
        {"id": "b", "prompt": "two", "outcomes": {"s": 1, "w": 1}, "contaminated": True},
        {"id": "c", "prompt": "three\u2028still three", "outcomes": {"s": 0.5, "w": 0.25}, "benchmark": "y"},
    ])
    data = load_outcomes(path)
    assert [r.id for r in data.rows] == ["a", "c"]
    assert data.contaminated == 1
    assert data.rows[1].prompt == "three\u2028still three"  # a line separator inside a string is not a new row
    assert data.models == ("s", "w") and data.benchmarks == ("x", "y")
    assert [r.id for r in data.subset("y").rows] == ["c"]
    assert data.subset("y").contaminated == 0 and data.subset("").contaminated == 1


@pytest.mark.parametrize("row, message", [
    ({"id": "a", "outcomes": {"s": 1}}, "prompt"),
    ({"id": "a", "prompt": "p", "outcomes": {}}, "outcomes"),
    ({"id": "a", "prompt": "p", "outcomes": {"s": "good"}}, "must be a number"),
])
def test_bad_rows_name_the_line(tmp_path, row, message):
    path = _write(tmp_path / "o.jsonl", [{"id": "ok", "prompt": "p", "outcomes": {"s": 1}}, row])
    with pytest.raises(InputError, match=rf"o.jsonl:2: .*{message}"):
        load_outcomes(path)


def test_rows_from_dicts_like_a_file():
    data = rows_from_dicts([{"id": "1", "prompt": "p", "outcomes": {"low": 1, "high": 1}},
                            {"id": "2", "prompt": "q", "outcomes": {"low": 0, "high": 1}, "contaminated": True}])
    assert len(data.rows) == 1 and data.contaminated == 1
    row = data.rows[0]
    assert (row.id, row.prompt, row.outcomes) == ("1", "p", {"low": 1.0, "high": 1.0})
    assert data.models == ("low", "high")


def test_price_file_gives_the_mean_of_input_and_output(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"_note": "ignored", "s": [10, 30, "list"], "w": [0.6, 0.6, "x"]}))
    assert load_prices(path) == {"s": 20.0, "w": 0.6}


def test_missing_price_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownModelError, match=r"no price for 'mystery-model'.*--prices"):
        resolve_prices(["w", "mystery-model"], {"w": 1.0})
    with pytest.raises(UnknownModelError, match="model registry"):
        resolve_prices(["mystery-model"])


def test_registry_prices_are_used_without_a_file():
    from dmr.registry import default_registry

    registry = default_registry()
    priced = [m for m in registry.models() if registry.model(m).priced][:2]
    prices = resolve_prices(priced)
    assert list(prices) == priced
    for name in priced:
        spec = registry.model(name)
        assert prices[name] == pytest.approx((spec.input_per_1m + spec.output_per_1m) / 2)
