"""Build the project's spaCy pipeline from code: blank English plus an entity_ruler.

`python -m backline build-spacy --products tenant/products.yml --output build/spacy/kestrel_en`
Rasa's SpacyNLP loads the result with `model: build/spacy/kestrel_en` (a path,
relative to the directory Rasa runs in). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import List, Optional, cast

import spacy
from spacy.language import Language
from spacy.pipeline import EntityRuler

from backline.nlp.patterns import all_patterns, load_products

PIPELINE_NAME = "kestrel_en"
PIPELINE_VERSION = "1.0.0"
DEFAULT_PRODUCTS = Path("tenant/products.yml")
DEFAULT_OUTPUT = Path("build/spacy") / PIPELINE_NAME


def make_pipeline(products_path: Path) -> Language:
    """Blank English with an entity_ruler holding the Backline patterns."""
    nlp = spacy.blank("en")
    products = load_products(products_path)

    def tokenize(text: str) -> List[str]:
        return [token.text for token in nlp.make_doc(text)]

    ruler = cast(EntityRuler, nlp.add_pipe("entity_ruler", config={"validate": True, "overwrite_ents": True}))
    ruler.add_patterns(all_patterns(products, tokenize))
    nlp.meta.update(
        name=PIPELINE_NAME,
        version=PIPELINE_VERSION,
        description=(
            "Backline rule-based entities (PRODUCT, ORDER_ID, INVOICE_ID, EMAIL, MONEY) "
            f"for {len(products)} products from {Path(products_path).name}"
        ),
    )
    return nlp


def build_pipeline(products_path: Path, output_dir: Path) -> Path:
    """Build the pipeline and save it with `nlp.to_disk`; returns the output directory."""
    nlp = make_pipeline(products_path)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output_dir)
    return output_dir


def main(argv: Optional[List[str]] = None) -> int:
    """CLI: build the pipeline and print what was built."""
    parser = argparse.ArgumentParser(prog="backline build-spacy", description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=Path, default=DEFAULT_PRODUCTS, help="products.yml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="output directory")
    args = parser.parse_args(argv)
    try:
        output = build_pipeline(args.products, args.output)
    except (OSError, ValueError) as error:
        parser.exit(1, f"build-spacy: {error}\n")
    ruler = cast(EntityRuler, spacy.load(output).get_pipe("entity_ruler"))
    counts = Counter(pattern["label"] for pattern in ruler.patterns)
    products = {pattern.get("id") for pattern in ruler.patterns if pattern["label"] == "PRODUCT"}
    summary = ", ".join(f"{label} {count}" for label, count in sorted(counts.items()))
    print(f"built {PIPELINE_NAME} {PIPELINE_VERSION} (spaCy {spacy.__version__}) at {output}")
    print(f"  {len(products)} products; entity_ruler patterns: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
