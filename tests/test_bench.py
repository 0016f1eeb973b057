"""The pure parts of backline.bench: metrics, data splits, Rasa YAML, configs, the report."""

import csv
import json
from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from backline.bench import configs, datasets, metrics, report
from backline.bench.datasets import OOS
from backline.bench.metrics import CoverageRow, Prediction

# Four in-scope queries (two right) and two out-of-scope ones (one predicted out-of-scope).
PREDICTIONS = [
    Prediction("a", "a", 0.9),  # right
    Prediction("a", "b", 0.6),  # wrong intent
    Prediction("b", "b", 0.8),  # right
    Prediction("b", OOS, 0.7),  # wrongly out-of-scope
    Prediction(OOS, OOS, 0.9),  # caught by the intent
    Prediction(OOS, "a", 0.5),  # caught only below a threshold above 0.5
]


def test_in_scope_accuracy_counts_right_intents_over_in_scope_queries() -> None:
    assert metrics.in_scope_accuracy(PREDICTIONS) == 2 / 4
    assert metrics.in_scope_accuracy(PREDICTIONS, threshold=0.85) == 1 / 4


def test_oos_recall_by_intent_and_by_threshold() -> None:
    assert metrics.oos_recall(PREDICTIONS) == 1 / 2
    assert metrics.oos_recall(PREDICTIONS, threshold=0.5) == 1 / 2
    assert metrics.oos_recall(PREDICTIONS, threshold=0.6) == 1.0


def test_risk_coverage_rows() -> None:
    rows = metrics.risk_coverage(PREDICTIONS, [0.5, 0.6, 0.7, 0.95])
    assert rows == [
        CoverageRow(threshold=0.5, coverage=3 / 4, accuracy=2 / 3, oos_answered=1 / 2),
        CoverageRow(threshold=0.6, coverage=3 / 4, accuracy=2 / 3, oos_answered=0.0),
        CoverageRow(threshold=0.7, coverage=2 / 4, accuracy=1.0, oos_answered=0.0),
        CoverageRow(threshold=0.95, coverage=0.0, accuracy=0.0, oos_answered=0.0),
    ]


def test_choose_high_takes_the_lowest_threshold_within_the_limits() -> None:
    assert metrics.choose_high(PREDICTIONS, grid=[0.5, 0.6, 0.7, 0.8, 0.9]) == CoverageRow(0.7, 0.5, 1.0, 0.0)
    # Allowing half the out-of-scope queries through and 2/3 accuracy admits 0.5.
    assert metrics.choose_high(PREDICTIONS, min_accuracy=0.6, max_oos_answered=0.5, grid=[0.5, 0.9]).threshold == 0.5
    # Nothing answered alone never qualifies.
    assert metrics.choose_high(PREDICTIONS, grid=[0.95]) is None


def test_choose_low_is_where_the_top_intent_below_is_mostly_wrong() -> None:
    # Below 0.7: only "a"->"b" (wrong); below 0.8: that and b->OOS (both wrong); below 0.9: 1 of 3 right.
    assert metrics.choose_low(PREDICTIONS, high=0.9, grid=[0.5, 0.6, 0.7, 0.8, 0.9]) == 0.8
    assert metrics.choose_low(PREDICTIONS, high=0.95, grid=[0.7, 0.8, 0.9]) == 0.9
    # Nothing below any candidate: the lowest candidate.
    assert metrics.choose_low(PREDICTIONS, high=0.7, grid=[0.5, 0.6, 0.7]) == 0.5


def test_percentiles_and_latency_summary() -> None:
    assert metrics.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert metrics.percentile([7.0], 95) == 7.0
    summary = metrics.latency_summary([0.1, 0.2, 0.3, 0.4], wall_seconds=2.0)
    assert (summary.messages, summary.per_second) == (4, 2.0)
    assert summary.p50 == pytest.approx(0.25)
    with pytest.raises(ValueError):
        metrics.percentile([], 50)


