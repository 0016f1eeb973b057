"""The spaCy pipeline built from code: what it saves, and what it finds in customer sentences."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
from spacy.language import Language

from backline.nlp import build
from backline.nlp.entities import extract
from backline.nlp.patterns import load_products
from tests._spacy_fixture import PRODUCTS, kestrel_nlp, kestrel_pipeline_path  # noqa: F401

Found = List[Tuple[str, str, object]]


def entities_of(nlp: Language, text: str, lowercase: bool = True) -> Found:
    """(entity, covered original text, value) triples, with Rasa's default lower-casing."""
    doc = nlp(text.lower() if lowercase else text)
    return [(e["entity"], text[e["start"] : e["end"]], e["value"]) for e in extract(doc, text)]


def test_build_saves_a_loadable_named_pipeline(kestrel_pipeline_path: Path) -> None:
    assert (kestrel_pipeline_path / "meta.json").is_file()
    nlp = spacy.load(kestrel_pipeline_path, disable=["parser"])
    assert nlp.meta["name"] == build.PIPELINE_NAME
    assert nlp.pipe_names == ["entity_ruler"]
    assert nlp.path == kestrel_pipeline_path
    assert set(nlp.get_pipe("entity_ruler").labels) == {"PRODUCT", "ORDER_ID", "INVOICE_ID", "EMAIL", "MONEY"}
    assert spacy.util.is_compatible_version(spacy.about.__version__, nlp.meta["spacy_version"])


def test_every_product_name_and_alias_is_a_pattern(kestrel_nlp: Language) -> None:
    for product in load_products(PRODUCTS):
        for phrase in [product["name"], *product["aliases"]]:
            sentence = f"Question about {phrase.upper()} please"
            products = [v for e, _, v in entities_of(kestrel_nlp, sentence) if e == "product"]
            assert products == [product["name"]], phrase


@pytest.mark.parametrize(
    "text, expected",
    [
        ("where is my order 10023?", [("order_id", "10023", "10023")]),
        ("Where is my order #10023?", [("order_id", "10023", "10023")]),
        ("order no. 54321 and order no.10024", [("order_id", "54321", "54321"), ("order_id", "10024", "10024")]),
        ("it's 10023", [("order_id", "10023", "10023")]),
        (
            "I want a refund of €780 for the Hub X1",
            [("amount", "€780", 780.0), ("currency", "€780", "EUR"), ("product", "the Hub X1", "Kestrel Hub X1")],
        ),
        (
            "EUR 1,200.50 was charged twice on INV-2025-0107",
            [
                ("amount", "EUR 1,200.50", 1200.5),
                ("currency", "EUR 1,200.50", "EUR"),
                ("invoice_id", "INV-2025-0107", "INV-2025-0107"),
            ],
        ),
        ("email me at Ann@Example.com.", [("email", "Ann@Example.com", "Ann@Example.com")]),
        ("inv 2025 0107 please", [("invoice_id", "inv 2025 0107", "INV-2025-0107")]),
        ("copy of inv-2025-0107?", [("invoice_id", "inv-2025-0107", "INV-2025-0107")]),
        (
            "you charged me 1.200,50 € for kestrel cloud pro",
            [
                ("amount", "1.200,50 €", 1200.5),
                ("currency", "1.200,50 €", "EUR"),
                ("product", "kestrel cloud pro", "Kestrel Cloud Pro"),
            ],
        ),
        (
            "1 200,50 EUR for the hub x2",
            [
                ("amount", "1 200,50 EUR", 1200.5),
                ("currency", "1 200,50 EUR", "EUR"),
                ("product", "the hub x2", "Kestrel Hub X2"),
            ],
        ),
        (
            "I paid 780eur, then US$ 99.99 and 45 quid",
            [
                ("amount", "780eur", 780.0),
                ("currency", "780eur", "EUR"),
                ("amount", "US$ 99.99", 99.99),
                ("currency", "US$ 99.99", "USD"),
                ("amount", "45 quid", 45.0),
                ("currency", "45 quid", "GBP"),
            ],
        ),
        (
            "about €1.5k or 2k euros",
            [
                ("amount", "€1.5k", 1500.0),
                ("currency", "€1.5k", "EUR"),
                ("amount", "2k euros", 2000.0),
                ("currency", "2k euros", "EUR"),
            ],
        ),
        ("10023 euros is not an order", [("amount", "10023 euros", 10023.0), ("currency", "10023 euros", "EUR")]),
        ("the year 2025 and 1.2.3.4 € are nothing", []),
    ],
)
def test_customer_sentences(kestrel_nlp: Language, text: str, expected: Found) -> None:
    assert entities_of(kestrel_nlp, text) == expected
    assert entities_of(kestrel_nlp, text, lowercase=False) == expected


def test_spacy_finds_money_itself(kestrel_nlp: Language) -> None:
    text = "refund 1.200,50 € or eur 1,200.50 or 780eur or 2k euros or chf 80 or 1 200,50 eur"
    money = [ent.text for ent in kestrel_nlp(text).ents if ent.label_ == "MONEY"]
    assert money == ["1.200,50 €", "eur 1,200.50", "780eur", "2k euros", "chf 80", "1 200,50 eur"]


def test_money_patterns_miss_falls_back_to_money_py(kestrel_nlp: Language) -> None:
    text = "the plan is 5€/month"
    assert not kestrel_nlp(text).ents
    assert entities_of(kestrel_nlp, text) == [("amount", "5€", 5.0), ("currency", "5€", "EUR")]


def test_offsets_survive_lowercasing_that_changes_length(kestrel_nlp: Language) -> None:
    text = "İİ order 10023 for €780: the Hub X1, Ann@Example.com"
    assert len(text.lower()) != len(text)
    assert entities_of(kestrel_nlp, text) == [
        ("order_id", "10023", "10023"),
        ("amount", "€780", 780.0),
        ("currency", "€780", "EUR"),
        ("product", "the Hub X1", "Kestrel Hub X1"),
        ("email", "Ann@Example.com", "Ann@Example.com"),
    ]


def test_doc_of_another_text_is_rejected(kestrel_nlp: Language) -> None:
    with pytest.raises(ValueError):
        extract(kestrel_nlp("order 10023"), "order 10024")


def test_extract_without_doc_finds_money_only() -> None:
    assert [e["entity"] for e in extract(None, "order 10023 for €780")] == ["amount", "currency"]
    assert extract(None, "") == []


def test_cli_builds_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "out" / "kestrel_en"
    assert build.main(["--products", str(PRODUCTS), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert str(output) in printed and "10 products" in printed
    assert spacy.load(output).meta["name"] == "kestrel_en"


def test_cli_fails_cleanly_on_a_bad_catalogue(tmp_path: Path) -> None:
    bad = tmp_path / "products.yml"
    bad.write_text("products: [{sku: X}]\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        build.main(["--products", str(bad), "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 1
