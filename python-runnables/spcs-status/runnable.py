"""DSS macro entry point: what SPCS runs and bills. The work is in ``spcs_llm.macros.status``."""

from dataiku.runnables import Runnable

from spcs_llm.macros.status import StatusMacro


class MyRunnable(Runnable):
    def __init__(self, project_key, config, plugin_config):
        super().__init__(project_key, config, plugin_config)
        self.macro = StatusMacro(config)

    def get_progress_target(self):
        return self.macro.progress_target

    def run(self, progress_callback):
        return self.macro.run(progress_callback)
