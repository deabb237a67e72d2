"""Macro *SPCS status and cost*: the services, what each compute pool bills now and per day/month if left so, and
what the pools billed over the last days, drawn as a bar chart (inline SVG: DSS shows the HTML as it is, no script).

The numbers are the ``spcs-llm status`` ones (``Deployer.status``/``pools``, ``billing_report``, ``usage.py``).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from spcs_llm.deploy.services.pools import HOURS_PER_DAY, HOURS_PER_MONTH, PoolBilling, billing_report, project
from spcs_llm.deploy.services.usage import DailyUsage, daily_usage, pool_usage, usage_report
from spcs_llm.macros.page import Page, Params, Progress, esc, run_page

NAME_PARAMS = ("database", "schema", "gpu_pool", "cpu_pool")
PARAMS = frozenset({"connection", *NAME_PARAMS, "dollars_per_credit", "history_days"})
STEPS = 4  # session, services, pools, history
MAX_HISTORY_DAYS = 365  # the metering view keeps a year (Snowflake docs, ACCOUNT_USAGE retention)


class StatusMacro:
    progress_target = (STEPS, "NONE")

    def __init__(self, config: dict, today: date | None = None) -> None:
        self.params = Params(config, PARAMS)
        self.today = today or datetime.now(timezone.utc).date()

    def run(self, progress: Progress) -> str:
        return run_page("SPCS status and cost", lambda page: self._report(page, progress))

    def _report(self, page: Page, progress: Progress) -> None:
        from spcs_llm.deploy.services.deployer import Deployer

        params = self.params
        dollars = params.number("dollars_per_credit", 3.0, minimum=0.0)
        days = params.integer("history_days", 0, minimum=0)  # > 0 is the yes to the warehouse query it bills
        if days > MAX_HISTORY_DAYS:
            days = MAX_HISTORY_DAYS
        deployer = Deployer(params.session(), params.names(*NAME_PARAMS))
        progress(1)
        services = deployer.status()
        progress(2)
        page.heading(f"Services in {deployer.names.schema_fqn}")
        if services:
            page.table(("service", "status", "compute pool", "ingress host"),
                       [(s["service"], s["status"], s.get("compute_pool") or "-", s["ingress_host"] or "-")
                        for s in services])
        else:
            page.paragraph("No services.")
        pools = deployer.pools(services)
        progress(3)
        pool_section(page, pools, dollars)
        if days:
            names = [pool.pool for pool in pools]
            page.heading("Billed history")
            page.paragraph(usage_report(pool_usage(deployer.session, names, days), days, dollars))
            daily = daily_usage(deployer.session, names, days, self.today)
            if isinstance(daily, list):
                page.markup(bar_chart(daily, dollars))
        progress(STEPS)


def pool_section(page: Page, pools: list[PoolBilling], dollars: float) -> None:
    """One row per pool (now, per day and per month if left as it is, per wake-up), then the projection in words."""
    page.heading("Compute pools")
    if not pools:
        page.paragraph("No compute pools found.")
        return
    rows = []
    for pool in pools:
        suspend = "?" if pool.auto_suspend_secs is None else "never" if pool.never_suspends else \
            f"{pool.auto_suspend_secs} s"
        rows.append((pool.pool, pool.state, pool.instance_family, pool.billed_nodes,
                     *priced(pool.credits_per_hour, dollars), suspend,
                     "-" if pool.credits_per_resume is None else f"{pool.credits_per_resume:.3f} cr"))
    page.table(("compute pool", "state", "family", "billed nodes", "credits/h now", "$/h now", "per day",
                "per month", "auto-suspend", "per wake-up"), rows)
    # billing_report's own lines after its per-pool table (a blank line, a header, one line per pool): the projection
    page.pre("\n".join(billing_report(pools, dollars).splitlines()[2 + len(pools):]))
    if project(pools, dollars).credits_per_hour:
        page.notice("Something bills right now. Suspend a pool (ALTER COMPUTE POOL <pool> SUSPEND) or run the "
                    "'Tear down SPCS' macro to stop all SPCS billing.")


def priced(rate: float | None, dollars: float) -> tuple[str, str, str, str]:
    """Credits/h now, $/h now, per day and per month if left so; '?' for a family the price table lacks."""
    if rate is None:
        return ("?", "?", "?", "?")
    return (f"{rate:.2f}", f"${rate * dollars:,.2f}",
            f"{rate * HOURS_PER_DAY:.1f} cr (${rate * HOURS_PER_DAY * dollars:,.0f})",
            f"{rate * HOURS_PER_MONTH:,.0f} cr (${rate * HOURS_PER_MONTH * dollars:,.0f})")


BAR_WIDTH, GAP, HEIGHT, TOP, BOTTOM = 22, 6, 140, 18, 34


def bar_chart(days: list[DailyUsage], dollars: float) -> str:
    """An SVG bar chart, one bar per day (credits), the day under each bar and the total above the chart."""
    peak = max((d.credits for d in days), default=0.0) or 1.0
    width = len(days) * (BAR_WIDTH + GAP) + GAP
    total = sum(d.credits for d in days)
    bars = []
    for index, day in enumerate(days):
        height = round(day.credits / peak * (HEIGHT - TOP - BOTTOM), 1)
        x = GAP + index * (BAR_WIDTH + GAP)
        y = HEIGHT - BOTTOM - height
        label = f"{day.day.isoformat()}: {day.credits:.2f} credits (${day.credits * dollars:,.2f})"
        bars.append(
            f'<rect class="bar" x="{x}" y="{y}" width="{BAR_WIDTH}" height="{height}" fill="#29b5e8">'
            f"<title>{esc(label)}</title></rect>"
            f'<text x="{x + BAR_WIDTH / 2}" y="{HEIGHT - BOTTOM + 12}" font-size="9" text-anchor="middle">'
            f"{esc(day.day.strftime('%m-%d'))}</text>")
    caption = f"Credits per day, {total:.2f} in all (${total * dollars:,.2f}); peak {peak:.2f}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{HEIGHT}" '
            f'viewBox="0 0 {width} {HEIGHT}"><title>{esc(caption)}</title>'
            f'<text x="{GAP}" y="12" font-size="10">{esc(caption)}</text>'
            f'<line x1="0" y1="{HEIGHT - BOTTOM}" x2="{width}" y2="{HEIGHT - BOTTOM}" stroke="#888"/>'
            f"{''.join(bars)}</svg>")
