"""``dmr eval --outcomes --plot``: quality against the share of strong calls and against cost (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_outcomes"]


def plot_outcomes(report: dict[str, Any], path: str | Path) -> Path:
    """One row of two panels per benchmark subset of an outcome report (see ``dmr.evaluate.harness``)."""
    subsets = report["subsets"]
    pool = report.get("pool")
    # The pool is measured on every row that scores all its models, so it gets a row of its own rather
    # than a benchmark's panel.
    rows = len(subsets) + (1 if pool else 0)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4.8 * rows), squeeze=False)
    c_strong, c_weak = report["prices"][report["strong"]], report["prices"][report["weak"]]
    for (share_ax, cost_ax), sub in zip(axes, subsets):
        weak, strong = sub["weak_quality"], sub["strong_quality"]
        for label, points in sub["curves"].items():
            style = {"linestyle": "--", "color": "grey"} if label == "random" else {}
            metrics = sub["routers"][label]
            name = label if metrics["apgr"] is None else f"{label} (APGR {metrics['apgr']:.2f})"
            costs = [f * c_strong + (1 - f) * c_weak for f in points["shares"]]
            share_ax.plot(points["shares"], points["qualities"], label=name, **style)
            cost_ax.plot(costs, points["qualities"], label=name, **style)
        for ax, x_weak, x_strong in ((share_ax, 0.0, 1.0), (cost_ax, c_weak, c_strong)):
            ax.scatter([x_weak], [weak], marker="s", color="tab:red", zorder=3, label=f"{report['weak']} alone")
            ax.scatter([x_strong], [strong], marker="^", color="tab:green", zorder=3,
                       label=f"{report['strong']} alone")
            ax.axhline(0.95 * strong, color="tab:green", linewidth=0.6, linestyle=":", label="95% of strong")
            ax.set_ylabel("mean quality")
            ax.grid(alpha=0.3)
        share_ax.set_xlabel("share of calls to the strong model")
        cost_ax.set_xlabel("cost per call (USD per 1M tokens, (input + output) / 2)")
        share_ax.set_title(f"{sub['benchmark']} (n={sub['n']}): quality vs strong share")
        cost_ax.set_title(f"{sub['benchmark']}: quality vs cost")
        share_ax.legend(fontsize=7, loc="lower right")
    if pool:
        ax, spare = axes[-1]
        ax.plot([p["cost"] for p in pool["frontier"]], [p["quality"] for p in pool["frontier"]], marker=".",
                color="black", label="pool frontier")
        for model, single in pool["singles"].items():
            ax.scatter([single["cost"]], [single["quality"]], marker="o", zorder=3)
            ax.annotate(model, (single["cost"], single["quality"]), fontsize=7)
        ax.set_title(f"pool of {len(pool['singles'])} models, {pool['n']} prompts: quality vs cost")
        ax.set_xlabel("cost per call (USD per 1M tokens, (input + output) / 2)")
        ax.set_ylabel("mean quality")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        spare.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
