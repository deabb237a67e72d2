"""DSS macro entry point: drop what bills, after a typed confirmation. The work is in ``spcs_llm.macros.teardown``."""

from dataiku.runnables import Runnable

from spcs_llm.macros.teardown import TeardownMacro


class MyRunnable(Runnable):
    def __init__(self, project_key, config, plugin_config):
        super().__init__(project_key, config, plugin_config)
        self.macro = TeardownMacro(config)

    def get_progress_target(self):
        return self.macro.progress_target

    def run(self, progress_callback):
        return self.macro.run(progress_callback)
