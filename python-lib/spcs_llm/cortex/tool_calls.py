"""Tool calling on Cortex: DSS tools / toolChoice → the API, the model's tool calls → DSS ``toolCalls``.

The chat completions endpoint speaks OpenAI's tool protocol (``tools``, ``tool_choice``, ``tool_calls`` in replies
and ``delta.tool_calls`` fragments in streams). Only some model families can call tools; for the others a query
that *requires* a tool is refused before any request, and optional tools are left out of the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spcs_llm.core.errors import RequestRejectedError

# Which models can call tools on Cortex, by name prefix. As of 2026-12-04 the Cortex REST API documents tool
# calling for Claude and OpenAI models, not Llama, Mistral, DeepSeek or Snowflake's own; a fine-tuned model
# (DATABASE.SCHEMA.NAME) is a fine-tuned Llama or Mistral. The model's 'Tool calling' setting overrides this list.
TOOL_CAPABILITY_AS_OF = "2026-12-04"
TOOL_CALLING_PREFIXES = ("claude-", "openai-")
DSS_ONLY_FUNCTION_KEYS = ("compatible",)


def model_can_call_tools(model: str, setting: str = "auto") -> bool:
    if setting != "auto":
        return setting == "supported"
    return model.lower().startswith(TOOL_CALLING_PREFIXES)


@dataclass(frozen=True)
class ToolRequest:
    """What the request carries about tools: the API's ``tools`` and ``tool_choice``, or nothing."""

    tools: list[dict] = field(default_factory=list)
    tool_choice: str | dict | None = None

    def body_fields(self) -> dict[str, Any]:
        if not self.tools:
            return {}
        return {"tools": self.tools, **({"tool_choice": self.tool_choice} if self.tool_choice else {})}


def _api_tool(tool: Mapping[str, Any], position: int) -> dict:
    function = dict(tool.get("function") or {})
    if not function.get("name"):
        raise RequestRejectedError(f"Tool {position} has no function name.",
                                   fix="Give every tool a function with a name.")
    for key in DSS_ONLY_FUNCTION_KEYS:
        function.pop(key, None)
    function.setdefault("parameters", {"type": "object", "properties": {}})
    return {"type": "function", "function": function}


def _api_tool_choice(choice: Mapping[str, Any] | None, names: Sequence[str]) -> str | dict | None:
    kind = (choice or {}).get("type") or "auto"
    if kind in ("auto", "none", "required"):
        return kind
    if kind == "tool_name":
        name = (choice or {}).get("name")
        if name not in names:
            raise RequestRejectedError(
                f"toolChoice names the tool {name!r}, which is not among the query's tools ({', '.join(names)}).",
                fix="Name one of the tools passed in the query's settings.",
            )
        return {"type": "function", "function": {"name": name}}
    raise RequestRejectedError(f"Unknown toolChoice type {kind!r}.", fix="Use auto, none, required or tool_name.")


def tool_request(settings: Mapping[str, Any], model: str, tool_calling: str = "auto") -> ToolRequest:
    """DSS ``tools`` / ``toolChoice`` → the API's fields; refuses a required tool the model cannot call."""
    dss_tools = settings.get("tools") or []
    if not dss_tools:
        return ToolRequest()
    tools = [_api_tool(tool, i) for i, tool in enumerate(dss_tools)]
    choice = _api_tool_choice(settings.get("toolChoice"), [t["function"]["name"] for t in tools])
    if model_can_call_tools(model, tool_calling):
        return ToolRequest(tools=tools, tool_choice=choice)
    if choice in ("auto", "none"):
        return ToolRequest()  # optional tools: the model answers in text
    raise RequestRejectedError(
        f"This query requires a tool call, but the Cortex model {model!r} cannot call tools (tool calling is "
        f"offered for {' and '.join(p.rstrip('-') for p in TOOL_CALLING_PREFIXES)} models as of "
        f"{TOOL_CAPABILITY_AS_OF}).",
        fix="Use a Claude or OpenAI model for agents and tool-calling recipes, or send the query with toolChoice "
        "auto; if this model does call tools, set 'Tool calling' to supported on the model.",
    )


def _arguments_text(arguments: Any) -> str:
    if arguments is None or arguments == "":
        return "{}"
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def dss_tool_call(call_id: str, name: str, arguments: Any) -> dict:
    """One call in DSS's ``toolCalls`` shape (arguments as a JSON string)."""
    return {"type": "function", "id": call_id, "function": {"name": name, "arguments": _arguments_text(arguments)}}


def reply_tool_calls(message: Mapping[str, Any]) -> list[dict]:
    """A non-streamed reply message's ``tool_calls`` → DSS ``toolCalls``."""
    calls = []
    for position, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        calls.append(dss_tool_call(call.get("id") or f"call_{position}", function.get("name") or "",
                                   function.get("arguments")))
    return calls


@dataclass
class _PendingCall:
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class ToolCallAssembler:
    """Joins streamed ``delta.tool_calls`` fragments into whole calls.

    OpenAI-style streams send each call's id and name once and its arguments in fragments, calls told apart by
    ``index`` (several run in parallel). Names and arguments are both appended, so a name split over chunks joins
    up too (a fragment repeating the whole name so far is not appended again). A fragment without ``index``
    belongs to the call its ``id`` names, else starts a new call if it brings an unseen id, else continues the
    latest call (inferred: some OpenAI-compatible servers leave ``index`` out).
    """

    def __init__(self) -> None:
        self._calls: dict[int, _PendingCall] = {}
        self._latest: int | None = None

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, fragments: Iterable[Mapping[str, Any]]) -> None:
        for fragment in fragments:
            index = self._index_of(fragment)
            call = self._calls.setdefault(index, _PendingCall())
            self._latest = index
            if fragment.get("id") and not call.call_id:
                call.call_id = str(fragment["id"])
            function = fragment.get("function") or {}
            name = str(function.get("name") or "")
            if name and name != call.name:  # a server that repeats the whole name in every fragment adds nothing
                call.name += name
            arguments = function.get("arguments")
            if arguments:
                call.arguments += arguments if isinstance(arguments, str) else json.dumps(arguments)

    def _index_of(self, fragment: Mapping[str, Any]) -> int:
        if fragment.get("index") is not None:
            return int(fragment["index"])
        call_id = fragment.get("id")
        for index, call in self._calls.items():
            if call_id and call.call_id == call_id:
                return index
        if call_id or self._latest is None:
            return max(self._calls, default=-1) + 1
        return self._latest

    def calls(self) -> list[dict]:
        """The assembled calls in DSS's ``toolCalls`` shape, ordered by index."""
        assembled = []
        for index in sorted(self._calls):
            call = self._calls[index]
            if not call.name:
                raise RequestRejectedError(
                    f"The model streamed tool call {index} without a tool name.",
                    fix="Retry the query; if it persists, use the model without streaming.",
                )
            assembled.append(dss_tool_call(call.call_id or f"call_{index}", call.name, call.arguments))
        return assembled
