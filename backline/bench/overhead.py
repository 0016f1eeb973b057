"""The routing layer's overhead in isolation (issue 18): the same trained model with and without it.

models/backline.tar.gz is loaded once into Rasa's model storage and two prediction graphs are
built from it: the model's own, and one without SentimentAnalyzer, SignalDetectorComponent and
RoutingPolicy (`prune_schema`). Both play the same scripted conversations in one process, as
Rasa's processor handles a message (NLU graph run, then next-action predictions on the growing
tracker until the bot listens; actions are logged, not run), alternating message by message.
A message's figure is its parse plus the first prediction, the one that decides on it.
`python -m backline.bench.overhead` prints the Markdown section (`render`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from backline.bench.metrics import LatencySummary, latency_summary, percentile
from backline.paths import PROJECT_ROOT

MODEL = PROJECT_ROOT / "models" / "backline.tar.gz"
ROUTING_LAYER = (
    "backline.rasa.sentiment.SentimentAnalyzer",
    "backline.rasa.signals.SignalDetectorComponent",
    "backline.rasa.routing_policy.RoutingPolicy",
)
"""The graph components that make up the routing layer (module.Class of the node's `uses`)."""
TARGET_RATIO = 1.05
ROUNDS = 10
WARMUP_ROUNDS = 1
MAX_PREDICTIONS = 10  # per turn, as Rasa's processor (MAX_NUMBER_OF_PREDICTIONS)
POLICY_INPUT = re.compile(r"policy\d+")
CONVERSATIONS: List[List[str]] = [
    script.split(" | ")
    for script in (
        "hi there | where is my order 10023? | it still hasn't arrived | thanks a lot | bye",
        "hello | I want to return the Hub X1 I bought | order 10031 | how long does the refund take? | ok thanks",
        "good morning | what are your opening hours? | are you open on sunday? | great, thank you | goodbye",
        "hey | how much is Kestrel Cloud Pro? | what's the difference with the basic plan? | can I upgrade later? "
        "| sounds good | bye",
        "my invoice INV-2041 is wrong | you charged me twice this month | this is ridiculous, third time I write "
        "| I want to talk to a real person | now",
        "hi | I can't log in, how do I reset my password? | I did not get the email | ok it worked | thanks",
        "this is the worst service I have ever had | my order 10045 arrived broken | I want a refund of €780 "
        "| I will contact my lawyer | bye",
        "hello | does the Hub X1 work with Zigbee? | and with Matter? | what is the warranty? | are you a bot? "
        "| thanks, bye",
        "I want to cancel my subscription | no | just cancel it please | thank you | bye",
        "hi | can you send me a copy of invoice INV-1987? | my email is ana@example.com | perfect | goodbye",
    )
]
"""Ten customer conversations, 52 messages: greetings, orders, refunds, billing, products, anger."""


def component_name(cls: type) -> str:
    """`module.Class` of a graph component class, as config.yml names custom components."""
    return f"{cls.__module__}.{cls.__name__}"


def prune_schema(schema: Any, removed: Sequence[str] = ROUTING_LAYER) -> Any:
    """A copy of the predict GraphSchema `schema` without the nodes whose component is in `removed`.

    A node that needed a removed NLU node gets that node's own `messages` input instead
    (through chains of removed nodes); the ensemble loses the inputs of removed policies,
    and its `policyN` inputs are numbered 0, 1, ... again in their order.
    """
    from rasa.engine.graph import GraphSchema

    gone: Set[str] = {name for name, node in schema.nodes.items() if component_name(node.uses) in removed}

    def replacement(name: str) -> Optional[str]:
        while name in gone:
            upstream = schema.nodes[name].needs.get("messages")
            if upstream is None:
                return None
            name = upstream
        return name

    nodes = {}
    for name, node in schema.nodes.items():
        if name in gone:
            continue
        needs: Dict[str, str] = {}
        policies: List[str] = []
        for parameter, parent in node.needs.items():
            source = replacement(parent)
            if source is None:
                if not POLICY_INPUT.fullmatch(parameter):
                    raise ValueError(f"{name} needs {parent} ({parameter}), which has no messages input to take over")
            elif POLICY_INPUT.fullmatch(parameter):
                policies.append(source)
            else:
                needs[parameter] = source
        renumbered = {f"policy{index}": source for index, source in enumerate(policies)}
        nodes[name] = dataclasses.replace(node, needs={**renumbered, **needs})
    return GraphSchema(nodes)


@dataclass(frozen=True)
class OverheadResult:
    """Per-message latency (seconds) of both stacks, the ratios with/without, and what they predicted."""

    with_routing: LatencySummary  # NLU parse + the message's first next-action prediction
    without_routing: LatencySummary
    p50_ratio: float
    p95_ratio: float
    turn_with: LatencySummary  # the whole turn: parse + every prediction until action_listen
    turn_without: LatencySummary
    cpu_p50_ratio: float  # the same figure in process CPU time: less sensitive to other load on the machine
    parse_p50: Tuple[float, float]  # NLU parse alone: (with, without)
    predictions_per_turn: Tuple[float, float]  # mean: (with, without)
    first_actions: Dict[str, Tuple[str, str]]  # opening message -> first predicted action (with, without)
    load_average: float  # the machine's 1-minute load average at the end of the run

    @property
    def within_target(self) -> bool:
        """Both ratios at most TARGET_RATIO."""
        return max(self.p50_ratio, self.p95_ratio) <= TARGET_RATIO


class _Stack:
    """One prediction graph over the shared model storage, playing conversations like the processor."""

    def __init__(self, schema: Any, storage: Any, metadata: Any) -> None:
        from rasa.engine.graph import ExecutionContext
        from rasa.engine.runner.dask import DaskGraphRunner

        self.nlu_target, self.core_target = metadata.nlu_target, metadata.core_target
        context = ExecutionContext(graph_schema=schema, model_id=metadata.model_id)
        self.runner = DaskGraphRunner.create(graph_schema=schema, model_storage=storage, execution_context=context)
        self.domain = self.runner.run(targets=["domain_provider"])["domain_provider"]
        self.messages: List[float] = []  # parse + first prediction
        self.cpu: List[float] = []  # the same in process CPU time
        self.turns: List[float] = []  # parse + all predictions
        self.parses: List[float] = []
        self.predicted = 0  # predictions made in the timed turns

    def new_tracker(self, sender: str) -> Any:
        from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
        from rasa.shared.core.events import ActionExecuted, SessionStarted
        from rasa.shared.core.trackers import DialogueStateTracker

        events = [ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)]
        return DialogueStateTracker.from_events(sender, events, slots=self.domain.slots)

    def turn(self, tracker: Any, text: str, record: bool) -> str:
        """Parses `text`, logs it, predicts until action_listen; returns the first predicted action."""
        from rasa.core.channels.channel import UserMessage
        from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
        from rasa.shared.core.constants import ACTION_LISTEN_NAME
        from rasa.shared.core.events import ActionExecuted, UserUttered

        message = UserMessage(text, sender_id=tracker.sender_id)
        started, cpu_started = time.perf_counter(), time.process_time()
        results = self.runner.run(
            inputs={PLACEHOLDER_MESSAGE: [message], PLACEHOLDER_TRACKER: tracker}, targets=[self.nlu_target]
        )
        parse = {"text": "", "intent": {"name": None, "confidence": 0.0}, "entities": []}
        parse.update(results[self.nlu_target][0].as_dict(only_output_properties=True))
        parsed = time.perf_counter()
        tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse), self.domain)
        actions: List[str] = []
        decided = cpu_decided = 0.0
        while len(actions) < MAX_PREDICTIONS and (not actions or actions[-1] != ACTION_LISTEN_NAME):
            prediction = self.runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=[self.core_target])[
                self.core_target
            ]
            if not decided:
                decided, cpu_decided = time.perf_counter(), time.process_time()
            action = self.domain.action_names_or_texts[prediction.max_confidence_index]
            tracker.update_with_events(prediction.events, self.domain)
            tracker.update(ActionExecuted(action, prediction.policy_name, prediction.max_confidence))
            actions.append(action)
        done = time.perf_counter()
        if record:
            self.messages.append(decided - started)
            self.cpu.append(cpu_decided - cpu_started)
            self.turns.append(done - started)
            self.parses.append(parsed - started)
            self.predicted += len(actions)
        return actions[0]


