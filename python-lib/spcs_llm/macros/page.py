"""The HTML a macro returns, and its parameters as DSS hands them over.

DSS shows a macro's HTML result inline and asks that its CSS be scoped so it cannot leak into the page (Dataiku docs,
``plugins/reference/macros``: "Result of a macro", HTML). Every value written here goes through ``html.escape``;
the only markup is this module's own. An error is one readable block — what happened and the fix — never a traceback.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spcs_llm.core.errors import ConfigurationError, DeploymentError, SpcsLlmError
from spcs_llm.core.redaction import get_logger, redact
from spcs_llm.deploy.dependencies import DeploymentStackMissingError
from spcs_llm.deploy.names import DeploymentNames

log = get_logger(__name__)

Progress = Callable[[int], Any]
CSS_CLASS = "spcs-llm-macro"
_STYLE = (
    f"<style>.{CSS_CLASS} table{{border-collapse:collapse;margin:6px 0}}"
    f".{CSS_CLASS} td,.{CSS_CLASS} th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}"
    f".{CSS_CLASS} pre{{background:#f6f6f6;padding:8px;white-space:pre-wrap}}"
    f".{CSS_CLASS} .ok{{color:#1a7f37}}.{CSS_CLASS} .fail{{color:#c62828}}"
    f".{CSS_CLASS} .error{{border:2px solid #c62828;padding:8px;margin:6px 0}}"
    f".{CSS_CLASS} .notice{{border:2px solid #b26a00;padding:8px;margin:6px 0}}</style>"
)
# The plugin's code env definition lists the deployment stack; a missing package means the env in use was built from
# an older definition (or is a non-managed env): DSS lets an admin update or re-create it from the plugin's page
# (Dataiku docs, "Plugins' code environments", https://doc.dataiku.com/dss/latest/code-envs/plugins.html).
MACRO_STACK_FIX = (
    "This macro needs snowflake-snowpark-python and snowflake-ml-python, which the plugin's code env definition "
    "lists but the env in use lacks. In Administration > Plugins > spcs-llm, update the plugin's code env (or create "
    "a new one from the plugin's definition); or run the same step with the spcs-llm CLI or the deployment notebook."
)

MACRO_SESSION_FIX = (
    "Pick a DSS Snowflake connection you are allowed to use, whose credentials work (Administration > Connections > "
    "Test). The macro builds its session with DSS's Snowpark helper, so the plugin's code env also needs "
    "snowflake-snowpark-python: " + MACRO_STACK_FIX[0].lower() + MACRO_STACK_FIX[1:]
)


def esc(value: Any) -> str:
    """A value as HTML text, with any registered secret masked first."""
    return html.escape(redact(str(value)), quote=True)


@dataclass
class Page:
    """A macro's HTML result, built part by part; ``render`` wraps it in the scoped style."""

    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> Page:
        self.parts.append(f"<h4>{esc(text)}</h4>")
        return self

    def paragraph(self, text: str, css: str = "") -> Page:
        self.parts.append(f"<p{f' class={css!r}' if css else ''}>{esc(text)}</p>")
        return self

    def notice(self, text: str) -> Page:
        self.parts.append(f'<div class="notice">{esc(text)}</div>')
        return self

    def pre(self, text: str) -> Page:
        self.parts.append(f"<pre>{esc(text)}</pre>")
        return self

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Page:
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def markup(self, fragment: str) -> Page:
        """A fragment this package built itself (the SVG chart), every value in it already escaped."""
        self.parts.append(fragment)
        return self

    def error(self, failure: BaseException) -> Page:
        self.parts.append(error_block(failure))
        return self

    def render(self) -> str:
        return f'<div class="{CSS_CLASS}">{_STYLE}<h3>{esc(self.title)}</h3>{"".join(self.parts)}</div>'


def error_block(failure: BaseException) -> str:
    """One block: what went wrong and the fix. A typed error carries both; anything else shows its type only."""
    if isinstance(failure, DeploymentStackMissingError):
        message, fix = failure.message, MACRO_STACK_FIX
    elif isinstance(failure, SpcsLlmError):
        message, fix = failure.message, failure.fix
    else:  # not ours: its text may hold anything (hosts, SQL, credentials); the log has the type at DEBUG
        log.debug("Macro failed: %s", type(failure).__name__)
        message = f"The macro stopped on an unexpected {type(failure).__name__}."
        fix = "Run it again; if it fails again, look at the macro's log in DSS and report the error."
    fix_html = f"<p><b>Fix:</b> {esc(fix)}</p>" if fix else ""
    logs = getattr(failure, "logs", "") if isinstance(failure, SpcsLlmError) else ""  # ServiceFailedError's tail
    logs_html = f"<p>Service logs (last lines):</p><pre>{esc(logs)}</pre>" if logs else ""
    return f'<div class="error"><p><b>Error:</b> {esc(message)}</p>{logs_html}{fix_html}</div>'


