"""What recipes and the ablation report: mean ± standard deviation over seeds, the paper's claims checked on
them ("clearly above its floor": the seeds' one-standard-deviation bands do not touch), the Markdown section
between the ``ablation`` markers of ``docs/results.md``, the label-efficiency figure, the console table."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import date
from pathlib import Path

from rich.table import Table

from affectlab.experiments.recipe import CEILING, FLOOR, Row, floor_name
from affectlab.io import atomic_write_text

START, END = "<!-- ablation:start -->", "<!-- ablation:end -->"
TITLES = {"synth": "AffectSynth", "mosei": "CMU-MOSEI", "meld": "MELD", "caer": "CAER"}


def markers(dataset: str = "synth") -> tuple[str, str]:
    """The results file's markers of ``dataset``'s ablation section (AffectSynth's: ``START``, ``END``), so an
    ablation on one data set never replaces another's table."""
    return (START, END) if dataset == "synth" else (f"<!-- ablation-{dataset}:start -->", f"<!-- ablation-{dataset}:end -->")
MULTI_MODAL = ("conclugen", "contrast_cluster", "contrast_generative", "contrast_only", "contrast_only_video_audio",
               "contrast_only_video_text", "generative_only")
REFERENCE = "conclugen"  # its recipe also runs the floor, the ceiling and the single-modality probes


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(rows: list[Row]) -> dict[tuple[str, float], dict[str, tuple[float, float, int]]]:
    """(representation, fraction) -> metric -> (mean, std, number of seeds)."""
    groups: dict[tuple[str, float], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.representation, row.fraction), []).append(row)
    return {
        key: {m: (*mean_std([getattr(r, m) for r in group]), len(group)) for m in ("acc", "f1_weighted")}
        for key, group in groups.items()
    }


def own_floor(name: str) -> str:
    """The floor a variant is compared with (its own architecture's, see ``floor_name``)."""
    try:
        return floor_name(name)
    except FileNotFoundError:  # a name that is no variant config (tests)
        return FLOOR


def claims(summary: dict, fractions: list[float], names: list[str]) -> list[str]:
    """The paper's claims and the issue's requirements, each checked on the means (and stated as measured)."""
    lines = []

    def acc(name: str, fraction: float) -> float | None:
        cell = summary.get((name, fraction))
        return cell["acc"][0] if cell else None

    def clearly_above(name: str, floor: str, fraction: float) -> bool:
        """Mean minus one standard deviation above the floor's mean plus one: the seeds' bands do not touch."""
        (mean, std, _), (floor_mean, floor_std, _) = summary[(name, fraction)]["acc"], summary[(floor, fraction)]["acc"]
        return mean - std > floor_mean + floor_std

    for fraction in fractions:
        scored = {n: acc(n, fraction) for n in names if acc(n, fraction) is not None}
        if not scored:
            continue
        best = max(scored, key=scored.get)
        verdict = "holds" if best == REFERENCE else f"does not hold: {best} is best ({scored[best]:.3f} vs {scored.get(REFERENCE, float('nan')):.3f})"
        lines.append(f"- ConCluGen best at {fraction:.0%} labels: {verdict}.")
        simclr = scored.get("simclr")
        if simclr is not None:
            above = [n for n in MULTI_MODAL if n in scored and scored[n] > simclr]
            lines.append(f"- Multi-modal above SimCLR ({simclr:.3f}) at {fraction:.0%}: {len(above)} of "
                         f"{sum(n in scored for n in MULTI_MODAL)} multi-modal variants.")
        # Each variant's own floor where it was run, else the shared three-modality one (--floors shared).
        floor_of = {n: own_floor(n) if (own_floor(n), fraction) in summary else FLOOR for n in scored}
        floors = {n: acc(floor_of[n], fraction) for n in scored}
        if any(v is not None for v in floors.values()):
            beat = [n for n in MULTI_MODAL if n in scored and floors[n] is not None and scored[n] > floors[n]]
            below = [f"{n} ({scored[n]:.3f} vs {floors[n]:.3f})" for n in MULTI_MODAL
                     if n in scored and floors[n] is not None and scored[n] <= floors[n]]
            lines.append(f"- Above its floor at {fraction:.0%}: {len(beat)} of {sum(n in scored for n in MULTI_MODAL)} "
                         "multi-modal variants" + (f"; not: {', '.join(below)}." if below else "."))
            # One seed has no spread: "clearly" needs two on both sides (a partial ablation has fewer).
            judged = [n for n in beat if min(summary[(n, fraction)]["acc"][2], summary[(floor_of[n], fraction)]["acc"][2]) > 1]
            if len(judged) < len(beat):
                lines.append(f"- Clearly above its floor at {fraction:.0%}: not judged for {', '.join(n for n in beat if n not in judged)} "
                             "(one seed: no standard deviation yet).")
            if judged:
                clear = [n for n in judged if clearly_above(n, floor_of[n], fraction)]
                unclear = [n for n in judged if n not in clear]
                lines.append(f"- Clearly above its floor (mean - std > floor mean + std) at {fraction:.0%}: {len(clear)} of "
                             f"{sum(n in scored for n in MULTI_MODAL)} multi-modal variants"
                             + (f"; within a standard deviation: {', '.join(unclear)}." if unclear else "."))
    fused = acc(REFERENCE, 1.0)
    singles = {k[0]: v["acc"][0] for k, v in summary.items() if k[0].startswith(f"{REFERENCE} ") and k[0].endswith(" only")}
    if fused is not None and singles:
        beaten = all(fused > s for s in singles.values())
        listed = ", ".join(f"{name.split()[1]} {value:.3f}" for name, value in singles.items())
        lines.append(f"- Fused representation ({fused:.3f}) above each single modality's ({listed}) at 100 %: "
                     f"{'yes' if beaten else 'no'}.")
    return lines


