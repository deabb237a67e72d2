"""Soak: embed many unique texts through the DSS embedding component while the stand-in misbehaves.

The stand-in answers about 20 % of requests with 429 (Retry-After 2 s) or 503, drops 1 % of connections without
an answer, and refuses session tokens older than 2 s, so per-user OAuth sessions are renewed all along. Every
text must come back with its own embedding, in order, none duplicated and none lost.

Size: ``SPCS_LLM_SOAK_TEXTS`` (1,000 by default for ``make test``; ``make soak`` runs 10,000).
"""

from __future__ import annotations

import os
import time

import numpy as np
from dataikuapi.dss.llm_tracing import SpanBuilder
from reliability_configs import model_config, oauth_preset

from spcs_standin.harness import load_component

SOAK_TEXTS = int(os.environ.get("SPCS_LLM_SOAK_TEXTS", "1000"))
RATE_503 = 0.10
RATE_429 = 0.10 / 0.90  # drawn after the 503 draw, so 429 + 503 together hit 20 % of requests
RATE_DROP = 0.01
SESSION_EXPIRY_S = 2.0
RETRY_AFTER_S = 2  # as long as a session token lives: a token renewed before a 429 is stale after the wait
# Attempt budget, tuned the way a user would for a flaky service: with about 21 % of attempts failing, the default
# 6 attempts leave a batch lost with probability 0.21^6 ≈ 1e-4, i.e. about one of 10,000 texts' batches in 10
# soaks; 10 attempts make it ≈ 2e-7.
MAX_ATTEMPTS = 10
ROWS_PER_REQUEST = 8  # small batches: many requests, so many faults per soak
PARALLELISM = 4
NEIGHBOUR_BLOCK = 1000
# Below this many requests a 1 % drop rate may well drop none (P ≈ 0.99^n); above it, P(none) < 5e-5.
REQUESTS_SURE_TO_SEE_A_DROP = 1000

WORDS = ("amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "indigo", "juniper",
         "kelp", "lagoon", "meadow", "nectar", "orchid", "prairie", "quartz", "river", "saffron", "tundra")


def soak_texts(count: int) -> list[str]:
    """Unique, varied sentences: the row number is spelt in words and digits so no two texts embed alike."""
    texts = []
    for i in range(count):
        a, b, c = WORDS[i % 20], WORDS[(i // 20) % 20], WORDS[(i // 400) % 20]
        texts.append(f"Record {i}: {a} {b} near {c}, ref {i * 7919 % 100003}.")
    return texts


def nearest_reference(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """For each returned vector, the index of the closest reference vector (cosine), in blocks to bound memory."""
    unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    found = []
    for start in range(0, len(vectors), NEIGHBOUR_BLOCK):
        block = vectors[start:start + NEIGHBOUR_BLOCK]
        found.append(np.argmax(block @ unit.T, axis=1))
    return np.concatenate(found)


def test_soak_every_text_gets_its_own_embedding_under_faults_and_session_expiry(clean, reference_vectors, exposure):
    texts = soak_texts(SOAK_TEXTS)
    assert len(set(texts)) == len(texts)
    token = clean.issue_oauth_token()
    embedder = load_component("spcs-embeddings", model_config(
        clean.embed_url, oauth_preset(token, clean.account_url, mode="exchange"),
        rows_per_request=ROWS_PER_REQUEST, max_parallelism=PARALLELISM, max_attempts=MAX_ATTEMPTS))
    clean.stats("embed", reset=True)
    clean.set_faults("embed", rate_429=RATE_429, retry_after_s=RETRY_AFTER_S, rate_503=RATE_503,
                     rate_drop=RATE_DROP, token_expiry_s=SESSION_EXPIRY_S, seed=20240611)
    trace = SpanBuilder("soak")
    started = time.monotonic()
    answer = embedder.process({"queries": [{"text": text} for text in texts]}, {}, trace)
    elapsed = time.monotonic() - started
    exposure.add(trace)
    stats = clean.stats("embed")
    call = trace.to_dict()["children"][-1]["attributes"]

    responses = answer["responses"]
    failed = [(i, r["errorMessage"]) for i, r in enumerate(responses) if "errorMessage" in r]
    assert not failed, f"{len(failed)} texts lost, first: {failed[:3]}"
    assert len(responses) == len(texts)
    vectors = np.array([r["embedding"] for r in responses], dtype=np.float32)

    reference = reference_vectors(texts)
    assert np.array_equal(nearest_reference(vectors, reference), np.arange(len(texts))), "a text got another's vector"
    assert np.allclose(vectors, reference, atol=1e-4)
    assert len(np.unique(vectors.round(5), axis=0)) == len(texts), "two texts share one vector"

    # Every row was computed exactly once by the model (nothing lost, nothing sent twice after a success) ...
    assert stats["rows"] == len(texts)
    assert stats["model_calls"] == call["spcs.requests"] and stats["max_rows_per_call"] <= ROWS_PER_REQUEST
    # ... while the faults actually happened, and the client retried each one.
    assert stats["sent_429"] > 0 and stats["sent_503"] > 0
    assert stats["statuses"].get("401", 0) > 0 and call["spcs.tokenRenewals"] > 0
    if stats["requests"] >= REQUESTS_SURE_TO_SEE_A_DROP:
        assert stats["dropped"] > 0
    assert call["spcs.retries"] >= stats["sent_429"] + stats["sent_503"] + stats["dropped"]
    assert call["spcs.failedRows"] == 0
    print(f"\nsoak: {len(texts)} texts in {elapsed:.1f} s; {stats['requests']} requests, "
          f"{stats['sent_429']}×429, {stats['sent_503']}×503, {stats['dropped']} dropped, "
          f"{stats['statuses'].get('401', 0)}×401 → {call['spcs.tokenRenewals']} renewals, "
          f"{call['spcs.retries']} retries")
