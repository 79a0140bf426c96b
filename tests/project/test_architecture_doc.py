"""docs/architecture.md names real places: every path it mentions exists."""

import re

from tests.support import ROOT


def test_every_path_in_the_architecture_map_exists():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"(?:sim|tests|docs)/[\w/]*(?:\.py|\.md|/)", text))
    assert len(paths) > 30
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


def test_every_engine_and_protocol_module_is_on_the_map():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for folder in ("engine", "protocols"):
        for path in (ROOT / "sim" / folder).glob("*.py"):
            if path.name in ("__init__.py", "_jit.py", "errors.py", "inputs.py"):
                continue
            assert f"sim/{folder}/{path.name}" in text, path.name
