"""``spcs-llm local`` speaks to people first: its first stdout line says what runs and where; the JSON ready line
(what ``python -m spcs_standin`` prints alone, for scripts) comes right after it."""

from __future__ import annotations

import json

from spcs_llm.core.errors import TransportError
from spcs_standin import stack
from spcs_standin.commands import print_welcome
from spcs_standin.settings import StandinSettings

READY = {"event": "ready", "account_url": "http://127.0.0.1:1",
         "services": {"chat": "http://127.0.0.1:2", "embed": "http://127.0.0.1:3"}, "pid": 9}


def test_the_first_line_is_words_and_the_ready_line_follows(capsys, monkeypatch):
    def no_pat(*_args: object) -> None:
        raise TransportError("the control API did not answer", fix="Start it again.")

    monkeypatch.setattr(stack.LocalStack, "attach", staticmethod(no_pat))
    print_welcome(StandinSettings(), json.dumps(READY), "admin-secret-not-printed")
    captured = capsys.readouterr()
    first, second, *rest = captured.out.splitlines()
    assert first.startswith("Local Snowflake + SPCS stand-in running on 127.0.0.1 (Ctrl-C to stop)")
    assert "http://127.0.0.1:1" in first and "chat http://127.0.0.1:2" in first and "embed http://127.0.0.1:3" in first
    assert json.loads(second) == READY
    assert rest[-1].startswith("Control API:")
    assert "no PAT could be issued" in captured.err and "export SNOWFLAKE_TOKEN" not in captured.out
    assert "admin-secret-not-printed" not in captured.out + captured.err