# The library's fixes name the CLI's options; a macro's reader sees the form's fields (the labels in each macro's
# runnable.json). An option no macro has is named as the CLI's.
FORM_SETTINGS = {
    "--gpu-pool": "'GPU compute pool'", "--cpu-pool": "'CPU compute pool'", "--instance-family": "'Instance family'",
    "--min-instances": "'Min instances'", "--max-instances": "'Max instances'", "--engine": "'Inference engine'",
    "--database": "'Registry database'", "--schema": "'Registry schema'", "--user-role": "'Role of the callers'",
    "--deployer-role": "'Deployer role'", "--warehouse": "'Warehouse'", "--keep-models": "'Keep the registered models'",
    "--dollars-per-credit": "'Dollars per credit'", "--history-days": "'Billed history (days)'",
    "--yes": "'I accept the cost shown'", "--endpoint": "'Endpoint'", "--kind": "'Kind'", "--route": "'Method route'",
    "--model-family": "'Model family'", "--timeout": "'Connect timeout (s)'",
    "--cold-start-wait": "'Cold-start wait (s)'",
}
NOT_IN_FORM = "options of the spcs-llm command line, which this macro does not set"


def run_page(title: str, body: Callable[[Page], None]) -> str:
    """Run ``body`` on a fresh page; any failure ends the page with its error block instead of a traceback, its fix
    naming the form's fields rather than the command line's options."""
    page = Page(title)
    try:
        body(page)
    except SpcsLlmError as failure:
        page.error(failure.in_terms_of(FORM_SETTINGS, NOT_IN_FORM))
    except Exception as failure:  # noqa: BLE001 - every failure becomes one readable block, typed or not
        page.error(failure)
    return page.render()


@dataclass(frozen=True)
class Params:
    """A macro's parameters (``runnable.json``), read by name; a name the macro did not declare is a bug, not None.

    DSS hands over the JSON of the form: an INT arrives as a number that may be a float, an empty field as None
    or missing (Dataiku docs, plugin parameters: values are the result of JSON deserialization).
    """

    config: Mapping[str, Any]
    declared: frozenset[str]

    def _raw(self, name: str) -> Any:
        if name not in self.declared:
            raise KeyError(f"{name} is not a declared parameter of this macro")
        return self.config.get(name)

    def value(self, name: str) -> Any:
        """The value as DSS sent it (a PRESET parameter arrives as a dict)."""
        return self._raw(name)

    def text(self, name: str, default: str = "") -> str:
        value = self._raw(name)
        return default if value is None or str(value).strip() == "" else str(value).strip()

    def flag(self, name: str) -> bool:
        return self._raw(name) is True

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        value = self._raw(name)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"The parameter {name} is not a number: {value!r}.",
                                     fix=f"Enter a number in {name}.") from None
        if minimum is not None and number < minimum:
            raise ConfigurationError(f"The parameter {name} must be at least {minimum:g}, not {number:g}.",
                                     fix=f"Enter {minimum:g} or more in {name}.")
        return number

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        return int(self.number(name, default, minimum=minimum))

    def names(self, *settings: str) -> DeploymentNames:
        """The Snowflake object names among ``settings`` that the form has; the rest keep the presets' defaults."""
        return DeploymentNames.build(**{name: self.text(name) or None for name in settings})

    def session(self) -> Any:
        """A Snowpark session from the DSS Snowflake connection chosen in the ``connection`` parameter."""
        from spcs_llm.deploy.session import open_session

        connection = self.text("connection")
        if not connection:
            raise ConfigurationError("No Snowflake connection chosen.",
                                     fix="Pick a DSS Snowflake connection in 'Snowflake connection'.")
        try:
            return open_session(dss_connection=connection)
        except DeploymentStackMissingError:
            raise
        except DeploymentError as failure:  # its fix names CLI flags; say what to do in DSS instead
            raise DeploymentError(failure.message, fix=MACRO_SESSION_FIX) from None
