"""DSS macro entry point: the doctor's checks against one SPCS model (``spcs_llm.macros.check_connection``)."""

from dataiku.runnables import Runnable

from spcs_llm.macros.check_connection import CheckConnectionMacro


class MyRunnable(Runnable):
    def __init__(self, project_key, config, plugin_config):
        super().__init__(project_key, config, plugin_config)
        self.macro = CheckConnectionMacro(config)

    def get_progress_target(self):
        return self.macro.progress_target

    def run(self, progress_callback):
        return self.macro.run(progress_callback)
