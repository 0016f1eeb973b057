"""Rule-based signals: SignalDetector on spaCy docs and SignalDetectorComponent in Rasa 3.6."""

from __future__ import annotations

import asyncio
import shutil
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from spacy.language import Language

import backline.rasa.signals as signals_component
from backline.nlp.signals import EDGE_GETTERS, SignalDetector, SignalSpecError
from backline.rasa.signals import SIGNALS, SignalDetectorComponent
from backline.routing.signals import (
    EXPLICIT_REQUEST,
    MESSAGE_EDGES,
    NOT_EXPLICIT_REQUEST,
    Signal,
    SignalSpec,
    check_token_pattern,
)
from tests._spacy_fixture import (  # noqa: F401
    build_component,
    execution_context,
    kestrel_nlp,
    kestrel_pipeline_path,
    make_spacy_nlp,
    model_storage,
    spacy_nlp,
    spacy_pipeline,
    tokenizer,
    train_nlu_model,
)

COMPONENT = "backline.rasa.signals.SignalDetectorComponent"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

PERSON = {"LOWER": {"IN": ["human", "person", "agent", "someone", "somebody", "representative"]}}
SPECS: Tuple[SignalSpec, ...] = (
    SignalSpec(
        EXPLICIT_REQUEST,
        phrases=("real person", "talk to a human", "human agent", "human"),
        patterns=(
            (
                {"LOWER": {"IN": ["talk", "speak", "chat"]}},
                {"LOWER": {"IN": ["to", "with"]}},
                {"LOWER": {"IN": ["a", "an", "some"]}, "OP": "?"},
                {"LOWER": {"IN": ["real", "actual", "live"]}, "OP": "?"},
                PERSON,
            ),
        ),
        not_phrases=("human resources", "human-readable", "human error", "human rights"),
    ),
    SignalSpec("legal", phrases=("lawyer", "attorney", "legal action", "sue", "gdpr")),
    SignalSpec(
        "account_security",
        phrases=("hacked", "phishing"),
        patterns=(
            (
                {"LOWER": {"IN": ["someone", "somebody"]}},
                {"IS_ALPHA": True, "OP": "{0,4}"},
                {"LOWER": {"IN": ["logged", "signed"]}},
                {"LOWER": {"IN": ["in", "into"]}},
            ),
        ),
    ),
)


@pytest.fixture(scope="module")
def detector() -> SignalDetector:
    return SignalDetector(SPECS)


def found(detector: SignalDetector, nlp: Optional[Language], text: str, lower: bool = True) -> List[Tuple[str, str]]:
    """(name, text[start:end]) of each signal, checking that phrase and offsets agree."""
    doc = nlp(text.lower() if lower else text) if nlp is not None else None
    signals = detector.detect(doc, text)
    for signal in signals:
        assert signal.phrase == text[signal.start : signal.end]
    return [(signal.name, signal.phrase) for signal in signals]


# --- SignalDetector ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("I want to talk to a human", "talk to a human"),
        ("Can I speak with a REAL PERSON please", "speak with a REAL PERSON"),
        ("let me chat to an actual agent", "chat to an actual agent"),
        ("human please", "human"),
        ("Get me a Human Agent now!!", "Human Agent"),
        ("talk to someone", "talk to someone"),
    ],
)
def test_explicit_requests(detector: SignalDetector, kestrel_nlp: Language, text: str, phrase: str) -> None:
    assert found(detector, kestrel_nlp, text) == [(EXPLICIT_REQUEST, phrase)]


@pytest.mark.parametrize(
    ("text", "vetoes"),
    [
        ("Does HR handle Human Resources questions?", ["Human Resources"]),
        ("is this a human-readable format", ["human-readable"]),
        ("Was it a human error on your side?", ["human error"]),
        ("human rights and human resources", ["human rights", "human resources"]),
    ],
)
def test_not_phrases_veto_explicit_requests(
    detector: SignalDetector, kestrel_nlp: Language, text: str, vetoes: List[str]
) -> None:
    assert found(detector, kestrel_nlp, text) == [(NOT_EXPLICIT_REQUEST, v) for v in vetoes]


