"""``dmr eval --plot``: confusion matrices of an evaluation report as one PNG (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_report"]


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, key, title in ((axes[0], "type", "task type"), (axes[1], "complexity", "complexity")):
        labels = report[f"{key}_labels"]
        matrix = report[f"{key}_confusion"]
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("truth")
        ax.set_title(f"{title}: accuracy {report[f'{key}_accuracy']:.3f}, macro-F1 {report[f'{key}_macro_f1']:.3f}")
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                if value:
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    fig.suptitle(f"{report['n']} tasks · tier accuracy {report['tier_accuracy']:.3f} · ECE {report['ece']:.3f}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
