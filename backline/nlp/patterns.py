"""spaCy entity_ruler patterns: PRODUCT, ORDER_ID, INVOICE_ID, EMAIL and MONEY.

Every pattern matches on LOWER (or on digits/punctuation, which have no case), so it
works the same on Rasa's lower-cased text (SpacyNLP `case_sensitive: False`) and on
the original text. The shapes follow spaCy 3.4's English tokenizer:

- "€780" → "€" "780"; "780€" and "1.200,50 €" split off the symbol, but "780eur",
  "us$99.99", "1.5k€" and "eur1200" stay one token (single-token regex patterns).
- "1 200,50 eur" → "1" "200,50" "eur"; a no-break or thin space becomes its own
  whitespace token ("1" "\\xa0" "200,50").
- "inv-2025-0107" → "inv-2025" "-" "0107"; "inv 2025-0107" → "inv" "2025" "-" "0107";
  "inv-20250107" and "inv/2025/0107" stay one token.
- "#10023" → "#" "10023"; "order no. 10023" → "order" "no" "." "10023", but
  "order no.10023" → "order" "no.10023" and "order#10023" is one token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence

import yaml

from backline.nlp.money import PREFIX_CURRENCIES, SUFFIX_CURRENCIES

Pattern = Dict[str, Any]
TokenPattern = List[Dict[str, Any]]

PRODUCT = "PRODUCT"
ORDER_ID = "ORDER_ID"
INVOICE_ID = "INVOICE_ID"
EMAIL = "EMAIL"
MONEY = "MONEY"
LABELS = (PRODUCT, ORDER_ID, INVOICE_ID, EMAIL, MONEY)

_NUM = r"[0-9]+(?:[.,][0-9]+)*k?"
_ORDER_DIGITS = r"[1-9][0-9]{4}"
_SEP = "[-–/_]"


def load_products(products_path: Path) -> List[Dict[str, Any]]:
    """The product entries of a tenant catalogue (products.yml)."""
    try:
        data = yaml.safe_load(Path(products_path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{products_path}: not valid YAML ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{products_path}: expected a mapping with a 'products' list")
    products = data.get("products") or []
    if not isinstance(products, list) or not all(isinstance(p, dict) and p.get("name") for p in products):
        raise ValueError(f"{products_path}: 'products' must be a list of entries with a name")
    return products


def _alternatives(markers: Iterable[str]) -> str:
    return "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))


def _regex(attr: str, pattern: str, **extra: Any) -> Dict[str, Any]:
    return {attr: {"REGEX": f"^(?:{pattern})$"}, **extra}


def _optional_space() -> Dict[str, Any]:
    return {"IS_SPACE": True, "OP": "?"}


def product_patterns(products: Sequence[Dict[str, Any]], tokenize: Callable[[str], Sequence[str]]) -> List[Pattern]:
    """Name and aliases of each product, also with a leading "the"; id = canonical name."""
    patterns: List[Pattern] = []
    seen = set()
    for product in products:
        name = str(product["name"])
        for phrase in [name, *(str(a) for a in product.get("aliases") or [])]:
            words = [w.lower() for w in tokenize(phrase) if w.strip()]
            variants = [words] if words[:1] == ["the"] else [words, ["the", *words]]
            for tokens in variants:
                key = tuple(tokens)
                if not tokens or key in seen:
                    continue
                seen.add(key)
                patterns.append({"label": PRODUCT, "id": name, "pattern": [{"LOWER": t} for t in tokens]})
    return patterns


def order_id_patterns() -> List[Pattern]:
    """Five-digit order numbers 10000–99999, bare or after "#", "order", "order number/no"."""
    digits = _regex("TEXT", _ORDER_DIGITS)
    glued_order = rf"(?:order|no|nr)?[.#:]?{_ORDER_DIGITS}"
    glued_number = rf"(?:no|nr|number)[.#:]?{_ORDER_DIGITS}"
    return [
        {"label": ORDER_ID, "pattern": [digits]},
        {"label": ORDER_ID, "pattern": [{"ORTH": "#"}, digits]},
        {
            "label": ORDER_ID,
            "pattern": [
                {"LOWER": "order"},
                {"LOWER": {"IN": ["number", "no", "nr", "num", "id"]}, "OP": "?"},
                {"ORTH": {"IN": [".", ":", "#"]}, "OP": "*"},
                digits,
            ],
        },
        {"label": ORDER_ID, "pattern": [_regex("LOWER", glued_order)]},
        {"label": ORDER_ID, "pattern": [{"LOWER": "order"}, _regex("LOWER", glued_number)]},
    ]


def invoice_id_patterns() -> List[Pattern]:
    """INV-YYYY-NNNN in any case, with "-", "/", "_", a space or nothing between the parts."""
    inv = {"LOWER": "inv"}
    sep = {"ORTH": {"IN": ["-", "–", "/", "_"]}, "OP": "?"}
    four = _regex("TEXT", "[0-9]{4}")
    eight = _regex("TEXT", f"[0-9]{{4}}{_SEP}?[0-9]{{4}}")
    inv_year = _regex("LOWER", f"inv{_SEP}?[0-9]{{4}}")
    inv_full = _regex("LOWER", f"inv{_SEP}?[0-9]{{4}}{_SEP}?[0-9]{{4}}")
    return [
        {"label": INVOICE_ID, "pattern": [inv, sep, four, sep, four]},
        {"label": INVOICE_ID, "pattern": [inv, sep, eight]},
        {"label": INVOICE_ID, "pattern": [inv_year, sep, four]},
        {"label": INVOICE_ID, "pattern": [inv_full]},
    ]


def email_patterns() -> List[Pattern]:
    """E-mail addresses, as spaCy's `like_email` sees them."""
    return [{"label": EMAIL, "pattern": [{"LIKE_EMAIL": True}]}]


