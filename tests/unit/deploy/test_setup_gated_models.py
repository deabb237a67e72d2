"""The setup script's note on gated models names exactly the catalog's gated models."""

import re

from spcs_llm.deploy import CATALOG, DeploymentNames, setup_sql


def test_the_hugging_face_token_note_lists_every_gated_catalog_model_and_no_other():
    script = setup_sql(DeploymentNames.build(dss_url="https://dss.mycompany.com"))
    listed = re.search(r"^-- Gated in the catalog: (.+) \(and any other gated Hub id you deploy\)\.$", script, re.M)
    assert listed, "the setup script no longer says which catalog models are gated"
    gated = {spec.key for spec in CATALOG.values() if spec.gated}
    assert {"llama-3.1-8b-instruct", "llama-3.2-3b-instruct"} <= gated
    assert set(listed.group(1).split(", ")) == gated
    assert "(Llama-2, Mistral)" not in script