def test_a_veto_only_drops_the_matches_it_overlaps(detector: SignalDetector, kestrel_nlp: Language) -> None:
    text = "Not human resources: I want to talk to a human."
    assert found(detector, kestrel_nlp, text) == [
        (NOT_EXPLICIT_REQUEST, "human resources"),
        (EXPLICIT_REQUEST, "talk to a human"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Where is my order #10023?",
        "humane treatment",
        "humans are slow",
        "😡😡😡",
        "I'd like a refund",
        "personally I like it",
        "\x00\x01",
        "an issue with my invoice",
    ],
)
def test_no_signal(detector: SignalDetector, kestrel_nlp: Language, text: str) -> None:
    assert found(detector, kestrel_nlp, text) == []


def test_overlapping_matches_of_one_signal_merge(detector: SignalDetector, kestrel_nlp: Language) -> None:
    # "talk to a human" (phrase), "human" (phrase), "talk to a human" (pattern) and
    # "human agent" (phrase) overlap: one signal over their union.
    text = "please TALK TO A HUMAN AGENT"
    signals = detector.detect(kestrel_nlp(text.lower()), text)
    assert signals == [Signal(EXPLICIT_REQUEST, "TALK TO A HUMAN AGENT", 7, 28)]


def test_several_signals_sorted_by_position(detector: SignalDetector, kestrel_nlp: Language) -> None:
    text = "Someone logged into my account, I was HACKED. My lawyer wants a real person."
    assert found(detector, kestrel_nlp, text) == [
        ("account_security", "Someone logged into"),
        ("account_security", "HACKED"),
        ("legal", "lawyer"),
        (EXPLICIT_REQUEST, "real person"),
    ]


def test_offsets_point_into_the_original_mixed_case_text(detector: SignalDetector, kestrel_nlp: Language) -> None:
    text = "Hi, My LAWYER says: Talk To A Real Person!"
    signals = detector.detect(kestrel_nlp(text.lower()), text)
    assert [s.as_dict() for s in signals] == [
        {"name": "legal", "phrase": "LAWYER", "start": 7, "end": 13},
        {"name": EXPLICIT_REQUEST, "phrase": "Talk To A Real Person", "start": 20, "end": 41},
    ]


def test_offsets_survive_lowercasing_that_changes_length(detector: SignalDetector, kestrel_nlp: Language) -> None:
    text = "İİİ GDPR request, talk to a HUMAN"  # "İ".lower() is two characters
    assert len(text.lower()) == len(text) + 3
    assert found(detector, kestrel_nlp, text) == [("legal", "GDPR"), (EXPLICIT_REQUEST, "talk to a HUMAN")]


def test_case_sensitive_doc_and_no_doc_give_the_same_signals(detector: SignalDetector, kestrel_nlp: Language) -> None:
    text = "My Attorney will SUE you unless a Human Agent calls"
    expected = [("legal", "Attorney"), ("legal", "SUE"), (EXPLICIT_REQUEST, "Human Agent")]
    assert found(detector, kestrel_nlp, text) == expected
    assert found(detector, kestrel_nlp, text, lower=False) == expected
    assert found(detector, None, text) == expected
    other_doc = kestrel_nlp("a doc of some other text")
    assert [(s.name, s.phrase) for s in detector.detect(other_doc, text)] == expected


def test_long_and_odd_input(detector: SignalDetector, kestrel_nlp: Language) -> None:
    text = "blah " * 2000 + "I want a real person"
    assert len(text) > 10_000
    signals = detector.detect(kestrel_nlp(text.lower()), text)
    assert [(s.name, s.phrase, s.start) for s in signals] == [(EXPLICIT_REQUEST, "real person", 10_009)]
    assert detector.detect(None, None) == []  # type: ignore[arg-type]
    assert detector.detect(kestrel_nlp("😡 🦜"), "😡 🦜") == []


