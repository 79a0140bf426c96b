"""The malformed scenario files in ``tests/data/bad_scenarios/``, read with their expectations.

Every file is ``tests/data/tiny.toml`` with one edit (marked ``# <-`` where a comment fits)
and starts with comment lines that say what the error must be:

    # bad: what is wrong (free text)
    # field: the field path the error names (empty for errors about the whole file)
    # expect: a phrase the message must contain (one line per phrase)
    # stage: run   (only for errors raised when the model is built; default: load)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support import DATA

BAD_DIR = DATA / "bad_scenarios"


@dataclass(frozen=True)
class BadCase:
    path: Path
    description: str
    field: str
    expect: tuple[str, ...]
    stage: str  # "load": load_scenario raises; "run": building the model raises

    @property
    def name(self) -> str:
        return self.path.stem


def read_bad_case(path: Path) -> BadCase:
    head: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(":")
        head.setdefault(key.strip(), []).append(value.strip())
    return BadCase(path=path, description=head["bad"][0], field=head["field"][0],
                   expect=tuple(head["expect"]), stage=head.get("stage", ["load"])[0])


BAD_CASES = [read_bad_case(p) for p in sorted(BAD_DIR.glob("*.toml"))]
BAD_IDS = [c.name for c in BAD_CASES]