def markdown(rows: list[Row], fractions: list[float], names: list[str], command: str, seeds: list[int],
             minutes: float, progress: str = "", figure: str | None = None, dataset: str = "synth") -> str:
    summary = summarise(rows)
    floors = sorted(r.representation for r in rows if r.representation.startswith(FLOOR[:-1]))
    floors = list(dict.fromkeys([FLOOR, *floors]))
    others = sorted({r.representation for r in rows} - set(names) - set(floors) - {CEILING})
    order = [*names, *others, *floors, CEILING]
    header = "| representation | " + " | ".join(f"acc @ {f:.0%} | F1w @ {f:.0%}" for f in fractions) + " |"
    start, end = markers(dataset)
    lines = [
        start,
        f"Written by `{command}`{progress} on {date.today().isoformat()}, {platform.machine()} with {os.cpu_count()} CPU cores, "
        f"{minutes:.0f} min of runs; seeds {', '.join(map(str, seeds))}; mean ± standard deviation over seeds of the test "
        "split's accuracy and support-weighted F1 of the linear probe on the frozen representation, trained on "
        "that fraction of the train labels.",
        "",
        header,
        "|" + "---|" * (1 + 2 * len(fractions)),
    ]
    for name in order:
        cells = []
        for fraction in fractions:
            cell = summary.get((name, fraction))
            cells += [f"{cell[m][0]:.3f} ± {cell[m][1]:.3f}" for m in ("acc", "f1_weighted")] if cell else ["", ""]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Checks, computed from the means above:", "", *claims(summary, fractions, names)]
    if figure:
        lines += ["", f"![probe accuracy against the fraction of labels]({figure})"]
    lines.append(end)
    return "\n".join(lines)


