"""The plugin's DSS macros (``python-runnables/<id>/runnable.py``), one module per macro.

A front end like the CLI: reading the macro's parameters, calling ``spcs_llm.deploy`` and ``spcs_llm.spcs.doctor``,
and writing the HTML result a person reads in DSS. The work stays in those libraries; nothing there imports this
package (``pyproject.toml``, import-linter contracts).
"""