def test_derive_takes_the_stricter_of_the_first_data_set_and_the_demo_domain() -> None:
    other = [
        Prediction("x", "x", 0.97),
        Prediction("x", "y", 0.9),
        Prediction("x", "y", 0.4),
        Prediction(OOS, "x", 0.2),
    ]

    def run(name, predictions):
        return report.QualityRun(name, "", "c.yml", 0, 0.0, 0.0, predictions)

    # First data set alone: the lowest grid value above 0.6 (a->"b" at 0.6 drops out) -> 0.61; no
    # in-scope confidence lies below a candidate under 0.61, so low is the lowest candidate.
    # Another public data set ("two": 0.91) is reported, not used.
    chosen = report.derive([run("one", PREDICTIONS), run("two", other)])
    assert (chosen.high, chosen.low) == (0.61, 0.01)
    assert {name: row.threshold for name, row in chosen.per_dataset.items()} == {"one": 0.61, "two": 0.91}
    assert list(chosen.sources) == ["one"]
    # The demo domain: high 0.91; below 0.41..0.90 only wrong answers -> low 0.9. The stricter wins.
    chosen = report.derive([run("one", PREDICTIONS), run(report.DEMO, other)])
    assert (chosen.high, chosen.low) == (0.91, 0.9)
    assert chosen.sources[report.DEMO] == (metrics.coverage_row(other, 0.91), 0.9)
    comment = report.escalation_comment(chosen, "c.yml", "2026-01-01 00:00 UTC")
    assert '    high: 0.91\n    low: 0.90\n    basis: "one: high 0.61' in comment
    assert f"{report.DEMO}: high 0.91 (33.3% of in-scope answered alone, 100.0% of them right" in comment
    assert report.derive([run("none", [Prediction("x", "y", 1.0)]), run(report.DEMO, other)]) is None


def _banking_files(tmp_path: Path) -> tuple:
    categories = [f"cat{index}" for index in range(6)]
    rows = [(f"text {category} {number}", category) for category in categories for number in range(5)]
    csv_path = tmp_path / "train.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows(rows)
    categories_path = tmp_path / "categories.json"
    categories_path.write_text(json.dumps(categories))
    return csv_path, categories_path, rows


def test_banking_split_holds_out_whole_categories_with_a_fixed_seed(tmp_path: Path) -> None:
    csv_path, categories_path, rows = _banking_files(tmp_path)
    split = datasets.banking77(csv_path, categories_path, held_out=2, validation_share=0.2, seed=3)
    again = datasets.banking77(csv_path, categories_path, held_out=2, validation_share=0.2, seed=3)
    assert split == again
    held_out = set(datasets.held_out_categories([f"cat{index}" for index in range(6)], 2, 3))
    assert len(held_out) == 2
    train_intents = {intent for _, intent in split.train}
    assert train_intents.isdisjoint(held_out) and len(train_intents) == 4
    in_scope = [example for example in split.evaluation if example[1] != OOS]
    oos = [example for example in split.evaluation if example[1] == OOS]
    assert len(split.train) == 4 * 4 and len(in_scope) == 4 * 1  # 20 % of 5 per category
    assert set(split.train).isdisjoint(in_scope)
    assert sorted(text for text, _ in oos) == sorted(text for text, category in rows if category in held_out)


def test_held_out_categories_depend_on_the_seed_only() -> None:
    names = [f"c{index:02d}" for index in range(77)]
    first = datasets.held_out_categories(names, 20, datasets.SEED)
    assert first == datasets.held_out_categories(list(reversed(names)), 20, datasets.SEED)
    assert len(set(first)) == 20 and set(first) <= set(names)


def test_clinc150_maps_oos_and_keeps_the_splits(tmp_path: Path) -> None:
    path = tmp_path / "clinc.json"
    path.write_text(
        json.dumps(
            {
                "train": [["book a flight", "book_flight"]],
                "oos_train": [["sing", "oos"]],
                "val": [["flights to rome", "book_flight"]],
                "oos_val": [["dance", "oos"]],
            }
        )
    )
    split = datasets.clinc150(path)
    assert split.train == [("book a flight", "book_flight"), ("sing", OOS)]
    assert split.evaluation == [("flights to rome", "book_flight"), ("dance", OOS)]


def test_k_folds_partition_every_intent() -> None:
    examples = [(f"{intent} {number}", intent) for intent in "abc" for number in range(7)]
    folds = datasets.k_folds(examples, 3, seed=1)
    assert sorted(example for _, test in folds for example in test) == sorted(examples)
    for train, test in folds:
        assert set(train).isdisjoint(test) and len(train) + len(test) == len(examples)
        assert {intent for _, intent in test} == {"a", "b", "c"}
    assert folds == datasets.k_folds(examples, 3, seed=1)