def _marker_tokens(marker: str, tokenize: Callable[[str], Sequence[str]]) -> TokenPattern:
    return [{"LOWER": t.lower()} for t in tokenize(marker) if t.strip()]


def money_patterns(tokenize: Callable[[str], Sequence[str]]) -> List[Pattern]:
    """Currency symbols, codes and words next to a number, from money.py's marker lists."""
    number = _regex("LOWER", _NUM)
    grouped: TokenPattern = [
        _regex("TEXT", "[0-9]{1,3}"),
        {"IS_SPACE": True, "OP": "?"},
        _regex("TEXT", "[0-9]{3}", OP="*"),
        _regex("TEXT", "[0-9]{3}(?:[.,][0-9]{1,2})?"),
    ]
    numbers = [[number], grouped]
    patterns: List[Pattern] = []
    prefix = {"LOWER": {"IN": sorted(m for m in PREFIX_CURRENCIES if len(tokenize(m)) == 1)}}
    for num in numbers:
        patterns.append({"label": MONEY, "pattern": [prefix, _optional_space(), *num]})
    suffixes = {tuple(t["LOWER"] for t in _marker_tokens(m, tokenize)) for m in SUFFIX_CURRENCIES}
    single_suffix = {"LOWER": {"IN": sorted(s[0] for s in suffixes if len(s) == 1)}}
    multi_suffix = sorted(s for s in suffixes if len(s) > 1)
    for num in numbers:
        patterns.append({"label": MONEY, "pattern": [*num, _optional_space(), single_suffix]})
        for words in multi_suffix:
            marker = [{"LOWER": w} for w in words]
            patterns.append({"label": MONEY, "pattern": [*num, _optional_space(), *marker]})
    glued_prefix = _alternatives(PREFIX_CURRENCIES)
    glued_suffix = _alternatives(m for m in SUFFIX_CURRENCIES if " " not in m)
    patterns.append({"label": MONEY, "pattern": [_regex("LOWER", f"(?:{glued_prefix}){_NUM}")]})
    patterns.append({"label": MONEY, "pattern": [_regex("LOWER", f"{_NUM}(?:{glued_suffix})")]})
    return patterns


def all_patterns(products: Sequence[Dict[str, Any]], tokenize: Callable[[str], Sequence[str]]) -> List[Pattern]:
    """Every entity_ruler pattern of the Backline pipeline."""
    return [
        *product_patterns(products, tokenize),
        *order_id_patterns(),
        *invoice_id_patterns(),
        *email_patterns(),
        *money_patterns(tokenize),
    ]