def test_specs_sharing_a_name_count_as_one_signal(kestrel_nlp: Language) -> None:
    detector = SignalDetector(
        [
            SignalSpec("legal", phrases=("lawyer",)),
            SignalSpec("legal", phrases=("my lawyer",), not_phrases=("lawyer joke",)),
        ]
    )
    assert found(detector, kestrel_nlp, "my lawyer called") == [("legal", "my lawyer")]
    assert found(detector, kestrel_nlp, "a lawyer joke") == [("not_legal", "lawyer joke")]
    assert detector.names == ["legal"]


def test_pattern_only_and_phrase_only_specs(kestrel_nlp: Language) -> None:
    detector = SignalDetector(
        [
            SignalSpec("formal_complaint", patterns=(({"LOWER": "file"}, {"LOWER": "a"}, {"LOWER": "complaint"}),)),
            SignalSpec("formal_complaint_bot", phrases=("are you a bot",)),
        ]
    )
    text = "Are you a bot? I will FILE A COMPLAINT"
    assert found(detector, kestrel_nlp, text) == [
        ("formal_complaint_bot", "Are you a bot"),
        ("formal_complaint", "FILE A COMPLAINT"),
    ]


def test_no_specs_detects_nothing(kestrel_nlp: Language) -> None:
    assert SignalDetector([]).detect(kestrel_nlp("talk to a human"), "talk to a human") == []


def test_uses_the_given_pipeline(kestrel_nlp: Language) -> None:
    detector = SignalDetector(SPECS, kestrel_nlp)
    assert detector.nlp is kestrel_nlp
    assert found(detector, kestrel_nlp, "a REAL person") == [(EXPLICIT_REQUEST, "REAL person")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SignalSpec("legal", phrases=("lawyer", "")), r"'legal': phrases\[1\] must be non-empty"),
        (SignalSpec("legal", phrases=("   ",)), r"'legal': phrases\[0\]"),
        (SignalSpec("legal", not_phrases=(None,)), r"'legal': not_phrases\[0\]"),  # type: ignore[arg-type]
        (SignalSpec("legal", patterns=(({"LOWERX": "sue"},),)), r"'legal': patterns\[0\] is not a valid.*LOWERX"),
        (SignalSpec("legal", patterns=((),)), r"'legal': patterns\[0\]"),
        (SignalSpec("legal", patterns=(("sue",),)), r"'legal': patterns\[0\]"),  # type: ignore[arg-type]
        (SignalSpec("", phrases=("x",)), "needs a name"),
    ],
)
def test_invalid_specs_fail_clearly(spec: SignalSpec, message: str) -> None:
    with pytest.raises(SignalSpecError, match=message):
        SignalDetector([SignalSpec("ok", phrases=("fine",)), spec])


# --- whole-message patterns: the starts_message / ends_message token attributes ------------

WHOLE = SignalSpec(
    EXPLICIT_REQUEST,
    patterns=(
        (
            {"LOWER": {"IN": ["a", "real", "live"]}, "_": {"starts_message": True}},
            {"LOWER": {"IN": ["a", "real", "live"]}, "OP": "*"},
            {"LOWER": {"IN": ["agent", "person"]}, "_": {"ends_message": True}},
        ),
        ({"LOWER": {"IN": ["agent", "person"]}, "_": {"starts_message": True, "ends_message": True}},),
    ),
)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("agent", "agent"),
        ("Agent?!", "Agent"),
        ("  PERSON... ", "PERSON"),
        ("agent 🙏", "agent"),
        ("A real person!!", "A real person"),
        ("¿live agent?", "live agent"),
    ],
)
def test_a_whole_message_pattern_matches_the_message_alone(kestrel_nlp: Language, text: str, phrase: str) -> None:
    assert found(SignalDetector([WHOLE]), kestrel_nlp, text) == [(EXPLICIT_REQUEST, phrase)]


