"""Every test story through the trained model: actions AND the routing slots the stories state.

`rasa test core` (make test-stories) checks the predicted actions only; this checks, after each action
the routing policy predicted, the ``handoff_mode`` / ``escalation_reason`` / ``escalation_detail`` the
story states (tests/story_runner.py). Stories under tests/conversations/ go through the real NLU (no
fixed intent) or fix a confidence, so the confidence tiers and the modifiers are exercised too.
"""

import os
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from tests.story_runner import ROOT, StoryRunner, stories

MODEL = Path(os.environ.get("BACKLINE_STORY_MODEL", ROOT / "models" / "backline.tar.gz"))
STORIES: List[Tuple[Path, dict]] = list(stories())


@pytest.fixture(scope="module")
def runner() -> Iterator[StoryRunner]:
    assert MODEL.is_file(), f"{MODEL} is missing: `make train` first"
    loaded = StoryRunner(MODEL)
    yield loaded
    loaded.close()


@pytest.mark.parametrize("path,story", STORIES, ids=[f"{p.stem}:{s.get('story')}" for p, s in STORIES])
def test_story_routes_as_it_says(runner: StoryRunner, path: Path, story: dict) -> None:
    outcome = runner.run(path, story)
    assert outcome.problems == [], f"{outcome.path}: {outcome.name}\n  " + "\n  ".join(outcome.problems)


def test_a_wrong_reason_in_a_story_fails(runner: StoryRunner) -> None:
    """The checker itself: the same story with the wrong stated reason must be reported."""
    story = {
        "story": "wrong reason on purpose",
        "steps": [
            {"user": "i want to talk to a human", "intent": "request_human"},
            {"action": "action_handoff"},
            {"slot_was_set": [{"handoff_mode": "human"}, {"escalation_reason": "low_confidence"}]},
        ],
    }
    outcome = runner.run(ROOT / "tests" / "stories" / "test_routing.yml", story)
    assert outcome.problems == ["step 3: slot escalation_reason is 'explicit_request', story says 'low_confidence'"]


def test_a_wrong_action_in_a_story_fails(runner: StoryRunner) -> None:
    story = {
        "story": "wrong action on purpose",
        "steps": [
            {"user": "i want to return my dock", "intent": "return_item"},
            {"action": "utter_return_item"},
        ],
    }
    outcome = runner.run(ROOT / "tests" / "stories" / "test_routing.yml", story)
    assert len(outcome.problems) == 1
    assert outcome.problems[0].startswith("step 2: predicted collect_return_item (")
    assert outcome.problems[0].endswith("story says utter_return_item")
