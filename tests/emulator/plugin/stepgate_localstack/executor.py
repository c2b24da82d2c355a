"""A LocalStack runtime executor that runs Node.js handlers as local ``node`` child processes.

Modelled on LocalStack's ``DockerRuntimeExecutor``: one executor per execution environment, the
same HTTP callback protocol (ready / logs / response / error) that LocalStack's Go init speaks from
inside a container, all on 127.0.0.1. What the Go init would do inside the container is split:
``bootstrap.cjs`` loads and runs the handler; this class enforces the timeout, notices a crashed
runtime (and starts a fresh one on the next invoke) and kills the process group on stop.
"""

import collections
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeoutError
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.http import Response
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    InvokeSendError,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

LOG = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
BOOTSTRAP = Path(__file__).with_name("bootstrap.cjs")
# Lines of runtime stdout/stderr kept for get_logs() (LocalStack prints them on startup failures).
OUTPUT_LINES = 2000


def _node_binary() -> str | None:
    return shutil.which("node")


def _sandbox_error(error_type: str, message: str, request_id: str | None) -> bytes:
    """A function error payload as AWS Lambda itself reports it (not the handler)."""
    prefix = f"RequestId: {request_id} Error: " if request_id else "Error: "
    return json.dumps({"errorType": error_type, "errorMessage": prefix + message}).encode()


def _exit_error(returncode: int, request_id: str | None) -> bytes:
    """The payload AWS returns when the runtime process dies."""
    if returncode < 0:
        reason = f"signal: {signal.Signals(-returncode).name.removeprefix('SIG').lower()}"
    else:
        reason = f"exit status {returncode}"
    return _sandbox_error("Runtime.ExitError", f"Runtime exited with error: {reason}", request_id)


class _LocalEndpoint(ExecutorEndpoint):
    """LocalStack's callback endpoint with two changes for a local process.

    The runtime listens on an ephemeral port (no port clashes between environments) and reports it
    in the body of its ready call. And a result for an invocation the executor has already given up
    on (timed out, crashed) is answered 410 instead of failing on an already settled future.
    """

    request_id: str | None = None

    def status_ready(self, request, executor_id: str) -> Response:
        self.container_port = int(request.json["port"])
        return super().status_ready(request, executor_id)

    def invocation_response(self, request, req_id: str) -> Response:
        return self._settle(super().invocation_response, request, req_id)

    def invocation_error(self, request, req_id: str) -> Response:
        return self._settle(super().invocation_error, request, req_id)

    def _settle(self, handler, request, req_id: str) -> Response:
        if req_id != self.request_id:
            return Response(status=HTTPStatus.GONE)
        try:
            return handler(request, req_id)
        except InvalidStateError:
            return Response(status=HTTPStatus.GONE)


