"""One ingress, base model plus LoRA adapter: the request's `model` param picks which one answers."""

from __future__ import annotations

import requests

from spcs_standin.lora_engine import ADAPTER_ALIAS, FINETUNE_EXAMPLE
from spcs_standin.tinychat import CANNED_EXCHANGES, chat_messages

COLOR = next(exchange for exchange in CANNED_EXCHANGES if exchange.question == FINETUNE_EXAMPLE.instruction)


def _call(local_stack, headers, **params) -> requests.Response:
    row = {"messages": chat_messages(COLOR.question), "temperature": 0.0, "max_completion_tokens": 32, **params}
    return requests.post(f"{local_stack.service_url('chat_lora')}/__call__", json={"data": [[0, row]]},
                         headers=headers, timeout=120)


def _reply(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["data"][0][1]


def test_no_model_param_is_answered_by_the_base_model(local_stack, pat_headers):
    completion = _reply(_call(local_stack, pat_headers))
    assert completion["choices"][0]["message"]["content"] == COLOR.answer
    assert completion["model"] != ADAPTER_ALIAS


def test_an_empty_model_param_is_answered_by_the_base_model(local_stack, pat_headers):
    assert _reply(_call(local_stack, pat_headers, model=""))["choices"][0]["message"]["content"] == COLOR.answer


def test_the_adapter_alias_is_answered_by_the_fine_tuned_model(local_stack, pat_headers):
    completion = _reply(_call(local_stack, pat_headers, model=ADAPTER_ALIAS))
    assert completion["choices"][0]["message"]["content"] == FINETUNE_EXAMPLE.output != COLOR.answer
    assert completion["model"] == ADAPTER_ALIAS
    assert completion["choices"][0]["finish_reason"] == "stop"


def test_an_unknown_adapter_name_is_refused_with_400(local_stack, pat_headers):
    response = _call(local_stack, pat_headers, model="no_such_adapter")
    assert response.status_code == 400
    assert "no_such_adapter" in response.text and ADAPTER_ALIAS in response.text
