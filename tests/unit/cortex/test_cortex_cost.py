"""Per-token Cortex cost: the dated table, the per-model override, and unknown models reported as unknown."""

import responses
from cortex_support import CHAT_URL, EMBED_URL, chat_client, embedding_client

from spcs_llm.cortex.config import CortexCostConfig
from spcs_llm.cortex.cost import CORTEX_CREDITS_PER_MILLION, CORTEX_RATES_AS_OF, CortexPricing
from spcs_llm.cortex.dss_adapter import CortexChatAdapter, CortexEmbeddingAdapter

QUERY = {"messages": [{"role": "user", "content": "hi"}]}
USAGE = {"prompt_tokens": 1_000_000, "completion_tokens": 200_000}


def reply():
    return {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "usage": USAGE}


def test_cost_uses_the_tables_input_and_output_rates():
    pricing = CortexPricing("claude-3-5-sonnet", CortexCostConfig(dollars_per_credit=2.0))
    input_rate, output_rate = CORTEX_CREDITS_PER_MILLION["claude-3-5-sonnet"]
    estimate = pricing.estimate(1_000_000, 200_000)
    assert estimate.credits == input_rate + 0.2 * output_rate
    assert estimate.dollars == estimate.credits * 2.0
    assert pricing.rate.source == f"table as of {CORTEX_RATES_AS_OF}"


def test_the_models_rates_override_the_table():
    pricing = CortexPricing("claude-3-5-sonnet", CortexCostConfig(input_credits_per_million=1.0,
                                                                   output_credits_per_million=4.0))
    assert pricing.estimate(1_000_000, 1_000_000).credits == 5.0 and pricing.rate.source == "model settings"


def test_an_unknown_model_has_no_cost_rather_than_zero(http):
    http.add(responses.POST, CHAT_URL, json=reply())
    adapter = CortexChatAdapter(chat_client(model="MYDB.TUNED.MY_FINETUNED_LLAMA"))
    response = adapter.process(QUERY, {}, None)
    assert "estimatedCost" not in response and response["promptTokens"] == 1_000_000
    estimate = adapter.client.pricing.estimate(10, 10)
    assert estimate.dollars is None and "MY_FINETUNED_LLAMA" in estimate.unknown_reason


def test_an_unknown_model_gets_a_price_from_its_override(http):
    http.add(responses.POST, CHAT_URL, json=reply())
    adapter = CortexChatAdapter(chat_client(model="MYDB.TUNED.MY_FINETUNED_LLAMA", input_credits_per_million=0.5))
    assert adapter.process(QUERY, {}, None)["estimatedCost"] == (0.5 + 0.2 * 0.5) * 3.0


def test_a_known_model_reports_its_cost_in_the_dss_footer(http):
    http.add(responses.POST, CHAT_URL, json=reply())
    response = CortexChatAdapter(chat_client(model="mistral-large2")).process(QUERY, {}, None)
    input_rate, output_rate = CORTEX_CREDITS_PER_MILLION["mistral-large2"]
    assert response["estimatedCost"] == (input_rate + 0.2 * output_rate) * 3.0


def test_embeddings_bill_input_tokens(http):
    http.add(responses.POST, EMBED_URL, json={
        "object": "list", "model": "e5-base-v2", "usage": {"total_tokens": 2_000_000},
        "data": [{"object": "embedding", "index": 0, "embedding": [[0.1, 0.2]]}]})
    response = CortexEmbeddingAdapter(embedding_client(model="e5-base-v2")).process({"text": "hello"}, {}, None)
    assert response["estimatedCost"] == 2 * CORTEX_CREDITS_PER_MILLION["e5-base-v2"][0] * 3.0
