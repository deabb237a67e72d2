"""The one check of DSS completion settings that the SPCS and the Cortex chat components share."""

import math

import pytest

from spcs_llm.core.errors import RequestRejectedError
from spcs_llm.dss.generation import GenerationParams, params_from_settings
from spcs_llm.dss.generation_settings import check_generation_settings


def test_unset_and_none_settings_leave_the_service_defaults():
    assert check_generation_settings(None) == {}
    assert check_generation_settings({"temperature": None, "topP": None, "stopSequences": None, "messages": []}) == {}
    assert params_from_settings({"maxOutputTokens": 0}) == GenerationParams()
    assert params_from_settings({"maxOutputTokens": "0", "stopSequences": []}) == GenerationParams()


def test_numbers_and_numeric_text_are_normalised():
    checked = check_generation_settings({
        "temperature": "0.5", "topP": 1, "maxOutputTokens": 256.0, "topK": "-1", "presencePenalty": " -2 ",
        "frequencyPenalty": 2, "topLogProbs": 20, "logProbs": False, "stopSequences": ("a", "b"),
        "logitBias": {"50256": -100, 7: "100"},
    })
    assert checked == {"temperature": 0.5, "topP": 1.0, "maxOutputTokens": 256, "topK": -1, "presencePenalty": -2.0,
                       "frequencyPenalty": 2.0, "topLogProbs": 20, "logProbs": False, "stopSequences": ("a", "b"),
                       "logitBias": {50256: -100.0, 7: 100.0}}
    assert isinstance(checked["maxOutputTokens"], int) and isinstance(checked["topK"], int)
    params = params_from_settings({"temperature": 0, "maxOutputTokens": "12", "stopSequences": ["x"]})
    assert params == GenerationParams(max_tokens=12, temperature=0.0, stop=("x",))


@pytest.mark.parametrize("name,good,bad", [
    ("temperature", [0, 2, "1.0"], [-0.01, 2.01, "hot", "", True, math.inf, math.nan, [0.5], {"v": 1}]),
    ("topP", [1e-9, 1, "0.5"], [0, -0.1, 1.0001, False, "p"]),
    ("topK", [-1, 0, 1, 50, "40"], [-2, 1.5, "ten", True]),
    ("maxOutputTokens", [0, 1, 4096, 8.0], [-1, 0.5, "1e400", "lots", True]),
    ("presencePenalty", [-2, 0, 2], [-2.1, 2.1, "x"]),
    ("frequencyPenalty", [-2, 0, 2], [-2.1, 2.1, "inf", "-inf"]),
    ("topLogProbs", [0, 20], [-1, 21, 2.5]),
])
def test_each_numeric_setting_keeps_to_its_range(name, good, bad):
    for value in good:
        assert name in check_generation_settings({name: value})
    for value in bad:
        with pytest.raises(RequestRejectedError, match=f"'{name}' must be"):
            check_generation_settings({name: value})


@pytest.mark.parametrize("name,value", [
    ("stopSequences", "END"), ("stopSequences", ["END", None]), ("stopSequences", {"END": 1}),
    ("logitBias", [1, 2]), ("logitBias", {"token": 1}), ("logitBias", {"-3": 1}), ("logitBias", {"3": 101}),
    ("logitBias", {"3": "up"}), ("logProbs", 1), ("logProbs", "true"),
])
def test_structured_settings_refuse_the_wrong_shape(name, value):
    with pytest.raises(RequestRejectedError, match=f"'{name}' must be"):
        check_generation_settings({name: value})


def test_the_refusal_names_the_setting_its_range_and_the_fix_and_cuts_long_values():
    with pytest.raises(RequestRejectedError) as refused:
        params_from_settings({"temperature": "hot" * 100})
    error = refused.value
    assert error.message.startswith("The completion setting 'temperature' must be a number from 0 to 2; got 'hothot")
    assert len(error.message) < 120
    assert error.fix == ("Set 'temperature' to a number from 0 to 2 in the query's completion settings, or leave it "
                         "unset for the model's default.")
