"""DSS macro entry point: deploy a model to SPCS (admins). The work is in ``spcs_llm.macros.deploy_model``."""

from dataiku.runnables import Runnable

from spcs_llm.macros.deploy_model import DeployModelMacro


class MyRunnable(Runnable):
    def __init__(self, project_key, config, plugin_config):
        super().__init__(project_key, config, plugin_config)
        self.macro = DeployModelMacro(config)

    def get_progress_target(self):
        return self.macro.progress_target

    def run(self, progress_callback):
        return self.macro.run(progress_callback)