@pytest.mark.parametrize(
    "text",
    [
        "my agent number is 4411",
        "live agent hours?",
        "a real person wrote this",
        "agent 007",
        "is the agent",
        "2 agent",
    ],
)
def test_a_whole_message_pattern_ignores_the_words_inside_a_longer_message(kestrel_nlp: Language, text: str) -> None:
    assert found(SignalDetector([WHOLE]), kestrel_nlp, text) == []


def test_the_edge_attributes_are_the_ones_the_matrix_may_use() -> None:
    assert set(EDGE_GETTERS) == set(MESSAGE_EDGES) == {"starts_message", "ends_message"}
    assert check_token_pattern([{"LOWER": "agent", "_": {"starts_message": True, "ends_message": False}}]) == []


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (
            {"_": {"end_of_message": True}},
            ((0, "_", "end_of_message"), "unknown custom attribute (allowed: starts_message, ends_message)"),
        ),
        ({"_": {"ends_message": "yes"}}, ((0, "_", "ends_message"), "expected true or false, not 'yes'")),
        ({"_": True}, ((0, "_"), "expected a mapping such as {ends_message: true}, not True")),
        ({"_": {}}, ((0, "_"), "expected a mapping such as {ends_message: true}, not {}")),
    ],
)
def test_bad_edge_attributes_are_reported(token: Dict[str, Any], problem: Tuple[Any, str]) -> None:
    assert check_token_pattern([{"LOWER": "agent", **token}]) == [problem]


# --- SignalDetectorComponent -------------------------------------------------------


@pytest.fixture
def matrix_specs(monkeypatch: pytest.MonkeyPatch) -> Dict[str, Path]:
    """Reads of the matrix give SPECS; records the path the component asked for."""
    asked: Dict[str, Path] = {}

    def fake_load(path: Path) -> List[SignalSpec]:
        asked["path"] = path
        return list(SPECS)

    monkeypatch.setattr(signals_component, "load_signal_specs", fake_load)
    return asked


make_component = partial(build_component, SignalDetectorComponent, "signals")


def run(spacy_nlp: SpacyNLP, tokenizer: SpacyTokenizer, component: Any, messages: List[Message]) -> List[Message]:
    return component.process(spacy_pipeline(spacy_nlp, tokenizer, messages), spacy_nlp.provide())


def names_and_phrases(message: Message) -> List[Tuple[str, str]]:
    return [(s["name"], s["phrase"]) for s in message.get(SIGNALS)]


def test_registered_with_the_default_recipe() -> None:
    registered = DefaultV1Recipe._from_registry(COMPONENT)
    assert registered.clazz is SignalDetectorComponent
    assert registered.types == {DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR}
    assert not registered.is_trainable
    assert registered.model_from == "SpacyNLP"
    assert SignalDetectorComponent.required_components() == [SpacyNLP]


