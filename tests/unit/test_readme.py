"""The README's promises that code can check: the reason table equals api.REASONS, the settings
table lists every setting, the two set-up commands exist in the Makefile."""

import re
from pathlib import Path

from publishing_operator.api import REASONS
from publishing_operator.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
MAKEFILE = (Path(__file__).resolve().parents[2] / "Makefile").read_text()


def test_reason_table_matches_the_api() -> None:
    rows = re.findall(r"^\| (\w+) \| (True|False|Unknown) \| `(\w+)` \| (.+?) \|$", README, re.MULTILINE)
    table = {reason: (condition, status, meaning) for condition, status, reason, meaning in rows}
    expected = {r.value: (i.condition, i.status.value, i.description) for r, i in REASONS.items()}
    assert table == expected


def test_settings_table_lists_every_setting() -> None:
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in README, name


def test_quick_start_commands_exist() -> None:
    assert "make run" in README and "make test" in README
    assert re.search(r"^run: ", MAKEFILE, re.MULTILINE) and re.search(r"^test: ", MAKEFILE, re.MULTILINE)
