"""The plux plugin LocalStack looks up by ``LAMBDA_RUNTIME_EXECUTOR``.

Kept apart from the executor so plugin discovery imports nothing heavy.
"""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class NodeRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    # Must match the entry point name in pyproject.toml.
    name = "stepgate-node"

    def load(self, *args, **kwargs):
        from stepgate_localstack.executor import NodeRuntimeExecutor

        return NodeRuntimeExecutor