def save_figure(rows: list[Row], names: list[str], path: Path, dataset: str = "synth") -> None:
    """Probe accuracy against the label fraction per variant and the floor, the ceiling as a line."""
    from affectlab.plots import label_efficiency_figure, plt

    summary = summarise(rows)
    curves = {}
    for name in [*names, *sorted({r.representation for r in rows if r.representation.startswith(FLOOR[:-1])})]:
        cells = sorted((f, cell["acc"]) for (n, f), cell in summary.items() if n == name)
        if cells:
            curves[name] = ([f for f, _ in cells], [c[0] for _, c in cells], [c[1] for _, c in cells])
    ceiling = summary.get((CEILING, 1.0))
    references = {CEILING: ceiling["acc"][0]} if ceiling else None
    figure = label_efficiency_figure(curves, references, f"ConCluGen variants on {TITLES.get(dataset, dataset)}: linear probe")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_section(path: Path, section: str, dataset: str = "synth") -> None:
    """Replace ``dataset``'s section between its markers (``markers``), or append it under a heading."""
    start, end = markers(dataset)
    text = path.read_text() if path.is_file() else "# Results\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## ConCluGen ablation on {TITLES.get(dataset, dataset)}\n\n" + section + "\n"
    atomic_write_text(path, text)


def results_table(rows: list[Row], title: str) -> Table:
    """Rows: what was probed; columns: accuracy and weighted F1 per label fraction."""
    fractions = sorted({r.fraction for r in rows})
    table = Table(title=title)
    table.add_column("representation")
    for fraction in fractions:
        table.add_column(f"acc @ {fraction:.0%}", justify="right")
        table.add_column(f"F1w @ {fraction:.0%}", justify="right")
    for name in dict.fromkeys(r.representation for r in rows):
        cells = []
        for fraction in fractions:
            row = next((r for r in rows if r.representation == name and r.fraction == fraction), None)
            cells += [f"{row.acc:.3f}", f"{row.f1_weighted:.3f}"] if row else ["", ""]
        table.add_row(name, *cells)
    return table


OVERALL = (("acc", "acc"), ("precision_weighted", "P (weighted)"), ("recall_weighted", "R (weighted)"),
           ("f1_weighted", "F1 (weighted)"))


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def overall_table(rows: list[Row], title: str) -> Table:
    """One line per probed representation and label fraction: accuracy (multi-label: of every (sample, label)
    decision) and precision, recall and F1 averaged with weights proportional to each class's support."""
    table = Table(title=title)
    table.add_column("representation")
    table.add_column("labels", justify="right")
    for _, name in OVERALL:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(row.representation, f"{row.fraction:.0%}", *(_cell(getattr(row, key)) for key, _ in OVERALL))
    return table


def per_class_rows(rows: list[Row]) -> list[dict[str, str]]:
    """The per-class scores of every row, flat: representation, labels, class, then each score."""
    return [{"representation": row.representation, "labels": f"{row.fraction:g}", "class": name,
             **{metric: _cell(scores.get(metric)) for metric in ("acc", "precision", "recall", "f1")}}
            for row in rows for name, scores in row.per_class.items()]


def write_per_class(rows: list[Row], record: Path) -> list[Path]:
    """``<record>-per-class.csv`` and ``.md`` beside the recipe's record: per row and class, accuracy (multi-label
    only: that label's decisions), precision, recall and F1; the overall table first in the Markdown."""
    import csv
    import io

    flat = per_class_rows(rows)
    columns = ["representation", "labels", "class", "acc", "precision", "recall", "f1"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    csv_path = record.with_name(record.stem + "-per-class.csv")
    atomic_write_text(csv_path, buffer.getvalue())
    lines = ["| representation | labels | " + " | ".join(name for _, name in OVERALL) + " |",
             "|---|---:|" + "---:|" * len(OVERALL)]
    lines += [f"| {r.representation} | {r.fraction:.0%} | " + " | ".join(_cell(getattr(r, k)) for k, _ in OVERALL) + " |"
              for r in rows]
    lines += ["", "| " + " | ".join(columns) + " |", "|---|---:|---|" + "---:|" * 4]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in flat]
    md_path = record.with_name(record.stem + "-per-class.md")
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return [csv_path, md_path]