class NodeRuntimeExecutor(RuntimeExecutor):
    """Runs one execution environment as a ``node bootstrap.cjs`` process in the function's code dir."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.endpoint = _LocalEndpoint(id, container_address=LOOPBACK, container_port=None)
        self.process: subprocess.Popen | None = None
        self.watcher: threading.Thread | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self.env: dict[str, str] = {}
        self.timeout_seconds = function_version.config.timeout

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        code_dir = self.function_version.config.code.get_unzipped_code_location()
        # A clean environment like a real sandbox: LocalStack's variables (with the function's own
        # Environment already merged in), not the emulator's own process environment.
        self.env = {k: str(v) for k, v in env_vars.items() if v is not None}
        self.env.setdefault("PATH", os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
        self.env.update(
            LAMBDA_TASK_ROOT=str(code_dir),  # LocalStack says /var/task, the container path
            LAMBDA_RUNTIME_DIR=str(BOOTSTRAP.parent),
            AWS_EXECUTION_ENV=f"AWS_Lambda_{self.function_version.config.runtime}",
        )
        self.timeout_seconds = int(self.env.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or self.timeout_seconds)
        self.endpoint.start()
        self._spawn()
        # Bounded by ExecutionEnvironment's startup timer, which calls stop() and so cancels this.
        self.endpoint.wait_for_startup()

    def stop(self) -> None:
        try:
            self.endpoint.shutdown()
        except Exception as e:
            LOG.debug("Error while stopping executor endpoint %s: %s", self.id, e)
        self._kill()

    def _spawn(self) -> None:
        code_dir = self.env["LAMBDA_TASK_ROOT"]
        process = subprocess.Popen(
            [_node_binary() or "node", str(BOOTSTRAP)],
            cwd=code_dir,
            env=self.env,
            # stdin stays open and unused: the runtime exits on its EOF, i.e. when LocalStack dies.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process group, so that stop/timeout also kill whatever the handler spawned.
            start_new_session=True,
        )
        self.process = process
        self.watcher = threading.Thread(
            target=self._watch, args=(process,), name=f"lambda-node-{self.id}", daemon=True
        )
        self.watcher.start()

    def _watch(self, process: subprocess.Popen) -> None:
        """Collects the runtime's output; when it exits, fails whatever was waiting on it."""
        for line in process.stdout:
            self.output.append(line.decode("utf-8", errors="replace"))
        returncode = process.wait()
        self.output.append(f"[runtime process exited with {returncode}]\n")
        request_id = self.endpoint.request_id
        for settle in (
            lambda: self.endpoint.startup_future.set_exception(
                StatusErrorException("Runtime exited during startup", _exit_error(returncode, None))
            ),
            lambda: self.endpoint.invocation_future.set_result(
                InvocationResult(
                    request_id, _exit_error(returncode, request_id), is_error=True, logs=self.get_logs()
                )
            ),
        ):
            try:
                settle()
            except (AttributeError, InvalidStateError):
                pass  # no such future, or already settled (normal for a deliberate kill)

    def _kill(self) -> None:
        """SIGKILLs the runtime's process group: a sandbox gets no graceful shutdown either."""
        process = self.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        process.stdin.close()
        # The watcher settles futures; let it finish before a restart installs new ones.
        if self.watcher is not threading.current_thread():
            self.watcher.join(timeout=5)

    def _restart(self) -> None:
        """Starts a fresh runtime after a crash or timeout (a cold start, as on AWS)."""
        self._kill()
        self.endpoint.startup_future = Future()
        self._spawn()
        try:
            self.endpoint.startup_future.result(timeout=config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
        except FutureTimeoutError:
            self._kill()
            raise LambdaRuntimeException(f"Runtime of executor {self.id} did not become ready")

    # --- invocation ------------------------------------------------------------------------

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        if self.process is None or self.process.poll() is not None:
            try:
                self._restart()
            except StatusErrorException as e:  # the handler failed to load this time
                return InvocationResult(request_id, e.payload, is_error=True, logs=self.get_logs())

        future: Future[InvocationResult] = Future()
        self.endpoint.invocation_future = future
        self.endpoint.request_id = request_id
        self.endpoint.logs = None
        url = f"http://{LOOPBACK}:{self.endpoint.container_port}/invoke"
        response = ExecutorEndpoint._perform_invoke(
            invocation_url=url, proxies={"http": "", "https": ""}, payload=payload
        )
        if not response.ok:
            raise InvokeSendError(f"Runtime at {url} refused invocation: {response.status_code}")

        try:
            return future.result(timeout=self.timeout_seconds)
        except FutureTimeoutError:
            if not future.cancel():  # the result arrived just now
                return future.result()
        # Timed out: the runtime is discarded, as on AWS. LocalStack's own (Docker) executor answers
        # {"errorMessage": "<time> <id> Task timed out after N.00 seconds"} without an errorType;
        # AWS today sends errorType Sandbox.Timedout, which Step Functions Retry/Catch can match.
        self._kill()
        message = f"Task timed out after {self.timeout_seconds}.00 seconds"
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return InvocationResult(
            request_id,
            _sandbox_error("Sandbox.Timedout", message, request_id),
            is_error=True,
            logs=f"{stamp} {request_id} {message}\n",
        )

    # --- addresses and logs ----------------------------------------------------------------

    def get_address(self) -> str:
        return LOOPBACK

    def get_endpoint_from_executor(self) -> str:
        return LOOPBACK

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{LOOPBACK}:{port}{self.endpoint.get_endpoint_prefix()}"

    def get_logs(self) -> str:
        return "".join(self.output)

    # --- per version -----------------------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        """Unzips the code; refuses what a local node cannot run (the function then goes Failed)."""
        cfg = function_version.config
        if cfg.package_type != PackageType.Zip or not (cfg.runtime or "").startswith("nodejs"):
            raise LambdaRuntimeException(
                f"the stepgate-node executor runs only Zip functions on nodejs* runtimes, "
                f"not {cfg.runtime or cfg.package_type}"
            )
        if cfg.layers:
            LOG.warning("Layers of %s are ignored by the stepgate-node executor", cfg.code)
        cfg.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # LocalStack itself deletes the unzipped code

    @classmethod
    def validate_environment(cls) -> bool:
        if not _node_binary():
            LOG.warning("stepgate-node executor: no `node` on PATH, Lambda functions cannot run")
            return False
        return True
