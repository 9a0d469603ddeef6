"""A small labelled set the ML tests train on (written here, so the tests need no data files)."""

from __future__ import annotations

import json

import pytest

_ROWS = [
    ("write a python function that reverses a list", "code_creation", "simple"),
    ("implement a thread-safe LRU cache in Rust with benchmarks and fuzz tests", "code_creation", "complex"),
    ("fix the off-by-one bug in this loop: for i in range(len(a)+1): print(a[i])", "code_creation", "simple"),
    ("write a SQL query that counts orders per customer", "code_creation", "standard"),
    ("translate 'good morning' into French", "translation", "simple"),
    ("translate this contract clause into German, keeping the legal terms exact", "translation", "standard"),
    ("übersetze 'danke schön' ins Englische", "translation", "simple"),
    ("what is 17 times 23?", "math", "simple"),
    ("prove that there are infinitely many primes", "math", "complex"),
    ("solve the integral of x^2 e^x dx step by step", "math", "standard"),
    ("hi there!", "conversation", "simple"),
    ("thanks, that helped a lot", "conversation", "simple"),
    ("how are you doing today?", "conversation", "simple"),
    ("write a short thank-you email to my landlord", "doc_creation", "simple"),
    ("draft a two-page project proposal for a community garden", "doc_creation", "standard"),
    ("summarise this meeting transcript in five bullets: we agreed to ship on friday", "analyzing", "simple"),
    ("here are our churn numbers for 2023: 5%, 7%, 9%. what patterns do you see?", "analyzing", "standard"),
    ("brainstorm ten names for a bakery that sells plants", "thinking", "simple"),
    ("why does ice float on water?", "reasoning", "simple"),
    ("design a multi-region failover strategy for our payments database and justify each trade-off",
     "reasoning", "complex"),
]


def rows(repeat: int = 3) -> list[dict[str, str]]:
    """The rows, each repeated with small variations so that both splits see every label."""
    out = []
    for k in range(repeat):
        for task, task_type, complexity in _ROWS:
            out.append({"task": f"{task} (v{k})" if k else task, "task_type": task_type,
                        "complexity": complexity, "language": "en"})
    return out


@pytest.fixture
def small_jsonl(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows()) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_rows():
    return rows()
