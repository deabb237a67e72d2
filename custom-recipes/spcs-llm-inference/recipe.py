# LLM inference in Snowflake: a DSS Flow recipe (Dataiku docs, "Plugin components: recipes"). DSS runs this script
# top to bottom; the work is in spcs_llm.recipes (python-lib/), inside Snowflake: no row is read into DSS.
from spcs_llm.recipes.dss import run_recipe

run_recipe()
