"""Run by ``test_plugin_code_env.py`` with the Python of a venv built from code-env/python/spec/requirements.txt.

Loads both DSS components as DSS would, calls each once against a tiny local HTTP endpoint, and prints a JSON
report: the replies, which modules of the Snowflake and model stacks the connectors loaded (none should be), which of
those packages the env has, and whether the macros' and the recipe's libraries import and find the Snowflake stack.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeService(BaseHTTPRequestHandler):
    """Answers /__call__ (OpenAI-chat rows) and /encode like a model service, in the dataframe envelope."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        # Chat sends {"data": [[i, {...}]]}; embeddings send {"dataframe_records": [{...}]}, answered by position.
        rows = request.get("data") or [[i, record] for i, record in enumerate(request["dataframe_records"])]
        if self.path == "/__call__":
            answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                                   "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
            body = {"data": [[row[0], answer] for row in rows]}
        else:
            body = {"data": [[row[0], {"output": [0.25, 0.5]}] for row in rows]}
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        return


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    service_auth = {"auth_type": "service", "service_preset": {"service_auth": "pat", "pat": "probe-pat-0123456789"},
                    "endpoint": endpoint}
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "standin"))  # the DSS harness, not shipped
    from spcs_standin.harness import load_component

    chat = load_component("spcs-chat", {**service_auth, "route": "__call__", "protocol": "openai_chat",
                                         "instance_family": "GPU_NV_S"})
    reply = chat.process({"messages": [{"role": "user", "content": "ping"}]}, {}, None)
    embedder = load_component("spcs-embeddings", {**service_auth, "route": "encode", "protocol": "encode",
                                                  "instance_family": "CPU_X64_S"})
    vectors = embedder.process({"queries": [{"text": "hello"}]}, {}, None)
    server.shutdown()
    stacks = ("snowflake", "pandas", "pyarrow", "torch", "transformers")
    # The bare "snowflake" namespace is made at interpreter start by snowpark's *-nspkg.pth: it holds no code.
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in stacks and name != "snowflake")
    for module in ("spcs_llm.macros.deploy_model", "spcs_llm.macros.status", "spcs_llm.macros.teardown",
                   "spcs_llm.macros.check_connection", "spcs_llm.recipes.dss"):
        importlib.import_module(module)
    from spcs_llm.deploy.dependencies import require, sql_error_type

    require("snowflake.ml.registry")
    sql_error_type()
    print(json.dumps({
        "chat_text": reply.get("text"),
        "embedding": vectors["responses"][0].get("embedding"),
        "loaded_by_connectors": loaded,
        "importable": {name: importlib.util.find_spec(name) is not None
                       for name in ("snowflake.snowpark", "snowflake.ml.registry", "pandas", "torch",
                                    "transformers")},
        "entry_libraries": "imported",
        "stack": "found",
    }))


if __name__ == "__main__":
    main()