def _summary(latencies: Sequence[float]) -> LatencySummary:
    return latency_summary(latencies, sum(latencies))  # messages a second of the serial loop


def _play(stacks: Sequence[_Stack], round_number: int, record: bool, firsts: Dict[str, Tuple[str, str]]) -> None:
    """Plays every conversation once through both stacks, alternating which goes first each message."""
    count = 0
    for number, script in enumerate(CONVERSATIONS):
        trackers = [stack.new_tracker(f"overhead-{round_number}-{number}") for stack in stacks]
        for position, text in enumerate(script):
            order = [0, 1] if count % 2 == 0 else [1, 0]
            count += 1
            actions = ["", ""]
            for index in order:
                actions[index] = stacks[index].turn(trackers[index], text, record)
            if position == 0:
                firsts[text] = (actions[0], actions[1])


def measure(model_path: Path = MODEL, rounds: int = ROUNDS, log: Callable[[str], None] = print) -> OverheadResult:
    """Loads `model_path` once, builds both graphs and times `rounds` passes over CONVERSATIONS
    after WARMUP_ROUNDS untimed ones."""
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # Rasa's per-prediction debug logs would be timed too
    logging.getLogger("rasa").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="backline-overhead-") as directory:
        log(f"[overhead] loading {model_path}")
        storage, metadata = LocalModelStorage.from_model_archive(Path(directory), Path(model_path))
        full = _Stack(metadata.predict_schema, storage, metadata)
        bare = _Stack(prune_schema(metadata.predict_schema), storage, metadata)
        firsts: Dict[str, Tuple[str, str]] = {}
        for warmup in range(WARMUP_ROUNDS):
            _play([full, bare], -1 - warmup, record=False, firsts=firsts)
        for number in range(rounds):
            _play([full, bare], number, record=True, firsts=firsts)
            log(f"[overhead] round {number + 1}/{rounds}: {len(full.messages)} messages per stack")
    with_routing, without_routing = _summary(full.messages), _summary(bare.messages)
    return OverheadResult(
        with_routing=with_routing,
        without_routing=without_routing,
        p50_ratio=with_routing.p50 / without_routing.p50,
        p95_ratio=with_routing.p95 / without_routing.p95,
        cpu_p50_ratio=percentile(full.cpu, 50) / percentile(bare.cpu, 50),
        turn_with=_summary(full.turns),
        turn_without=_summary(bare.turns),
        parse_p50=(percentile(full.parses, 50), percentile(bare.parses, 50)),
        predictions_per_turn=(full.predicted / len(full.turns), bare.predicted / len(bare.turns)),
        first_actions=firsts,
        load_average=os.getloadavg()[0],
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def render(result: OverheadResult) -> List[str]:
    """The Markdown section for docs/benchmarks.md."""
    messages = sum(len(script) for script in CONVERSATIONS)
    verdict = "within" if result.within_target else "above"
    rows = [("with routing layer", result.with_routing), ("without routing layer", result.without_routing)]
    return [
        "## Routing-layer overhead",
        "",
        f"The same trained model, loaded once, with two prediction graphs over the same model storage: the "
        f"model's own, and the same graph without the routing layer (SentimentAnalyzer, SignalDetectorComponent, "
        f"RoutingPolicy; the NLU chain rewired around them, the policy ensemble without RoutingPolicy). Both play "
        f"{len(CONVERSATIONS)} scripted customer conversations ({messages} messages: greetings, orders, refunds, "
        f"billing, product questions, angry customers) in one process, as Rasa's processor handles a message: "
        f"the NLU graph run, then next-action predictions with the growing tracker until the bot listens (actions "
        f"are logged, not executed; no HTTP, tracker store, lock store or action server; Rasa logging at WARNING). "
        f"A message's time is its NLU parse plus the first prediction, the one that decides on the message: the "
        f"same graph runs in both stacks. After a warm-up pass the stacks alternate message by message, the "
        f"first switching each time. `python -m backline.bench.overhead`.",
        "",
        "| stack | messages | p50 | p95 |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {s.messages} | {_ms(s.p50)} | {_ms(s.p95)} |" for name, s in rows),
        "",
        f"Ratio with/without: p50 {result.p50_ratio:.3f}, p95 {result.p95_ratio:.3f} ({verdict} the target of "
        f"{TARGET_RATIO:.2f}); in process CPU time, p50 {result.cpu_p50_ratio:.3f} (load average at the end: "
        f"{result.load_average:.1f} on {os.cpu_count()} CPUs). The NLU parse alone: p50 "
        f"{_ms(result.parse_p50[0])} with, {_ms(result.parse_p50[1])} without. "
        f"The whole turn (every prediction until the bot listens: "
        f"{result.predictions_per_turn[0]:.2f} predictions a turn with the routing layer, "
        f"{result.predictions_per_turn[1]:.2f} without, as the routes differ): p50 {_ms(result.turn_with.p50)} / "
        f"{_ms(result.turn_without.p50)}, p95 {_ms(result.turn_with.p95)} / {_ms(result.turn_without.p95)} "
        f"(ratio p50 {result.turn_with.p50 / result.turn_without.p50:.3f}, "
        f"p95 {result.turn_with.p95 / result.turn_without.p95:.3f}).",
    ]


def main() -> None:
    """Measures with the default model and rounds and prints the section."""
    print("\n".join(render(measure())))


if __name__ == "__main__":
    main()
