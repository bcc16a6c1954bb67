"""PNG plots (matplotlib, Agg backend: no display needed). Imported lazily by the runner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.recorder import Recorder


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cdf(
    path: Path, values: Sequence[float], title: str, xlabel: str, *, discrete: bool = False
) -> Path:
    """An empirical CDF (a step plot; bars of the histogram beside it when ``discrete``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    if len(values):
        xs = np.sort(np.asarray(values, dtype=np.float64))
        ys = np.arange(1, xs.size + 1) / xs.size
        ax.step(xs, ys, where="post", label=f"CDF (n={xs.size})")
        for q, style in ((0.5, "--"), (0.99, ":")):
            ax.axvline(
                float(np.quantile(xs, q)),
                linestyle=style,
                color="grey",
                label=f"p{int(q * 100)} = {np.quantile(xs, q):.3g}",
            )
        if discrete:
            uniq, counts = np.unique(xs, return_counts=True)
            ax2 = ax.twinx()
            ax2.bar(uniq, counts / xs.size, alpha=0.25, color="tab:orange", width=0.6)
            ax2.set_ylabel("fraction")
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    return _save_cdf(plt, fig, ax, path, title, xlabel)


def _save_cdf(plt: Any, fig: Any, ax: Any, path: Path, title: str, xlabel: str) -> Path:
    """Label a CDF axis the one way every plot here does, and write the figure."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative fraction")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def churn_timeline(path: Path, recorder: Recorder, *, outcome_event: str = "") -> Path:
    """Nodes alive over virtual time (from crash/restart events), with operation outcomes."""
    plt = _pyplot()
    events = recorder.events
    alive = 0
    ts: list[float] = []
    ys: list[int] = []
    for e in events:
        if e.event == "node-start" or e.event == "restart":
            alive += 1
        elif e.event == "crash":
            alive -= 1
        else:
            continue
        ts.append(e.t_s)
        ys.append(alive)
    fig, ax = plt.subplots(figsize=(8.0, 4.0), dpi=100)
    if ts:
        ax.step([*ts, events[-1].t_s], [*ys, alive], where="post", label="nodes alive")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("nodes alive")
    crashes = [e.t_s for e in events if e.event == "crash"]
    if crashes:
        ax.plot(crashes, [min(ys)] * len(crashes), "|", color="tab:red", label="crash")
    if outcome_event:
        ops = [e for e in events if e.event == outcome_event and e.latency_s is not None]
        if ops:
            ax2 = ax.twinx()
            for ok, color, label in ((True, "tab:green", "ok"), (False, "tab:red", "failed")):
                sel = [e for e in ops if bool(e.ok) is ok]
                ax2.scatter(
                    [e.t_s for e in sel],
                    [e.latency_s for e in sel],
                    s=8,
                    color=color,
                    alpha=0.6,
                    label=f"{outcome_event} {label}",
                )
            ax2.set_ylabel(f"{outcome_event} latency (virtual s)")
            ax2.legend(loc="upper right")
    ax.legend(loc="lower left")
    ax.set_title("churn timeline")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def bars(
    path: Path, values: dict[str, float], title: str, ylabel: str, *, log: bool = False
) -> Path:
    """One bar per label, the value written above it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    labels = list(values)
    heights = [values[k] for k in labels]
    drawn = ax.bar(labels, heights, color="tab:blue")
    for rect, h in zip(drawn, heights, strict=True):
        ax.annotate(f"{h:.3g}", (rect.get_x() + rect.get_width() / 2, h), ha="center", va="bottom")
    if log and any(h > 0 for h in heights):
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def cdfs(path: Path, series: Mapping[str, Sequence[float]], title: str, xlabel: str) -> Path:
    """Several empirical CDFs on one axis, one per named series."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, values in series.items():
        if len(values):
            xs = np.sort(np.asarray(values, dtype=np.float64))
            ys = np.arange(1, xs.size + 1) / xs.size
            ax.step(xs, ys, where="post", label=f"{name} (n={xs.size})")
    if any(len(v) for v in series.values()):
        ax.legend(loc="lower right")
    return _save_cdf(plt, fig, ax, path, title, xlabel)
