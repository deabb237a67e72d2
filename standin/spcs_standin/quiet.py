"""Keep the libraries' chatter (deprecation warnings, weight-loading bars, snowflake-ml and transformers warnings)
off the console of the demo and the stand-in, unless the user asks for it with ``-v``."""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Read when transformers / huggingface_hub are imported, here and in every child process (the stand-in).
QUIET_ENVIRONMENT = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONWARNINGS": "ignore"}
NOISY_LOGGERS = ("snowflake", "transformers", "sentence_transformers", "huggingface_hub", "filelock", "urllib3")


def quiet_libraries(verbose: bool) -> None:
    """Silence third-party warnings and progress bars for this process and the processes it starts."""
    if verbose:
        return
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.simplefilter("ignore")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # imported already: the environment is read only at import
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