def test_sets_signals_on_real_messages(
    matrix_specs: Dict[str, Path],
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    texts = [
        "I want to talk to a REAL person",
        "Does HR handle human resources questions?",
        "My Lawyer will be in touch",
        "Where is my order #10023?",
        "",
    ]
    component = make_component(model_storage, execution_context)
    processed = run(spacy_nlp, tokenizer, component, [Message(data={TEXT: t}) for t in texts])
    assert processed[0].get(SPACY_DOCS[TEXT]).text == texts[0].lower()
    assert processed[0].get(SIGNALS) == [
        {"name": EXPLICIT_REQUEST, "phrase": "talk to a REAL person", "start": 10, "end": 31}
    ]
    assert names_and_phrases(processed[1]) == [(NOT_EXPLICIT_REQUEST, "human resources")]
    assert names_and_phrases(processed[2]) == [("legal", "Lawyer")]
    assert processed[3].get(SIGNALS) == []
    assert processed[4].get(SIGNALS) == []
    for message in processed:
        assert SIGNALS in message.output_properties
        # What Rasa's processor copies into the parse data (and so into UserUttered.parse_data):
        # an empty list is kept (only None values are dropped).
        assert message.as_dict(only_output_properties=True)[SIGNALS] == message.get(SIGNALS)
    assert [Signal.from_dict(s) for s in processed[0].get(SIGNALS)] == [
        Signal(EXPLICIT_REQUEST, "talk to a REAL person", 10, 31)
    ]


def test_compiles_with_the_pipelines_own_model(
    matrix_specs: Dict[str, Path],
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    component = make_component(model_storage, execution_context)
    run(spacy_nlp, tokenizer, component, [Message(data={TEXT: "human please"})])
    assert component.detector_for(None).nlp is spacy_nlp.provide().model


def test_case_sensitive_spacy_nlp_gives_the_same_signals(
    matrix_specs: Dict[str, Path],
    kestrel_pipeline_path: Path,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    nlp = make_spacy_nlp(kestrel_pipeline_path, model_storage, execution_context, case_sensitive=True)
    component = make_component(model_storage, execution_context)
    text = "Somebody LOGGED INTO my account, talk to a Human"
    [processed] = run(nlp, tokenizer, component, [Message(data={TEXT: text})])
    assert processed.get(SPACY_DOCS[TEXT]).text == text
    assert names_and_phrases(processed) == [
        ("account_security", "Somebody LOGGED INTO"),
        (EXPLICIT_REQUEST, "talk to a Human"),
    ]


def test_message_without_spacy_doc_is_tokenised_by_the_detector(
    matrix_specs: Dict[str, Path],
    spacy_nlp: SpacyNLP,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    component = make_component(model_storage, execution_context)
    [processed] = component.process([Message(data={TEXT: "A real person, please"})], spacy_nlp.provide())
    assert names_and_phrases(processed) == [(EXPLICIT_REQUEST, "real person")]


def test_relative_matrix_path_resolves_against_the_working_directory(
    matrix_specs: Dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    monkeypatch.chdir(tmp_path)
    component = make_component(model_storage, execution_context, {"matrix": "conf/escalation.yml"})
    assert matrix_specs["path"] == tmp_path / "conf" / "escalation.yml"
    assert component.matrix_path == tmp_path / "conf" / "escalation.yml"
    absolute = tmp_path / "elsewhere.yml"
    make_component(model_storage, execution_context, {"matrix": str(absolute)})
    assert matrix_specs["path"] == absolute


def test_load_round_trip(
    matrix_specs: Dict[str, Path],
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    created = make_component(model_storage, execution_context)
    loaded = make_component(model_storage, execution_context, constructor="load")
    assert isinstance(loaded, SignalDetectorComponent)
    text = "my attorney says: talk to someone real. Not human resources."
    [from_created] = run(spacy_nlp, tokenizer, created, [Message(data={TEXT: text})])
    [from_loaded] = run(spacy_nlp, tokenizer, loaded, [Message(data={TEXT: text})])
    assert from_loaded.get(SIGNALS) == from_created.get(SIGNALS)
    assert names_and_phrases(from_loaded) == [
        ("legal", "attorney"),
        (EXPLICIT_REQUEST, "talk to someone"),
        (NOT_EXPLICIT_REQUEST, "human resources"),
    ]


# --- broken configuration: clear errors, no spaCy stack traces ----------------------


def test_missing_matrix_file_is_a_clear_config_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidConfigException) as error:
        make_component(model_storage, execution_context, {"matrix": "missing/escalation.yml"})
    message = str(error.value)
    assert str(tmp_path / "missing" / "escalation.yml") in message
    assert "no such file" in message
    assert error.value.__cause__ is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("version: 1\ndefaults: [unclosed\n", r"escalation.yml:3: invalid YAML"),
        ("version: 1\n", r": .*(required|defaults)"),
        ("- just\n- a list\n", r"escalation.yml"),
    ],
)
def test_invalid_matrix_is_a_clear_config_error(
    content: str,
    problem: str,
    tmp_path: Path,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    path = tmp_path / "escalation.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidConfigException, match=problem) as error:
        make_component(model_storage, execution_context, {"matrix": str(path)})
    assert f"escalation matrix {path} is invalid" in str(error.value)


def test_spec_spacy_cannot_compile_is_a_clear_config_error(
    monkeypatch: pytest.MonkeyPatch,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    bad = [SignalSpec("legal", patterns=(({"LOWER": {"NOT_AN_OPERATOR": ["sue"]}},),))]
    monkeypatch.setattr(signals_component, "load_signal_specs", lambda path: bad)
    with pytest.raises(InvalidConfigException, match=r"escalation.yml: signal 'legal': patterns\[0\]"):
        make_component(model_storage, execution_context)


@pytest.mark.parametrize("matrix", [None, "", "  ", 3])
def test_matrix_option_must_be_a_path(
    matrix: Any, model_storage: LocalModelStorage, execution_context: ExecutionContext
) -> None:
    with pytest.raises(InvalidConfigException, match="`matrix` must be the path"):
        make_component(model_storage, execution_context, {"matrix": matrix})


# --- the real escalation matrix -----------------------------------------------------


@pytest.fixture(scope="module")
def real_detector(kestrel_nlp: Language) -> SignalDetector:
    from backline.routing import load_matrix

    specs = load_matrix(PROJECT_ROOT / "escalation.yml").signal_specs()
    assert specs[0].name == EXPLICIT_REQUEST
    return SignalDetector(specs, kestrel_nlp)


@pytest.mark.parametrize(
    ("text", "expected", "absent"),
    [
        ("i want to talk to a real person", [EXPLICIT_REQUEST], []),
        ("Can I speak to your MANAGER please", [EXPLICIT_REQUEST], []),
        ("does HR handle human resources questions", [NOT_EXPLICIT_REQUEST], [EXPLICIT_REQUEST]),
        ("is this a human-readable format?", [NOT_EXPLICIT_REQUEST], [EXPLICIT_REQUEST]),
        ("my lawyer will be in touch", ["legal"], [EXPLICIT_REQUEST]),
        ("are you a bot or a human?", ["formal_complaint"], [EXPLICIT_REQUEST]),
        ("I want to file a complaint", ["formal_complaint"], []),
        ("someone logged into my account", ["account_security"], []),
        ("Where is my order #10023?", [], [EXPLICIT_REQUEST, "legal", "formal_complaint", "account_security"]),
        ("I would like a refund of 50 EUR", [], [EXPLICIT_REQUEST, "legal"]),
        # short or punctuated requests for a person (issue 14)
        *[
            (text, [EXPLICIT_REQUEST], [])
            for text in (
                "Live customer service?",
                "human?",
                "agent pls",
                "real person!!",
                "support person?",
                "customer service rep?",
                "can i get a human",
                "operator.",
                "a human please",
                "representative",
                "Human",
                "a rep",
                "OPERATOR!!!",
                "live customer support agent",
                "human support please",
                "can I have an agent",
                "someone real?",
                "get me somebody real",
            )
        ],
        # ... and what must not be taken for one
        *[
            (text, [], [EXPLICIT_REQUEST])
            for text in (
                "customer service hours?",
                "is customer service open on sunday",
                "live support hours?",
                "customer service?",
                "my agent number is 4411, where is my parcel",
                "the support agent was rude",
                "money transfer limits",
                "is someone real reading this",
            )
        ],
        ("live agent hours?", [NOT_EXPLICIT_REQUEST], [EXPLICIT_REQUEST]),
        ("human resources", [NOT_EXPLICIT_REQUEST], [EXPLICIT_REQUEST]),
    ],
)
def test_real_matrix_signals(
    real_detector: SignalDetector,
    kestrel_nlp: Language,
    text: str,
    expected: List[str],
    absent: List[str],
) -> None:
    names = [name for name, _ in found(real_detector, kestrel_nlp, text)]
    for name in expected:
        assert name in names, (text, names)
    for name in absent:
        assert name not in names, (text, names)
    if not expected:
        assert names == []


def test_component_reads_the_real_matrix(
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)  # the default `matrix: escalation.yml`, as `rasa run` sees it
    component = make_component(model_storage, execution_context)
    assert component.matrix_path == PROJECT_ROOT / "escalation.yml"
    assert [spec.name for spec in component.specs][:1] == [EXPLICIT_REQUEST]
    [processed] = run(spacy_nlp, tokenizer, component, [Message(data={TEXT: "Someone LOGGED INTO my account"})])
    assert processed.get(SIGNALS) == [
        {"name": "account_security", "phrase": "Someone LOGGED INTO", "start": 0, "end": 19}
    ]


# --- a real trained model: parse data, UserUttered, tracker store --------------------


def test_trained_rasa_model_carries_sentiment_and_signals_into_the_tracker(
    kestrel_pipeline_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Train an NLU model with both components, parse, log the message, reload the tracker."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.engine.caching import CACHE_LOCATION_ENV
    from rasa.shared.core.events import UserUttered

    monkeypatch.setenv(CACHE_LOCATION_ENV, str(tmp_path / "rasa-cache"))
    project = tmp_path / "project"  # where `rasa run` would run: `matrix: escalation.yml` is relative
    project.mkdir()
    shutil.copy(PROJECT_ROOT / "escalation.yml", project / "escalation.yml")
    shutil.copy(PROJECT_ROOT / "signals.yml", project / "signals.yml")
    monkeypatch.chdir(project)
    components = [
        {"name": "backline.rasa.sentiment.SentimentAnalyzer"},
        {"name": COMPONENT, "matrix": "escalation.yml"},
    ]
    nlu = """\
        version: "3.1"
        nlu:
        - intent: request_human
          examples: |
            - real person
            - human agent
        - intent: order_status
          examples: |
            - where is my order
        """
    model = train_nlu_model(tmp_path, kestrel_pipeline_path, components, nlu)
    db = tmp_path / "tracker.db"
    agent = Agent.load(model, tracker_store=SQLTrackerStore(dialect="sqlite", db=str(db)))

    text = "This is ridiculous, I want to talk to a REAL PERSON now!"
    parsed = asyncio.run(agent.parse_message(text))
    assert parsed["intent"]["name"] == "request_human"
    assert parsed["sentiment"]["label"] == "negative"
    assert parsed["sentiment"]["compound"] < -0.3
    phrase = "talk to a REAL PERSON now"  # the matrix's "... person now" pattern overlaps: merged
    start = text.index(phrase)
    assert parsed["signals"] == [
        {"name": EXPLICIT_REQUEST, "phrase": phrase, "start": start, "end": start + len(phrase)}
    ]
    neutral = asyncio.run(agent.parse_message("where is my order"))
    assert neutral["signals"] == []
    assert neutral["sentiment"]["label"] == "neutral"

    # The processor path every channel uses: parse -> UserUttered(parse_data) -> tracker store.
    asyncio.run(agent.processor.log_message(UserMessage(text, sender_id="customer-1")))
    reloaded = asyncio.run(SQLTrackerStore(dialect="sqlite", db=str(db)).retrieve("customer-1"))
    assert reloaded is not None
    latest = reloaded.latest_message
    assert isinstance(latest, UserUttered)
    assert latest.parse_data["sentiment"] == parsed["sentiment"]
    assert latest.parse_data["signals"] == parsed["signals"]
    state = reloaded.current_state()  # what GET /conversations/{id}/tracker and rasa-sdk see
    assert state["latest_message"]["sentiment"] == parsed["sentiment"]
    assert state["latest_message"]["signals"] == parsed["signals"]

    # The matrix is read when the model is loaded, from the working directory: without it,
    # loading fails with the path and the problem (Rasa passes InvalidConfigException through).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(InvalidConfigException, match="no such file") as error:
        Agent.load(model)
    assert str(elsewhere / "escalation.yml") in str(error.value)