def test_rasa_yaml_reads_back_with_rasas_reader() -> None:
    examples = [
        ('what\'s the [best](x) way: to say "hi" # now', "translate"),
        ("two\nlines  here ", "translate"),
        ("set a timer", OOS),
        ("   ", "translate"),
    ]
    data = RasaYAMLReader().reads(datasets.rasa_nlu_yaml(examples))
    assert [(m.get("text"), m.get("intent")) for m in data.intent_examples] == [
        ('what\'s the (best)(x) way: to say "hi" # now', "translate"),
        ("two lines here", "translate"),
        ("set a timer", OOS),
    ]
    assert not data.entities


def test_vanilla_config_keeps_only_stock_rasa_parts() -> None:
    project = {
        "recipe": "default.v1",
        "language": "en",
        "assistant_id": "kestrel",
        "pipeline": [
            {"name": "SpacyNLP", "model": "m"},
            {"name": "SpacyTokenizer"},
            {"name": "backline.rasa.sentiment.SentimentAnalyzer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "DIETClassifier", "epochs": 5},
            {"name": "backline.rasa.intent_ensemble.IntentEnsembleClassifier", "weights": {"counts": 1.0}},
            {"name": "backline.rasa.embeddings.StaticEmbeddingFeaturizer"},
        ],
        "policies": [
            {"name": "backline.rasa.routing_policy.RoutingPolicy"},
            {"name": "RulePolicy"},
            {"name": "TEDPolicy", "epochs": 3},
        ],
    }
    vanilla = configs.vanilla(project)
    assert vanilla["pipeline"] == [
        {"name": "WhitespaceTokenizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "DIETClassifier", "epochs": 5},
        {"name": "LogisticRegressionClassifier"},  # the stock classifier the ensemble extends
    ]
    assert vanilla["policies"] == [
        {"name": "MemoizationPolicy"},
        {"name": "RulePolicy"},
        {"name": "TEDPolicy", "epochs": 3},
    ]
    assert vanilla["assistant_id"] == "kestrel-vanilla"
    assert configs.same_pipeline(project, dict(project, policies=[]))
    # An ensemble that picks FAQ answers is replaced by the stock classifier and a ResponseSelector.
    picking = dict(
        project, pipeline=[{"name": "backline.rasa.intent_ensemble.IntentEnsembleClassifier", "retrieval_picks": True}]
    )
    assert [c["name"] for c in configs.vanilla(picking)["pipeline"]] == [
        "WhitespaceTokenizer",
        "LogisticRegressionClassifier",
        "ResponseSelector",
    ]
    assert not configs.same_pipeline(project, vanilla)


def test_report_renders_every_section() -> None:
    run = report.QualityRun("CLINC150", "tiny", "config.yml", 6, 60.0, 1.0, PREDICTIONS)
    summary = metrics.latency_summary([0.1, 0.2], 1.0)
    page = report.render(
        report.Report(
            command="python -m backline.bench run",
            date="2026-01-01 00:00 UTC",
            machine="a CPU (2 cores)",
            wall_seconds=120.0,
            runs=[run],
            thresholds={"config.yml": report.derive([run])},
            serving={"project": {1: summary}, "vanilla": {1: summary}},
            hub_reply={"visible": summary},
        )
    )
    for text in (
        "## Routing quality",
        "## Thresholds",
        "## Serving speed",
        "a CPU (2 cores)",
        "`python -m backline.bench run`",
        "p50 ×1.00",
        "## Expert reply → customer channel",
        "| visible | 2 | 150 ms | 195 ms |",
        "| 0.61 ← lowest meeting the limits | 50.0 | 100.0 | 0.0 | 50.0 / 100.0 |",
    ):
        assert text in page
    skipped = report.render(
        report.Report(
            command="c",
            date="2026-01-01 00:00 UTC",
            machine="m",
            wall_seconds=1.0,
            runs=[run],
            thresholds={"config.yml": None},
            serving_note="Skipped (--skip-serving).",
        )
    )
    assert skipped.split("## Expert reply → customer channel")[1].strip() == "Skipped (--skip-serving)."


def test_thresholds_print_with_the_decimals_they_have() -> None:
    assert (report.fmt(0.7), report.fmt(0.89), report.fmt(0.995)) == ("0.70", "0.89", "0.995")
