"""``python -m spcs_llm.cli``: the spcs-llm command line."""

import sys

from spcs_llm.cli import main

sys.exit(main())
