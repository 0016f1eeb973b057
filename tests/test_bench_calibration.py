"""Per-intent thresholds from a calibrated confidence (backline/bench/calibration.py), on
predictions whose right answers are known by construction."""

from __future__ import annotations

from typing import List, Tuple

import pytest

from backline.bench import calibration, metrics
from backline.bench.datasets import OOS
from backline.bench.metrics import Prediction


def history() -> List[Prediction]:
    """`easy` is always right, even at 0.60; `hard` is right only at 0.95 and wrong from 0.60 to 0.88;
    out-of-scope queries are mistaken for `hard` at 0.70 and predicted out-of-scope otherwise."""
    easy = [Prediction("easy", "easy", 0.60 + 0.003 * (i % 10)) for i in range(100)]
    hard_right = [Prediction("hard", "hard", 0.95 + 0.004 * (i % 10)) for i in range(50)]
    hard_wrong = [Prediction("other", "hard", 0.60 + 0.028 * (i % 11)) for i in range(50)]
    oos = [Prediction(OOS, "hard", 0.70) for _ in range(5)] + [Prediction(OOS, OOS, 0.9) for _ in range(45)]
    return easy + hard_right + hard_wrong + oos


def split_history() -> Tuple[List[Prediction], List[int]]:
    """Fold 0 is history(); in fold 1 `easy` is always wrong (20 answers at 0.65)."""
    fold0 = history()
    fold1 = [p for p in history() if p.intent != "easy"] + [Prediction("other", "easy", 0.65) for _ in range(20)]
    return fold0 + fold1, [0] * len(fold0) + [1] * len(fold1)


def test_one_global_threshold_is_held_back_by_the_hardest_intent() -> None:
    row = metrics.choose_high(history())
    assert row is not None
    assert row.threshold == pytest.approx(0.89)
    assert row.coverage == pytest.approx(50 / 200)  # only hard's right answers clear 0.89


def test_per_intent_thresholds_answer_the_easy_intent_alone() -> None:
    derived = calibration.derive(history(), intents=["never_predicted"])
    assert derived is not None
    assert derived.thresholds["easy"] <= 0.60
    assert 0.88 < derived.thresholds["hard"] <= 0.95
    assert "never_predicted" in derived.thresholds
    assert derived.fitted.coverage == pytest.approx(150 / 200)
    assert derived.fitted.accuracy == 1.0
    assert derived.fitted.oos_answered == 0.0


def test_the_threshold_is_where_the_calibrated_chance_reaches_the_cut() -> None:
    model = calibration.calibrate(history())
    for intent in ("easy", "hard"):
        threshold = model.threshold(intent, 0.9)
        if calibration.FLOOR < threshold < calibration.CEILING:
            assert model.chance(intent, threshold) == pytest.approx(0.9, abs=1e-6)
    assert model.offsets["easy"] > model.offsets["hard"]


def test_thresholds_never_go_below_the_floor() -> None:
    always_right = [Prediction("easy", "easy", 0.05 + 0.009 * i) for i in range(100)]
    wrong = [Prediction("x", "hard", 0.5) for _ in range(20)] + [Prediction("hard", "hard", 0.99) for _ in range(20)]
    derived = calibration.derive(always_right + wrong)
    assert derived is not None
    assert min(derived.thresholds.values()) >= calibration.FLOOR


def test_cross_fit_judges_each_fold_by_thresholds_from_the_others() -> None:
    predictions = history() * 2
    folds = [0] * len(history()) + [1] * len(history())
    row = calibration.cross_fit(predictions, folds)
    assert row.coverage == pytest.approx(150 / 200)
    assert row.accuracy == 1.0
    assert row.oos_answered == 0.0


def test_cross_fit_does_not_see_the_fold_it_judges() -> None:
    """In fold 1 `easy` is always wrong (at 0.65), which fold 0 cannot know: judged by fold 0's
    thresholds those answers go out alone and count wrong; fold 1's thresholds keep fold 0's
    `easy` answers (0.60-0.63) for review."""
    row = calibration.cross_fit(*split_history())
    assert row.coverage == pytest.approx((50 + 70) / (200 + 120))
    assert row.accuracy == pytest.approx((50 + 50) / (50 + 70))
    assert row.oos_answered == 0.0


def test_the_floored_scheme_keeps_unseen_mistakes_for_review() -> None:
    """Per-intent thresholds cross-fitted answer fold 1's wrong `easy` alone (see above); the one
    threshold of the other fold (0.89) with only the stricter per-intent highs does not: in each
    fold only hard's 50 right answers (0.95 and up) go out alone."""
    predictions, folds = split_history()
    row = calibration.cross_fit_floored(predictions, folds)
    assert row.coverage == pytest.approx((50 + 50) / (200 + 120))
    assert row.accuracy == 1.0
    assert row.oos_answered == 0.0


def test_the_floored_scheme_takes_a_stricter_high_from_elsewhere() -> None:
    """Raised to 0.975 (another data set's high), only hard's answers at 0.978, 0.982 and 0.986 go
    out alone: 15 in each fold."""
    predictions, folds = split_history()
    row = calibration.cross_fit_floored(predictions, folds, at_least=0.975)
    assert row.coverage == pytest.approx((15 + 15) / (200 + 120))
    assert row.accuracy == 1.0


def test_no_cut_when_every_answer_is_wrong() -> None:
    assert calibration.derive([Prediction("x", "a", 0.9)] * 5) is None


def test_calibration_needs_right_and_wrong_predictions() -> None:
    with pytest.raises(ValueError, match="both right and wrong"):
        calibration.calibrate([Prediction("a", "a", 0.9)] * 3)


def test_floored_keeps_only_the_intents_that_need_more_than_the_one_threshold() -> None:
    derived = calibration.IntentThresholds(
        0.95, {"easy": 0.55, "hard": 0.93, "edge": 0.92}, 0.8, metrics.CoverageRow(0.9, 0.5, 1.0, 0.0)
    )
    kept = calibration.floored(derived, 0.92)
    assert kept.thresholds == {"hard": 0.93}
    assert kept.floor == 0.92 and kept.default == 0.92
