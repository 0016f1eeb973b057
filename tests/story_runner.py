"""Runs test stories through the trained model and checks the routing the stories state.

`rasa test core` checks the predicted actions, but applies a story's ``slot_was_set`` steps as
events, so a story that says ``escalation_reason: explicit_request`` passes whatever reason the
policy set. This runner replays each story the way Rasa's processor handles a message, and:

- user steps with an ``intent`` use it (confidence 1.0, or the step's ``confidence`` key, which
  only stories under tests/conversations/ use, to put a message in a confidence tier); user steps
  without one go through the model's real NLU pipeline (tests/conversations/);
- slots are extracted from the message like Rasa does (``action_extract_slots``);
- every ``action`` step is compared with the prediction of the policy ensemble;
- a ``slot_was_set`` step right after an action the routing policy predicted is CHECKED for the
  contract slots (`CHECKED_SLOTS`) against what the policy set; every other ``slot_was_set``
  step (what an action would have set) is applied, as `rasa test` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import yaml

CHECKED_SLOTS = ("handoff_mode", "escalation_reason", "escalation_detail")
ROOT = Path(__file__).resolve().parents[1]
STORY_DIRS = (ROOT / "tests" / "stories", ROOT / "tests" / "conversations")


@dataclass
class Outcome:
    """What happened to one story: the mismatches (empty: it passed) and what it checked."""

    name: str
    path: str
    problems: List[str] = field(default_factory=list)
    checked: List[Dict[str, Any]] = field(default_factory=list)
    """Per user step: {intent, action, slots} where ``slots`` are the contract slots the story checked."""


def stories(dirs: Tuple[Path, ...] = STORY_DIRS) -> Iterator[Tuple[Path, Mapping[str, Any]]]:
    for directory in dirs:
        for path in sorted(directory.glob("*.yml")):
            for story in yaml.safe_load(path.read_text(encoding="utf-8")).get("stories") or []:
                yield path, story


def _entities(step: Mapping[str, Any], text: str) -> List[Dict[str, Any]]:
    out = []
    for item in step.get("entities") or []:
        if isinstance(item, Mapping) and "entity" in item:
            out.append(dict(item))
        elif isinstance(item, Mapping):
            out += [{"entity": k, "value": v} for k, v in item.items()]
    return out


class StoryRunner:
    """One loaded agent, many stories."""

    def __init__(self, model: Path) -> None:
        from rasa.core.agent import Agent

        self.agent = Agent.load(str(model))
        self.domain = self.agent.domain
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def run(self, path: Path, story: Mapping[str, Any]) -> Outcome:
        from rasa.core.channels.channel import CollectingOutputChannel
        from rasa.shared.core.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet, UserUttered
        from rasa.shared.core.trackers import DialogueStateTracker

        from backline.rasa.routing_policy import RoutingPolicy

        outcome = Outcome(story.get("story", "?"), str(path.relative_to(ROOT)))
        tracker = DialogueStateTracker("story-" + outcome.name[:40].replace(" ", "-"), self.domain.slots)
        tracker.update_with_events(
            [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")], self.domain
        )
        routed_by_policy = False
        current: Optional[Dict[str, Any]] = None
        for index, step in enumerate(story.get("steps") or []):
            where = f"step {index + 1}"
            if "user" in step:
                text = str(step["user"]).strip()
                if step.get("intent"):
                    intent = step["intent"]
                    confidence = float(step.get("confidence", 1.0))
                    parse = {
                        "text": text,
                        "intent": {"name": intent, "confidence": confidence},
                        "intent_ranking": [{"name": intent, "confidence": confidence}],
                        "entities": _entities(step, text),
                    }
                else:
                    parse = self.loop.run_until_complete(self.agent.parse_message(text))
                    parse.setdefault("text", text)
                if tracker.latest_action_name != "action_listen":
                    tracker.update(ActionExecuted("action_listen"), self.domain)
                event = UserUttered(text, parse.get("intent"), parse.get("entities") or [], parse)
                tracker.update(event, self.domain)
                self.loop.run_until_complete(
                    self.agent.processor.run_action_extract_slots(CollectingOutputChannel(), tracker)
                )
                current = {"text": text, "intent": (parse.get("intent") or {}).get("name"), "action": None, "slots": {}}
                outcome.checked.append(current)
                routed_by_policy = False
            elif "intent" in step:  # an intent the hub triggers (EXTERNAL_*): no text, no routing
                if tracker.latest_action_name != "action_listen":
                    tracker.update(ActionExecuted("action_listen"), self.domain)
                name = step["intent"]
                tracker.update(
                    UserUttered(
                        None,
                        {"name": name, "confidence": 1.0},
                        [],
                        {"intent": {"name": name, "confidence": 1.0}, "entities": []},
                    ),
                    self.domain,
                )
                routed_by_policy, current = False, None
            elif "action" in step:
                expected = step["action"]
                prediction = self.agent.processor._predict_next_with_tracker(tracker)
                predicted = self.domain.action_names_or_texts[prediction.max_confidence_index]
                if predicted != expected:
                    outcome.problems.append(
                        f"{where}: predicted {predicted} ({prediction.policy_name}), story says {expected}"
                    )
                tracker.update_with_events(prediction.events if predicted == expected else [], self.domain)
                tracker.update(ActionExecuted(expected), self.domain)
                routed_by_policy = predicted == expected and RoutingPolicy.__name__ in (prediction.policy_name or "")
                if current is not None and current["action"] is None:
                    current["action"] = expected
            elif "slot_was_set" in step:
                for item in step["slot_was_set"]:
                    if not isinstance(item, Mapping):
                        continue
                    for name, value in item.items():
                        if routed_by_policy and name in CHECKED_SLOTS:
                            actual = tracker.get_slot(name)
                            if actual != value:
                                outcome.problems.append(f"{where}: slot {name} is {actual!r}, story says {value!r}")
                            if current is not None:
                                current["slots"][name] = value
                        else:
                            tracker.update(SlotSet(name, value), self.domain)
            elif "active_loop" in step:
                tracker.update(ActiveLoop(step["active_loop"]), self.domain)
        return outcome
