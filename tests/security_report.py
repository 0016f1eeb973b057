"""`SecurityReport`: what one attack-test module observed, written into its sections of docs/security.md.

Each module records a row per attack (the threat, how the test tried it, what happened) and writes
its sections in its last test, which fails unless every attack of the module ran: a partial run
never overwrites the report with fewer rows.
"""

from typing import Callable, Dict, List, Mapping, Optional, Tuple

from backline.reports import SECURITY, write_section


class SecurityReport:
    """The rows one test module observed, by section of docs/security.md; `write` replaces those sections."""

    def __init__(self, command: str, titles: Dict[str, str]) -> None:
        self.command, self.titles = command, titles
        self.rows: Dict[str, List[Tuple[str, str, str]]] = {name: [] for name in titles}

    def record(self, section: str, threat: str, test: str, result: str) -> None:
        self.rows[section].append((threat, test, result))

    def recorder(self, section: str) -> Callable[[str, str, str], None]:
        """`record` for one section: a module with one section records (threat, test, result)."""

        def record(threat: str, test: str, result: str) -> None:
            self.record(section, threat, test, result)

        return record

    def write(self, expected: Optional[Mapping[str, int]] = None) -> None:
        """Writes every section; each needs rows (the whole module ran), as many as `expected` says."""
        for name, rows in self.rows.items():
            assert rows, f"no results for {name}: run the whole module"
            if expected is not None and name in expected:
                assert len(rows) == expected[name], f"{len(rows)} results for {name}, {expected[name]} expected"
            body = "| threat | test | result |\n|---|---|---|\n" + "\n".join(
                f"| {threat} | {test} | {result} |" for threat, test, result in rows
            )
            write_section(name, self.titles[name], self.command, body, path=SECURITY)
        assert all(f"<!-- begin:{name} -->" in SECURITY.read_text() for name in self.rows)
