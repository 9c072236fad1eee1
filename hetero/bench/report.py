"""Bench results: one Result per figure, and the BenchReport that holds them with its table, JSON and CSV."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
STATUSES = ("ok", "unsupported", "skipped", "error")
REFERENCES = ("numpy", "torch-cpu", "onnxruntime")
FIELDS = ("device", "category", "test", "metric", "unit", "value", "spread", "status", "reason")
# figures where less is better; every other unit (GB/s, GFLOP/s, img/s) is a rate
LOWER_IS_BETTER = frozenset({"us", "ms", "s", "MiB"})
_SHORT_STATUS = {"unsupported": "n/a", "skipped": "skip", "error": "ERROR"}


@dataclass
class Result:
    """One figure on one device (an OpenCL device id, or a reference: "numpy", "torch-cpu", "onnxruntime")."""

    device: str
    category: str  # "device", "op", "model", "parallel" or "onnx"
    test: str
    metric: str
    unit: str
    value: float | None = None
    spread: float | None = None  # (max - min) / median over the repeats
    status: str = "ok"
    reason: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.device, self.category, self.test, self.metric

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.value is not None


def better(unit: str, a: float, b: float) -> bool:
    """Whether figure a beats figure b in this unit."""
    return a < b if unit in LOWER_IS_BETTER else a > b


def speedup(unit: str, ours: float, ref: float) -> float:
    """How many times better ours is than ref (>1: ours is faster / smaller)."""
    if unit in LOWER_IS_BETTER:
        return ref / ours if ours else math.inf
    return ours / ref if ref else math.inf


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _cell(r: Result | None, best: bool) -> str:
    if r is None:
        return "-"
    if not r.ok:
        return _SHORT_STATUS.get(r.status, r.status)
    spread = f" ±{r.spread * 50:.0f}%" if r.spread is not None else ""  # half the range either side
    return _fmt(r.value) + spread + ("*" if best else "")


def _grid(rows: list[list[str]], right_from: int) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) if i < right_from else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  ".join(cells).rstrip())
    return out


@dataclass
class BenchReport:
    """A bench run: the host, the devices and references measured, and every figure."""

    results: list[Result] = field(default_factory=list)
    devices: list[dict] = field(default_factory=list)  # {"id", "name", "kind": "opencl"|"reference", ...}
    host: dict = field(default_factory=dict)
    hetero_version: str = ""
    settings: dict = field(default_factory=dict)

    # ---- access -------------------------------------------------------------------------------------------
    def device_ids(self, kind: str | None = None) -> list[str]:
        return [d["id"] for d in self.devices if kind is None or d.get("kind") == kind]

    def get(self, device: str, category: str, test: str, metric: str) -> Result | None:
        for r in self.results:
            if r.key == (device, category, test, metric):
                return r
        return None

    def _rows(self) -> list[tuple[str, str, str, str]]:
        seen: dict[tuple[str, str, str, str], None] = {}
        for r in self.results:
            seen.setdefault((r.category, r.test, r.metric, r.unit), None)
        return list(seen)

    # ---- serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "hetero_version": self.hetero_version, "host": self.host,
                "settings": self.settings, "devices": self.devices,
                "results": [asdict(r) for r in self.results]}

    @classmethod
    def from_dict(cls, d: dict) -> BenchReport:
        """The report to_dict() wrote; ValueError saying what is wrong with anything else."""
        if not isinstance(d, dict):
            raise ValueError(f"bench report: expected a JSON object, got {type(d).__name__}")
        if not isinstance(d.get("results", []), list) or not all(isinstance(r, dict) for r in d.get("results", [])):
            raise ValueError("bench report: 'results' must be a list of objects")
        for key, kind in (("devices", list), ("host", dict), ("settings", dict)):
            if not isinstance(d.get(key, kind()), kind):
                raise ValueError(f"bench report: {key!r} must be a JSON {'list' if kind is list else 'object'}")
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"bench report: format_version {d.get('format_version')!r} is not {FORMAT_VERSION}")
        results = [Result(**{k: r.get(k) for k in FIELDS}) for r in d.get("results", [])]
        for r in results:
            r.reason = r.reason or ""
        return cls(results, list(d.get("devices", [])), dict(d.get("host", {})), d.get("hetero_version", ""),
                   dict(d.get("settings", {})))

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> BenchReport:
        """A report to_json() wrote; ValueError naming the file and what is wrong (missing, not JSON, not a report)."""
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text file (a bench report is JSON written by hetero bench --json)"
                             ) from None
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, RecursionError):
            raise ValueError(f"{path}: not JSON (a bench report is written by hetero bench --json)") from None
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def to_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(FIELDS)
            for r in self.results:
                w.writerow(["" if getattr(r, k) is None else getattr(r, k) for k in FIELDS])

    # ---- text -------------------------------------------------------------------------------------------------
    def table(self) -> str:
        """One row per figure, a column per device and reference (best marked *), then our best device's
        ratio to each reference (>1: ours is better), a legend and the reasons for what did not run."""
        opencl = self.device_ids("opencl")
        sets = self.device_ids("set")  # devices training one model together: shown, not counted as "ours"
        # an unavailable reference keeps its column where it recorded why it could not run (onnxruntime does)
        recorded = {r.device for r in self.results}
        refs = [d["id"] for d in self.devices if d.get("kind") == "reference"
                and (d.get("available", True) or d["id"] in recorded)]
        columns = opencl + sets + refs
        head = ["category", "test", "metric", "unit"] + columns + [f"ours/{r}" for r in refs]
        rows = [head]
        for category, test, metric, unit in self._rows():
            cells = {c: self.get(c, category, test, metric) for c in columns}
            ok = {c: r.value for c, r in cells.items() if r is not None and r.ok}
            best = None
            for c, v in ok.items():
                if best is None or better(unit, v, ok[best]):
                    best = c
            ours = [c for c in opencl if c in ok]
            best_ours = None
            for c in ours:
                if best_ours is None or better(unit, ok[c], ok[best_ours]):
                    best_ours = c
            ratios = []
            for ref in refs:
                if best_ours is not None and ref in ok:
                    ratios.append(f"{speedup(unit, ok[best_ours], ok[ref]):.2f}x")
                else:
                    ratios.append("-")
            marked = {c for c in ok if best is not None and ok[c] == ok[best]} if len(ok) > 1 else set()
            rows.append([category, test, metric, unit] + [_cell(cells[c], c in marked) for c in columns] + ratios)
        lines = _grid(rows, right_from=4)
        lines.append("")
        lines.append("± half the range of the repeats around the median; * best; ours/REF: our best device "
                     "against REF (>1 is better: faster, or less time/memory)")
        for d in self.devices:
            note = "" if d.get("available", True) else f" (not available: {d.get('reason', '')})"
            lines.append(f"  {d['id']}: {d.get('name', '')}{note}")
        reasons: dict[str, list[str]] = {}
        for r in self.results:
            if r.status != "ok" and r.reason:
                reasons.setdefault(f"{r.status} on {r.device}: {r.reason}", []).append(f"{r.test} {r.metric}")
        for text, where in reasons.items():
            shown = ", ".join(where[:3]) + (f" (+{len(where) - 3} more)" if len(where) > 3 else "")
            lines.append(f"  {text}  [{shown}]")
        return "\n".join(lines)

    def compare(self, baseline: BenchReport | str | Path | dict) -> str:
        """Each figure measured ok in both runs: baseline value, this run's, and the change (+: better)."""
        if isinstance(baseline, (str, Path)):
            baseline = BenchReport.load(baseline)
        elif isinstance(baseline, dict):
            baseline = BenchReport.from_dict(baseline)
        old = {r.key: r for r in baseline.results if r.ok}
        rows = [["device", "category", "test", "metric", "unit", "baseline", "now", "change"]]
        missing = 0
        for r in self.results:
            b = old.get(r.key)
            if b is None or not r.ok:
                missing += 1
                continue
            gain = speedup(r.unit, r.value, b.value) - 1.0
            noise = max(r.spread or 0.0, b.spread or 0.0) / 2
            verdict = "" if abs(gain) <= noise else (" better" if gain > 0 else " worse")
            rows.append([r.device, r.category, r.test, r.metric, r.unit, _fmt(b.value), _fmt(r.value),
                         f"{gain * 100:+.1f}%{verdict}"])
        lines = _grid(rows, right_from=5)
        lines.append("")
        lines.append("change: how much better this run is (+) or worse (-) than the baseline; 'better'/'worse' "
                     "only where it exceeds the repeats' spread")
        if missing:
            lines.append(f"  {missing} figure(s) of this run have no ok counterpart in the baseline or did not run")
        return "\n".join(lines)
