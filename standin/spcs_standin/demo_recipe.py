"""The Flow recipe's part of ``make demo``: the *LLM inference in Snowflake* recipe's library
(``spcs_llm.recipes.inference.run_inference``) on a small table in the stand-in warehouse (``warehouse/``: DuckDB
behind a Snowpark-like session, ``AI_COMPLETE`` answered by the stand-in's tiny Cortex chat model in process).

Every step is SQL in the warehouse, as in Snowflake: the prompts are built there from a template over a column (its
text bound, never spliced), the estimate is logged before any model call, the rows are scored by ``AI_COMPLETE`` in
chunks, and one review too long for the model's context fails on its own and gets its ERROR while the others get
their replies. The tiny model is priced like the Cortex model of its family (``demo_cortex.PRICED_LIKE``).
"""

from __future__ import annotations

import threading

from spcs_llm.recipes.inference import TableLocation, run_inference
from spcs_llm.recipes.settings import read_settings
from spcs_standin.cortex_engines import CHAT_MODEL, CortexModels
from spcs_standin.demo_cortex import price_settings
from spcs_standin.warehouse import Warehouse

DATABASE, SCHEMA = "SPCS_LLM", "DEMO"
TEMPLATE = "Summarise: {{review}}"
REVIEWS = ["Great phone, the battery lasts two days.", "Stopped working after a week.", "Fast delivery, well packed.",
           "The strap broke on day one, then again, and again. " * 200, "Would buy again.", "Too small for my hands."]
MAX_TOKENS = 16


def _short(value: object, width: int) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def start_recipe_model_load() -> CortexModels:
    """The warehouse's models, with the chat model loading in the background while the earlier parts run (its
    first use waits for the load: ``CortexModels`` loads each model once, under a lock)."""
    models = CortexModels()
    threading.Thread(target=models.chat, args=(CHAT_MODEL,), name="recipe-model-load", daemon=True).start()
    return models


def run_recipe_demo(models: CortexModels | None = None) -> None:
    print(f"\n== Flow recipe 'LLM inference in Snowflake' in the stand-in warehouse (DuckDB, AI_COMPLETE on "
          f"{CHAT_MODEL}, which knows only its canned replies): {len(REVIEWS)} product reviews, prompt template "
          f"{TEMPLATE!r}")
    warehouse = Warehouse(database=DATABASE, schema=SCHEMA, models=models)
    session = warehouse.session()
    session.sql('CREATE TABLE "PRODUCT_REVIEWS" (ID NUMBER, "review" VARCHAR)').collect()
    for number, review in enumerate(REVIEWS, start=1):
        session.sql('INSERT INTO "PRODUCT_REVIEWS" (ID, "review") VALUES (?, ?)', params=[number, review]).collect()
    settings = read_settings({"model_kind": "cortex", "cortex_model": CHAT_MODEL, "task": "chat",
                              "input_mode": "template", "prompt_template": TEMPLATE, "max_tokens": MAX_TOKENS,
                              **price_settings(CHAT_MODEL)})
    source = TableLocation("product_reviews", "snowflake", DATABASE, SCHEMA, "PRODUCT_REVIEWS")
    target = TableLocation("product_reviews_scored", "snowflake", DATABASE, SCHEMA, "PRODUCT_REVIEWS_SCORED")
    run_inference(session, settings, source, target, report=lambda line: print(f"  log: {line}"))
    rows = session.sql('SELECT ID, "PROMPT", REPLY, PROMPT_TOKENS, COMPLETION_TOKENS, COST_CREDITS, ERROR '
                       'FROM "PRODUCT_REVIEWS_SCORED" ORDER BY ID').collect()
    print(f"  {'ID':>2}  {'PROMPT':<40} {'REPLY':<32} {'IN':>4} {'OUT':>4} {'COST_CREDITS':>12}  ERROR")
    for row in rows:
        cost = "" if row["COST_CREDITS"] is None else f"{row['COST_CREDITS']:.8f}"
        print(f"  {row['ID']:>2}  {_short(row['PROMPT'], 40):<40} {_short(row['REPLY'], 32):<32} "
              f"{_short(row['PROMPT_TOKENS'], 4):>4} {_short(row['COMPLETION_TOKENS'], 4):>4} {cost:>12}  "
              f"{_short(row['ERROR'], 80)}")
    session.close()
