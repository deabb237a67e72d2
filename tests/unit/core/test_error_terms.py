"""An error's fix in a form's words: ``SpcsLlmError.in_terms_of`` (used by the macros and the Flow recipe)."""

from __future__ import annotations

from spcs_llm.core.errors import DeploymentError

FORM = {"--gpu-pool": "'GPU compute pool'", "--gpu": "'GPUs'", "--mode job": "'Run as' a batch job"}


def test_options_become_form_fields_whole_options_only_and_commands_in_backticks_stay():
    error = DeploymentError("No pool for --gpu-pool.", fix="Pass --gpu-pool X and --gpu 1; `spcs-llm setup-sql "
                            "--gpu-pool X` writes the SQL. Or use --mode job.")
    error.in_terms_of(FORM, "options of the CLI")
    assert error.message == "No pool for 'GPU compute pool'."
    assert error.fix == ("Pass 'GPU compute pool' X and 'GPUs' 1; `spcs-llm setup-sql --gpu-pool X` writes the SQL. "
                         "Or use 'Run as' a batch job.")
    assert str(error).endswith("Or use 'Run as' a batch job.") and str(error) == error.args[0]


def test_options_the_form_lacks_are_named_once_at_the_end_of_the_fix():
    error = DeploymentError("Too big.", fix="Pass --gpus 2, or --gpus 1 with --max-model-len 4096.")
    error.in_terms_of(FORM, "options of the CLI")
    assert error.fix == ("Pass --gpus 2, or --gpus 1 with --max-model-len 4096 "
                         "(--gpus, --max-model-len: options of the CLI).")
    untouched = DeploymentError("Too big.", fix="Pass --gpus 2.").in_terms_of(FORM)
    assert untouched.fix == "Pass --gpus 2."
