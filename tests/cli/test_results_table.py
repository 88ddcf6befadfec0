"""The printed results table (issue 16.9): summary rows only unless per-class rows are asked for, AUs in
numeric order."""

from __future__ import annotations

from affectlab.cli.results import print_results, result_rows

METRICS = {
    "test/acc": 0.5, "test/f1_macro": 0.4,
    "test/f1/happy": 0.6, "test/recall/sad": 0.3,
    "test/au_f1_mean": 0.5, "test/au_f1/AU12": 0.7, "test/au_f1/AU2": 0.2, "test/au_f1/AU10": 0.1, "test/au_f1/AU1": 0.3,
    "test/au_icc/AU4": 0.2, "test/video/acc": 0.45,
}


def test_summary_rows_by_default():
    assert result_rows(METRICS) == ["test/acc", "test/au_f1_mean", "test/f1_macro", "test/video/acc"]


def test_per_class_rows_on_request_and_aus_in_numeric_order():
    rows = result_rows(METRICS, per_class=True)
    aus = [r for r in rows if r.startswith("test/au_f1/")]
    assert aus == ["test/au_f1/AU1", "test/au_f1/AU2", "test/au_f1/AU10", "test/au_f1/AU12"]
    assert len(rows) == len(METRICS)


def test_the_table_says_how_to_see_the_hidden_rows(capsys):
    print_results({"test": METRICS}, "0" * 32, "sqlite:///runs/mlflow.db")
    out = capsys.readouterr().out
    assert "AU12" not in out and "7 per-class rows" in out and "--results_per_class true" in out


def test_heads_are_columns_so_a_multimodal_table_stays_short(capsys):
    metrics = {f"test/{head}{metric}": 0.1 for head in ("", "video/", "audio/", "text/")
               for metric in ("acc", "wacc", "f1_macro")} | {"test/loss": 2.0}
    print_results({"test": metrics}, "0" * 32, "sqlite:///runs/mlflow.db")
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if line.startswith("┃")).split("┃")
    assert [cell.strip() for cell in header[1:-1]] == ["metric", "main", "audio", "text", "video"]
    lines = [line for line in out if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["test/acc", "test/f1_macro", "test/loss", "test/wacc"]
    loss = next(line for line in lines if "test/loss" in line).split("│")
    assert loss[2].strip() == "2.0000" and all(not cell.strip() for cell in loss[3:-1])  # only the fused head has a loss


def test_a_multi_task_runs_au_summaries_are_summary_rows():
    # test/au_intensity/mae is the intensity task's summary, not a per-AU row (it was hidden before)
    metrics = {"test/au_intensity/mae": 0.9, "test/au_intensity/mse": 1.2, "test/au_intensity/AU4": 0.8}
    assert result_rows(metrics) == ["test/au_intensity/mae", "test/au_intensity/mse"]
