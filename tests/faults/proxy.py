#!/usr/bin/env python3
"""AWS fault-injection proxy for stepgate's tests (Python 3.11 standard library only).

Listens on 127.0.0.1, forwards every HTTP/1.1 request to the upstream emulator and, with a
seeded probability, answers what real AWS answers and the emulator never does: throttling,
server faults, connections reset before or after the call reached AWS, IAM propagation delay,
API Gateway control-plane quotas and API Gateway's 409 conflicts. Every error is rendered in
the exact wire format of the service's protocol, so that aws-sdk-rust parses the intended error
code. tests/faults/README.md lists every injected error with its source.

    python3 tests/faults/proxy.py --upstream http://127.0.0.1:4566 [--listen 127.0.0.1:0]
        [--seed N] [--rate 0.1] [--faults throttle,5xx,reset,lost,propagation,quota,conflict]
        [--propagation-seconds 2.0] [--quota-scale 1.0] [--latency-ms 0]
        [--port-file PATH] [--log PATH]

Prints one line, http://127.0.0.1:PORT, once listening; runs until SIGTERM or SIGINT.
Control API (never forwarded): GET /_fault/stats, POST /_fault/config, POST /_fault/reset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import socket
import struct
import sys
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

FAULTS = ("throttle", "5xx", "reset", "lost", "propagation", "quota", "conflict", "denied")
# Injected at --rate on any call of a known service; the others are stateful.
RANDOM_FAULTS = ("throttle", "5xx", "reset", "lost")

UPSTREAM_TIMEOUT = 300.0  # seconds for one upstream exchange (connect, send, read)
MAX_HEADER_BYTES = 1 << 20

# ---------------------------------------------------------------------------------------------
# Protocols and the errors AWS sends (sources: tests/faults/README.md)
# ---------------------------------------------------------------------------------------------

PROTOCOL = {
    "iam": "query",
    "sts": "query",
    "lambda": "rest-json",
    "apigateway": "rest-json",
    "states": "json-1.0",
    "logs": "json-1.1",
    "ssm": "json-1.1",
}
QUERY_NAMESPACE = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


@dataclass
class Reply:
    """A complete HTTP response the proxy sends instead of the emulator's."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    code: str  # the AWS error code, for logs


REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def aws_error(service: str, status: int, code: str, message: str, *,
              body: dict | None = None, message_key: str = "message",
              retry_after: int | None = None) -> Reply:
    """Renders one error in the wire format of `service`'s protocol.

    query (IAM, STS): text/xml ErrorResponse with Type Sender (4xx) or Receiver (5xx).
    rest-json (Lambda, API Gateway): x-amzn-ErrorType header plus a JSON body (`body`, or
      {"message": message}).
    json-1.0 / json-1.1 (Step Functions; Logs, SSM): {"__type": code, message_key: message}.
    """
    request_id = str(uuid.uuid4())
    protocol = PROTOCOL[service]
    headers = [("x-amzn-RequestId", request_id)]
    if protocol == "query":
        kind = "Sender" if status < 500 else "Receiver"
        text = (
            f'<ErrorResponse xmlns="{QUERY_NAMESPACE[service]}">\n'
            f"  <Error>\n"
            f"    <Type>{kind}</Type>\n"
            f"    <Code>{escape(code)}</Code>\n"
            f"    <Message>{escape(message)}</Message>\n"
            f"  </Error>\n"
            f"  <RequestId>{request_id}</RequestId>\n"
            f"</ErrorResponse>\n"
        )
        headers.append(("Content-Type", "text/xml"))
        payload = text.encode()
    elif protocol == "rest-json":
        headers.append(("x-amzn-ErrorType", code))
        headers.append(("Content-Type", "application/json"))
        payload = json.dumps(body if body is not None else {"message": message},
                             separators=(",", ":")).encode()
    else:
        version = protocol.split("-")[1]
        headers.append(("Content-Type", f"application/x-amz-json-{version}"))
        payload = json.dumps({"__type": code, message_key: message},
                             separators=(",", ":")).encode()
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return Reply(status, headers, payload, code)


RATE_EXCEEDED = "Rate exceeded"
UNKNOWN_FAILURE = "The request processing has failed because of an unknown error, exception or failure."


def throttle_error(service: str) -> Reply:
    if service in ("iam", "sts"):
        return aws_error(service, 400, "Throttling", RATE_EXCEEDED)
    if service == "lambda":
        return aws_error(service, 429, "TooManyRequestsException", RATE_EXCEEDED,
                         body={"Reason": "CallerRateLimitExceeded", "Type": "User",
                               "message": RATE_EXCEEDED},
                         retry_after=1)
    if service == "apigateway":
        return aws_error(service, 429, "TooManyRequestsException", "Too Many Requests",
                         retry_after=1)
    if service == "ssm":
        return aws_error(service, 400, "ThrottlingException", RATE_EXCEEDED, message_key="Message")
    return aws_error(service, 400, "ThrottlingException", RATE_EXCEEDED)  # states, logs


def server_error(service: str) -> Reply:
    if service == "iam":
        return aws_error(service, 500, "ServiceFailure", UNKNOWN_FAILURE)
    if service in ("sts", "states"):
        return aws_error(service, 500, "InternalFailure", UNKNOWN_FAILURE)
    if service == "lambda":
        return aws_error(service, 500, "ServiceException", "",
                         body={"Type": "Service",
                               "Message": "An error occurred and the request cannot be processed."})
    if service == "apigateway":
        return aws_error(service, 503, "ServiceUnavailableException", "Service Unavailable")
    if service == "logs":
        return aws_error(service, 500, "ServiceUnavailableException",
                         "The service cannot complete the request.")
    return aws_error(service, 500, "InternalServerError",  # ssm
                     "An error occurred on the server side.", message_key="Message")


LAMBDA_ROLE_MESSAGE = "The role defined for the function cannot be assumed by Lambda."
SFN_ASSUME_MESSAGE = ("Neither the global service principal states.amazonaws.com, "
                      "nor the regional one is authorized to assume the provided role.")
SFN_LOG_MESSAGE = "The state machine IAM Role is not authorized to access the Log Destination"
APIGW_ROLE_MESSAGE = ("The role ARN does not have required permissions configured. Please grant "
                      "trust permission for API Gateway and add the required role policy.")
PROPAGATION_VARIANTS = ("assume", "log-destination")


def propagation_error(service: str, variant: str) -> Reply:
    if service == "apigateway":  # UpdateAccount naming a CloudWatch role
        return aws_error(service, 400, "BadRequestException", APIGW_ROLE_MESSAGE)
    if service == "lambda":
        return aws_error(service, 400, "InvalidParameterValueException", LAMBDA_ROLE_MESSAGE,
                         body={"Type": "User", "message": LAMBDA_ROLE_MESSAGE})
    message = SFN_LOG_MESSAGE if variant == "log-destination" else SFN_ASSUME_MESSAGE
    return aws_error(service, 400, "AccessDeniedException", message)


def quota_error(retry_after: int) -> Reply:
    return aws_error("apigateway", 429, "TooManyRequestsException", "Too Many Requests",
                     retry_after=max(1, retry_after))


def denied_error(req: "Request", call: "Call") -> Reply:
    """STS refusing AssumeRole: the role's trust does not name the caller, or the external ID
    is wrong. AWS says the same in both cases, naming the caller and the role."""
    form = parse_qs(req.body.decode("utf-8", "replace"))
    role = form.get("RoleArn", ["?"])[0]
    account = call.access_key if re.fullmatch(r"\d{12}", call.access_key) else "000000000000"
    return aws_error("sts", 403, "AccessDenied",
                     f"User: arn:aws:iam::{account}:user/pipeline is not authorized to perform: "
                     f"sts:AssumeRole on resource: {role}")


def conflict_error(message: str) -> Reply:
    return aws_error("apigateway", 409, "ConflictException", message)


# ---------------------------------------------------------------------------------------------
# Identifying service and operation
# ---------------------------------------------------------------------------------------------

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")

_SEG = r"[^/]+"
# (method, path pattern, operation) from the services' models; {x} is one path segment and
# {x+} the rest of the path.
REST_ROUTES = {
    "lambda": [
        ("POST", "/2015-03-31/functions", "CreateFunction"),
        ("GET", "/2015-03-31/functions/", "ListFunctions"),
        ("GET", "/2015-03-31/functions", "ListFunctions"),
        ("GET", "/2015-03-31/functions/{f}", "GetFunction"),
        ("DELETE", "/2015-03-31/functions/{f}", "DeleteFunction"),
        ("PUT", "/2015-03-31/functions/{f}/code", "UpdateFunctionCode"),
        ("GET", "/2015-03-31/functions/{f}/configuration", "GetFunctionConfiguration"),
        ("PUT", "/2015-03-31/functions/{f}/configuration", "UpdateFunctionConfiguration"),
        ("POST", "/2015-03-31/functions/{f}/invocations", "Invoke"),
        ("GET", "/2015-03-31/functions/{f}/policy", "GetPolicy"),
        ("POST", "/2015-03-31/functions/{f}/policy", "AddPermission"),
        ("DELETE", "/2015-03-31/functions/{f}/policy/{s}", "RemovePermission"),
        ("GET", "/2015-03-31/functions/{f}/versions", "ListVersionsByFunction"),
        ("POST", "/2015-03-31/functions/{f}/versions", "PublishVersion"),
        ("GET", "/2015-03-31/functions/{f}/aliases", "ListAliases"),
        ("POST", "/2015-03-31/functions/{f}/aliases", "CreateAlias"),
        ("GET", "/2015-03-31/functions/{f}/aliases/{a}", "GetAlias"),
        ("PUT", "/2015-03-31/functions/{f}/aliases/{a}", "UpdateAlias"),
        ("DELETE", "/2015-03-31/functions/{f}/aliases/{a}", "DeleteAlias"),
        ("POST", "/2017-03-31/tags/{arn+}", "TagResource"),
        ("GET", "/2017-03-31/tags/{arn+}", "ListTags"),
        ("DELETE", "/2017-03-31/tags/{arn+}", "UntagResource"),
    ],
    "apigateway": [
        ("GET", "/account", "GetAccount"),
        ("PATCH", "/account", "UpdateAccount"),
        ("POST", "/restapis", "CreateRestApi"),
        ("GET", "/restapis", "GetRestApis"),
        ("GET", "/restapis/{api}", "GetRestApi"),
        ("PUT", "/restapis/{api}", "PutRestApi"),
        ("PATCH", "/restapis/{api}", "UpdateRestApi"),
        ("DELETE", "/restapis/{api}", "DeleteRestApi"),
        ("GET", "/restapis/{api}/resources", "GetResources"),
        ("POST", "/restapis/{api}/resources/{parent}", "CreateResource"),
        ("GET", "/restapis/{api}/resources/{res}", "GetResource"),
        ("PATCH", "/restapis/{api}/resources/{res}", "UpdateResource"),
        ("DELETE", "/restapis/{api}/resources/{res}", "DeleteResource"),
        ("PUT", "/restapis/{api}/resources/{res}/methods/{m}", "PutMethod"),
        ("GET", "/restapis/{api}/resources/{res}/methods/{m}", "GetMethod"),
        ("PATCH", "/restapis/{api}/resources/{res}/methods/{m}", "UpdateMethod"),
        ("DELETE", "/restapis/{api}/resources/{res}/methods/{m}", "DeleteMethod"),
        ("POST", "/restapis/{api}/resources/{res}/methods/{m}", "TestInvokeMethod"),
        ("PUT", "/restapis/{api}/resources/{res}/methods/{m}/responses/{c}", "PutMethodResponse"),
        ("GET", "/restapis/{api}/resources/{res}/methods/{m}/responses/{c}", "GetMethodResponse"),
        ("PATCH", "/restapis/{api}/resources/{res}/methods/{m}/responses/{c}",
         "UpdateMethodResponse"),
        ("DELETE", "/restapis/{api}/resources/{res}/methods/{m}/responses/{c}",
         "DeleteMethodResponse"),
        ("PUT", "/restapis/{api}/resources/{res}/methods/{m}/integration", "PutIntegration"),
        ("GET", "/restapis/{api}/resources/{res}/methods/{m}/integration", "GetIntegration"),
        ("PATCH", "/restapis/{api}/resources/{res}/methods/{m}/integration", "UpdateIntegration"),
        ("DELETE", "/restapis/{api}/resources/{res}/methods/{m}/integration",
         "DeleteIntegration"),
        ("PUT", "/restapis/{api}/resources/{res}/methods/{m}/integration/responses/{c}",
         "PutIntegrationResponse"),
        ("GET", "/restapis/{api}/resources/{res}/methods/{m}/integration/responses/{c}",
         "GetIntegrationResponse"),
        ("PATCH", "/restapis/{api}/resources/{res}/methods/{m}/integration/responses/{c}",
         "UpdateIntegrationResponse"),
        ("DELETE", "/restapis/{api}/resources/{res}/methods/{m}/integration/responses/{c}",
         "DeleteIntegrationResponse"),
        ("POST", "/restapis/{api}/deployments", "CreateDeployment"),
        ("GET", "/restapis/{api}/deployments", "GetDeployments"),
        ("GET", "/restapis/{api}/deployments/{d}", "GetDeployment"),
        ("PATCH", "/restapis/{api}/deployments/{d}", "UpdateDeployment"),
        ("DELETE", "/restapis/{api}/deployments/{d}", "DeleteDeployment"),
        ("POST", "/restapis/{api}/stages", "CreateStage"),
        ("GET", "/restapis/{api}/stages", "GetStages"),
        ("GET", "/restapis/{api}/stages/{stage}", "GetStage"),
        ("PATCH", "/restapis/{api}/stages/{stage}", "UpdateStage"),
        ("DELETE", "/restapis/{api}/stages/{stage}", "DeleteStage"),
        ("POST", "/restapis/{api}/models", "CreateModel"),
        ("GET", "/restapis/{api}/models", "GetModels"),
        ("GET", "/restapis/{api}/models/{model}", "GetModel"),
        ("PATCH", "/restapis/{api}/models/{model}", "UpdateModel"),
        ("DELETE", "/restapis/{api}/models/{model}", "DeleteModel"),
        ("POST", "/restapis/{api}/requestvalidators", "CreateRequestValidator"),
        ("GET", "/restapis/{api}/requestvalidators", "GetRequestValidators"),
        ("GET", "/restapis/{api}/requestvalidators/{v}", "GetRequestValidator"),
        ("PATCH", "/restapis/{api}/requestvalidators/{v}", "UpdateRequestValidator"),
        ("DELETE", "/restapis/{api}/requestvalidators/{v}", "DeleteRequestValidator"),
        ("PUT", "/restapis/{api}/gatewayresponses/{type}", "PutGatewayResponse"),
        ("GET", "/restapis/{api}/gatewayresponses", "GetGatewayResponses"),
        ("GET", "/restapis/{api}/gatewayresponses/{type}", "GetGatewayResponse"),
        ("DELETE", "/restapis/{api}/gatewayresponses/{type}", "DeleteGatewayResponse"),
        ("PUT", "/tags/{arn+}", "TagResource"),
        ("GET", "/tags/{arn+}", "GetTags"),
        ("DELETE", "/tags/{arn+}", "UntagResource"),
    ],
}


def _compile(template: str) -> re.Pattern:
    def part(m: re.Match) -> str:
        name = m.group(1)
        if name.endswith("+"):
            return f"(?P<{name[:-1]}>.+)"
        return f"(?P<{name}>{_SEG})"

    return re.compile("^" + re.sub(r"\{([a-z+]+)\}", part, template) + "$")


COMPILED_ROUTES = {
    service: [(method, _compile(path), op) for method, path, op in routes]
    for service, routes in REST_ROUTES.items()
}


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"


@dataclass
class Call:
    """What the proxy knows of one AWS call."""

    service: str | None  # None: no SigV4 auth (not an AWS call)
    operation: str
    access_key: str = ""
    region: str = ""
    params: dict = field(default_factory=dict)  # path parameters of REST operations
    auth: str = ""  # the Authorization scheme and credential scope: no key id, no signature

    @property
    def key(self) -> str:
        return f"{self.service}.{self.operation}"


def identify(req: Request) -> Call:
    auth = req.header("Authorization") or ""
    match = CREDENTIAL.search(auth)
    if not match:
        query = parse_qs(urlsplit(req.target).query)
        cred = query.get("X-Amz-Credential", [""])[0]
        match = CREDENTIAL.search("Credential=" + cred) if cred else None
    path = req.path
    if not match:
        return Call(None, f"{req.method} {path}")
    access_key, date, region, service = match.groups()
    scheme = auth.split(" ", 1)[0] if auth else "presigned"
    call = Call(service, f"{req.method} {path}", access_key, region,
                auth=f"{scheme} {date}/{region}/{service}/aws4_request")
    target = req.header("X-Amz-Target")
    if target:
        call.operation = target.rsplit(".", 1)[-1]
        return call
    ctype = (req.header("Content-Type") or "").lower()
    if "x-www-form-urlencoded" in ctype or service in ("iam", "sts"):
        form = parse_qs(req.body.decode("utf-8", "replace"))
        action = form.get("Action", [None])[0] or parse_qs(urlsplit(req.target).query).get(
            "Action", [None])[0]
        if action:
            call.operation = action
            return call
    for method, pattern, op in COMPILED_ROUTES.get(service, []):
        if method != req.method:
            continue
        m = pattern.match(path)
        if m:
            call.operation = op
            call.params = {k: unquote(v) for k, v in m.groupdict().items()}
            return call
    return call


# Operations that only read, by the prefix AWS names them with (stepgate's
# calls::is_mutating says the same); STS's change nothing either.
READS = ("Get", "List", "Describe", "TestInvoke", "FilterLogEvents")


def is_mutating(call: Call) -> bool:
    if call.service == "sts":
        return False
    if " " in call.operation:  # a REST call no route names: its method says
        return call.operation.split(" ", 1)[0] not in ("GET", "HEAD")
    return not call.operation.startswith(READS)


def form_field(req: Request, name: str) -> str | None:
    return parse_qs(req.body.decode("utf-8", "replace")).get(name, [None])[0]


def json_body(data: bytes) -> dict:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def role_name(arn: str | None) -> str | None:
    """arn:aws:iam::123456789012:role/path/name -> name."""
    if not arn or ":role/" not in arn:
        return None
    return arn.split(":role/", 1)[1].rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------------
# Configuration and state
# ---------------------------------------------------------------------------------------------

# API Gateway control-plane quotas per account and region (seconds between accepted calls).
QUOTA_INTERVALS = {
    ("CreateRestApi", "regional"): 3.0,
    ("CreateRestApi", "edge"): 30.0,
    ("CreateDeployment", ""): 5.0,
    ("DeleteRestApi", ""): 30.0,
}
PROPAGATION_OPERATIONS = {
    "apigateway.UpdateAccount",
    "lambda.CreateFunction", "lambda.UpdateFunctionConfiguration",
    "states.CreateStateMachine", "states.UpdateStateMachine",
}
QUOTA_OPERATIONS = {"apigateway.CreateRestApi", "apigateway.CreateDeployment",
                    "apigateway.DeleteRestApi"}
CONFLICT_OPERATIONS = {"apigateway.CreateResource", "apigateway.PutMethod",
                       "apigateway.CreateStage"}
ROLE_CHANGES = {"CreateRole", "PutRolePolicy", "UpdateAssumeRolePolicy", "AttachRolePolicy"}


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    rate: float = 0.1
    faults: list[str] = field(default_factory=lambda: list(FAULTS))
    seed: int = 0
    latency_ms: float = 0.0
    propagation_seconds: float = 2.0
    quota_scale: float = 1.0
    force: list[dict] = field(default_factory=list)
    hang_after: int | None = None
    hang_after_mutating: int | None = None

    def as_json(self) -> dict:
        return {
            "rate": self.rate, "faults": self.faults, "seed": self.seed,
            "latency_ms": self.latency_ms, "propagation_seconds": self.propagation_seconds,
            "quota_scale": self.quota_scale, "force": [dict(r) for r in self.force],
            "hang_after": self.hang_after, "hang_after_mutating": self.hang_after_mutating,
        }

    def update(self, changes: dict) -> None:
        """Validates all of `changes` first, then applies them (all or nothing)."""
        if not isinstance(changes, dict):
            raise ConfigError("the body must be a JSON object")
        new = {}
        for key, value in changes.items():
            if key == "rate":
                new[key] = _number(key, value, 0.0, 1.0)
            elif key in ("latency_ms", "propagation_seconds", "quota_scale"):
                new[key] = _number(key, value, 0.0, None)
            elif key == "seed":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ConfigError("seed must be an integer")
                new[key] = value
            elif key == "faults":
                new[key] = parse_faults(value)
            elif key == "force":
                new[key] = parse_force(value)
            elif key in ("hang_after", "hang_after_mutating"):
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                          or value < 1):
                    raise ConfigError(f"{key} must be a positive integer or null")
                new[key] = value
            else:
                raise ConfigError(f"unknown setting {key!r}")
        for key, value in new.items():
            setattr(self, key, value)


def _number(name: str, value, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number")
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be in [{low}, {high if high is not None else 'inf'}]")
    return float(value)


def parse_faults(value) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("faults must be a list of fault names")
    names = [v.strip() for v in value]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ConfigError(f"unknown fault(s) {unknown}; known: {list(FAULTS)}")
    return [f for f in FAULTS if f in names]


def parse_force(value) -> list[dict]:
    if not isinstance(value, list):
        raise ConfigError("force must be a list")
    rules = []
    for rule in value:
        if not isinstance(rule, dict):
            raise ConfigError("each force rule must be an object")
        extra = set(rule) - {"operation", "fault", "count", "variant"}
        if extra:
            raise ConfigError(f"unknown force rule key(s) {sorted(extra)}")
        op, fault = rule.get("operation"), rule.get("fault")
        count = rule.get("count", 1)
        if not isinstance(op, str) or "." not in op:
            raise ConfigError("force.operation must look like 'iam.CreateRole'")
        service = op.split(".", 1)[0]
        if fault not in FAULTS:
            raise ConfigError(f"force.fault must be one of {list(FAULTS)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError("force.count must be a positive integer")
        if fault in ("throttle", "5xx") and service not in PROTOCOL:
            raise ConfigError(f"no {fault} error is known for service {service!r}")
        allowed = {"propagation": PROPAGATION_OPERATIONS, "quota": QUOTA_OPERATIONS,
                   "conflict": CONFLICT_OPERATIONS, "denied": {"sts.AssumeRole"}}.get(fault)
        if allowed is not None and op not in allowed:
            raise ConfigError(f"{fault} applies only to {sorted(allowed)}")
        variant = rule.get("variant")
        if variant is not None and not (fault == "propagation" and service == "states"
                                        and variant in PROPAGATION_VARIANTS):
            raise ConfigError("variant is only for states propagation: "
                              f"one of {list(PROPAGATION_VARIANTS)}")
        out = {"operation": op, "fault": fault, "count": count}
        if variant is not None:
            out["variant"] = variant
        rules.append(out)
    return rules


class State:
    """Counters and what the proxy learned from upstream answers."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.arrivals = 0  # AWS calls received, in arrival order (hang_after counts these)
        self.calls = 0  # AWS calls reported by /_fault/stats (see README: hang_after)
        self.mutating_arrivals = 0  # the same, of calls that can change something
        self.mutating_calls = 0  # counted as `calls` is
        self.hung = 0
        self.unsigned = 0
        self.by_operation: dict[str, int] = {}
        self.injected = {f: 0 for f in FAULTS}
        self.injected_by_operation: dict[str, dict[str, int]] = {}
        # propagation: role name -> monotonic time of its last successful change
        self.role_changed: dict[str, float] = {}
        self.sfn_propagation_answers = 0
        # quota: (access key, region, operation, kind) -> monotonic time of last accepted call
        self.quota_accepted: dict[tuple, float] = {}
        # conflict: api id -> resource id -> (parent id, path part); api -> resource -> methods
        self.resources: dict[str, dict[str, tuple[str | None, str | None]]] = {}
        self.methods: dict[str, dict[str, set[str]]] = {}

    def count_injected(self, key: str, fault: str) -> None:
        self.injected[fault] += 1
        per = self.injected_by_operation.setdefault(key, {})
        per[fault] = per.get(fault, 0) + 1

    def stats(self) -> dict:
        return {
            "calls": self.calls,
            "mutating_calls": self.mutating_calls,
            "by_operation": dict(sorted(self.by_operation.items())),
            "injected": dict(self.injected),
            "injected_by_operation": {k: dict(v) for k, v in
                                      sorted(self.injected_by_operation.items())},
            "hung": self.hung,
            "unsigned": self.unsigned,
        }

    # -- conflict bookkeeping ---------------------------------------------------------------

    def learn_resource(self, api: str, item: dict) -> None:
        rid = item.get("id")
        if not isinstance(rid, str):
            return
        self.resources.setdefault(api, {})[rid] = (item.get("parentId"), item.get("pathPart"))
        methods = item.get("resourceMethods")
        if isinstance(methods, dict):
            self.methods.setdefault(api, {})[rid] = set(methods)

    def forget_resource(self, api: str, rid: str) -> None:
        resources = self.resources.get(api, {})
        doomed, frontier = {rid}, [rid]
        while frontier:  # the resource and everything under it
            parent = frontier.pop()
            for child, (p, _) in resources.items():
                if p == parent and child not in doomed:
                    doomed.add(child)
                    frontier.append(child)
        for r in doomed:
            resources.pop(r, None)
            self.methods.get(api, {}).pop(r, None)

    def sibling_named(self, api: str, parent: str, path_part: str) -> bool:
        return any(p == parent and part == path_part
                   for p, part in self.resources.get(api, {}).values())

    def forget_api(self, api: str) -> None:
        self.resources.pop(api, None)
        self.methods.pop(api, None)


# ---------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "expect", "content-length"}


class HttpError(Exception):
    pass


async def read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    """Reads a start line and headers; None on a clean EOF before any byte."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise HttpError("connection closed inside a message head") from e
    except asyncio.LimitOverrunError as e:
        raise HttpError("message head too large") from e
    lines = raw.decode("iso-8859-1").split("\r\n")
    while lines and lines[0] == "":  # tolerate stray CRLF between messages
        lines.pop(0)
    if not lines:
        return None
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def get_header(headers: list[tuple[str, str]], name: str) -> str | None:
    lname = name.lower()
    for key, value in headers:
        if key.lower() == lname:
            return value
    return None


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def read_request(reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> Request | None:
    head = await read_head(reader)
    if head is None:
        return None
    start, headers = head
    parts = start.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise HttpError(f"bad request line {start!r}")
    method, target, version = parts
    expect = (get_header(headers, "Expect") or "").lower()
    te = (get_header(headers, "Transfer-Encoding") or "").lower()
    length = get_header(headers, "Content-Length")
    if expect == "100-continue" and version == "HTTP/1.1" and (te or (length and length != "0")):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if "chunked" in te:
        body = await read_chunked(reader)
    elif length is not None:
        body = await reader.readexactly(int(length))
    else:
        body = b""
    return Request(method, target, version, headers, body)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


async def forward(upstream: tuple[str, int], req: Request) -> Response:
    """One request on a fresh upstream connection (Connection: close); the whole answer."""
    reader, writer = await asyncio.open_connection(*upstream, limit=MAX_HEADER_BYTES)
    try:
        lines = [f"{req.method} {req.target} HTTP/1.1"]
        for name, value in req.headers:
            if name.lower() not in HOP_BY_HOP:
                lines.append(f"{name}: {value}")
        had_body = (req.body or req.header("Content-Length") is not None
                    or req.header("Transfer-Encoding") is not None)
        if had_body:
            lines.append(f"Content-Length: {len(req.body)}")
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1") + req.body)
        await writer.drain()
        while True:
            head = await read_head(reader)
            if head is None:
                raise HttpError("upstream closed without answering")
            start, headers = head
            parts = start.split(" ", 2)
            status = int(parts[1])
            if 100 <= status < 200 and status != 101:
                continue  # interim answer
            break
        reason = parts[2] if len(parts) > 2 else ""
        te = (get_header(headers, "Transfer-Encoding") or "").lower()
        length = get_header(headers, "Content-Length")
        if req.method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in te:
            body = await read_chunked(reader)
        elif length is not None:
            body = await reader.readexactly(int(length))
        else:
            body = await reader.read()  # to EOF
        return Response(status, reason, headers, body)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


def render(status: int, reason: str, headers: list[tuple[str, str]], body: bytes, *,
           keep_alive: bool, head_request: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    upstream_length = None
    for name, value in headers:
        lname = name.lower()
        if lname == "content-length":
            upstream_length = value
        if lname not in HOP_BY_HOP:
            lines.append(f"{name}: {value}")
    if head_request:
        if upstream_length is not None:
            lines.append(f"Content-Length: {upstream_length}")
        body = b""
    elif status not in (204, 304):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1") + body


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Closes with SO_LINGER 0: the peer sees ECONNRESET, not a clean end of stream."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


# ---------------------------------------------------------------------------------------------
# The proxy
# ---------------------------------------------------------------------------------------------


class Proxy:
    def __init__(self, upstream: tuple[str, int], config: Config, log_path: str | None):
        self.upstream = upstream
        self.config = config
        self.state = State()
        self.log = open(log_path, "a", buffering=1, encoding="utf-8") if log_path else None
        self.tasks: set[asyncio.Task] = set()

    # -- connections --------------------------------------------------------------------------

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            while True:
                try:
                    req = await read_request(reader, writer)
                except (HttpError, ValueError, asyncio.IncompleteReadError,
                        asyncio.LimitOverrunError) as e:
                    if not isinstance(e, asyncio.IncompleteReadError):
                        writer.write(render(400, "Bad Request", [("Content-Type", "text/plain")],
                                            f"proxy: {e}\n".encode(), keep_alive=False))
                        await writer.drain()
                    break
                if req is None:
                    break
                if not await self.handle(req, reader, writer):
                    break
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    def keep_alive(self, req: Request) -> bool:
        conn = (req.header("Connection") or "").lower()
        if req.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    async def send(self, writer, req: Request, status: int, reason: str, headers, body) -> bool:
        keep = self.keep_alive(req)
        writer.write(render(status, reason, headers, body, keep_alive=keep,
                            head_request=req.method == "HEAD"))
        await writer.drain()
        return keep

    async def send_reply(self, writer, req: Request, reply: Reply) -> bool:
        headers = [("Date", formatdate(usegmt=True))] + reply.headers
        return await self.send(writer, req, reply.status, REASONS.get(reply.status, ""),
                               headers, reply.body)

    # -- one request --------------------------------------------------------------------------

    async def handle(self, req: Request, reader, writer) -> bool:
        """Answers one request; False when the client connection must end."""
        if req.path.startswith("/_fault/"):
            return await self.control(req, writer)
        call = identify(req)
        if call.service is None:  # not an AWS API call: forwarded untouched, never faulted
            self.state.unsigned += 1
            return await self.pass_through(req, call, writer, fault=None)

        state, config = self.state, self.config
        state.arrivals += 1
        arrival = state.arrivals
        n = state.by_operation.get(call.key, 0)
        state.by_operation[call.key] = n + 1
        mutating = is_mutating(call)
        if mutating:
            state.mutating_arrivals += 1
        hang = (config.hang_after is not None and arrival >= config.hang_after) or (
            config.hang_after_mutating is not None
            and state.mutating_arrivals >= config.hang_after_mutating)
        if not hang:
            state.calls += 1
            state.mutating_calls += mutating
        if config.latency_ms > 0:
            await asyncio.sleep(config.latency_ms / 1000.0)
        if hang:
            return await self.hang(req, call, n, reader, writer)

        fault, variant = self.decide(call, n)
        reply = None
        if fault is None:
            fault, reply = self.stateful(req, call)
        elif fault in ("throttle", "5xx"):
            reply = throttle_error(call.service) if fault == "throttle" else \
                server_error(call.service)
        elif fault in ("propagation", "quota", "conflict"):  # forced
            reply = self.forced_stateful(req, call, fault, variant)
        elif fault == "denied":  # forced only
            reply = denied_error(req, call)

        if fault is not None:
            state.count_injected(call.key, fault)
        if fault == "reset":
            self.write_log(call, n, fault, upstream=None, sent=None)
            reset_connection(writer)
            return False
        if fault == "lost":
            # AWS checks quotas, propagation and conflicts before doing the call; only a call it
            # accepts happens (and counts against the quota), its answer still being lost.
            refused, _ = self.stateful(req, call)
            if refused is not None:
                self.write_log(call, n, fault, upstream=None, sent=None,
                               error=f"refused by {refused} before the answer was lost")
                reset_connection(writer)
                return False
            try:
                resp = await asyncio.wait_for(forward(self.upstream, req), UPSTREAM_TIMEOUT)
            except (OSError, HttpError, ValueError, asyncio.IncompleteReadError,
                    asyncio.TimeoutError) as e:
                self.write_log(call, n, fault, upstream=None, sent=None, error=f"upstream: {e!r}")
                reset_connection(writer)
                return False
            self.learn(req, call, resp)
            self.write_log(call, n, fault, upstream=resp.status, sent=None)
            reset_connection(writer)
            return False
        if reply is not None:
            self.write_log(call, n, fault, upstream=None, sent=reply.status, code=reply.code)
            return await self.send_reply(writer, req, reply)
        return await self.pass_through(req, call, writer, fault=None, n=n)

    def decide(self, call: Call, n: int) -> tuple[str | None, str | None]:
        """A forced fault, else one of the random faults at --rate, else None."""
        config = self.config
        for i, rule in enumerate(config.force):
            if rule["operation"] == call.key:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    del config.force[i]
                return rule["fault"], rule.get("variant")
        enabled = [f for f in RANDOM_FAULTS if f in config.faults]
        if call.service in ("iam", "sts", "lambda", "apigateway", "states", "logs", "ssm") \
                and enabled and config.rate > 0:
            rng = random.Random(f"{config.seed}:{call.key}:{n}")
            if rng.random() < config.rate:
                return rng.choice(enabled), None
        return None, None

    # -- stateful AWS behaviour -----------------------------------------------------------------

    def stateful(self, req: Request, call: Call) -> tuple[str | None, Reply | None]:
        faults = self.config.faults
        if "propagation" in faults and call.key in PROPAGATION_OPERATIONS:
            reply = self.propagation(req, call, forced=False, variant=None)
            if reply is not None:
                return "propagation", reply
        if "quota" in faults and call.key in QUOTA_OPERATIONS:
            reply = self.quota(req, call, forced=False)
            if reply is not None:
                return "quota", reply
        if "conflict" in faults and call.key in CONFLICT_OPERATIONS:
            reply = self.conflict(req, call, forced=False)
            if reply is not None:
                return "conflict", reply
        return None, None

    def forced_stateful(self, req: Request, call: Call, fault: str, variant: str | None) -> Reply:
        if fault == "propagation":
            return self.propagation(req, call, forced=True, variant=variant)
        if fault == "quota":
            return self.quota(req, call, forced=True)
        return self.conflict(req, call, forced=True)

    def propagation(self, req: Request, call: Call, forced: bool,
                    variant: str | None) -> Reply | None:
        body = json_body(req.body)
        if call.service == "apigateway":
            if not forced:
                ops = body.get("patchOperations") or []
                arns = [op.get("value") for op in ops if isinstance(op, dict)
                        and op.get("path") == "/cloudwatchRoleArn"]
                if not any(self.propagating(role_name(arn)) for arn in arns):
                    return None
            return propagation_error("apigateway", "assume")
        if call.service == "lambda":
            if not forced:
                name = role_name(body.get("Role"))
                if not self.propagating(name):
                    return None
            return propagation_error("lambda", "assume")
        logging_destinations = bool((body.get("loggingConfiguration") or {}).get("destinations"))
        if not forced:
            name = role_name(body.get("roleArn"))
            if not self.propagating(name):
                return None
        if variant is None:
            # Alternates deterministically; the log-destination check only exists when the
            # request configures a log destination.
            k = self.state.sfn_propagation_answers
            self.state.sfn_propagation_answers += 1
            variant = "log-destination" if (k % 2 == 1 and logging_destinations) else "assume"
        return propagation_error("states", variant)

    def propagating(self, name: str | None) -> bool:
        if not name or name not in self.state.role_changed:
            return False
        elapsed = time.monotonic() - self.state.role_changed[name]
        return elapsed < self.config.propagation_seconds

    def quota(self, req: Request, call: Call, forced: bool) -> Reply | None:
        kind = ""
        if call.operation == "CreateRestApi":
            types = ((json_body(req.body).get("endpointConfiguration") or {}).get("types")
                     or ["EDGE"])
            kind = "edge" if "EDGE" in types else "regional"
        interval = QUOTA_INTERVALS[(call.operation, kind)] * self.config.quota_scale
        bucket = (call.access_key, call.region, call.operation, kind)
        now = time.monotonic()
        if forced:
            return quota_error(math.ceil(interval))
        last = self.state.quota_accepted.get(bucket)
        if last is not None and now - last < interval:
            return quota_error(math.ceil(interval - (now - last)))
        self.state.quota_accepted[bucket] = now
        return None

    def conflict(self, req: Request, call: Call, forced: bool) -> Reply | None:
        api = call.params.get("api", "")
        if call.operation == "CreateResource":
            part = json_body(req.body).get("pathPart")
            if forced or (isinstance(part, str) and
                          self.state.sibling_named(api, call.params.get("parent", ""), part)):
                return conflict_error(
                    f"Another resource with the same parent already has this name: {part}")
        elif call.operation == "PutMethod":
            method = call.params.get("m", "")
            if forced or method in self.state.methods.get(api, {}).get(call.params["res"], ()):
                return conflict_error("Method already exists for this resource")
        elif call.operation == "CreateStage" and forced:
            # LocalStack 4.4 already refuses a duplicate stage with AWS's 409 (README).
            return conflict_error("Stage already exists")
        return None

    def learn(self, req: Request, call: Call, resp: Response) -> None:
        """Updates what the proxy knows from an upstream answer (also one never delivered)."""
        if not 200 <= resp.status < 300:
            return
        state = self.state
        if call.service == "iam" and call.operation in ROLE_CHANGES:
            name = form_field(req, "RoleName")
            if name:
                state.role_changed[name] = time.monotonic()
            return
        if call.service != "apigateway":
            return
        api = call.params.get("api", "")
        op = call.operation
        if op in ("CreateResource", "GetResource", "UpdateResource"):
            item = json_body(resp.body)
            if op == "UpdateResource" and isinstance(item.get("id"), str):
                state.resources.get(api, {}).pop(item["id"], None)
            state.learn_resource(api, item)
        elif op == "GetResources":
            items = json_body(resp.body).get("item") or []
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    state.learn_resource(api, item)
        elif op in ("PutMethod", "GetMethod"):
            state.methods.setdefault(api, {}).setdefault(call.params["res"], set()).add(
                call.params["m"])
        elif op == "DeleteMethod":
            state.methods.get(api, {}).get(call.params["res"], set()).discard(call.params["m"])
        elif op == "DeleteResource":
            state.forget_resource(api, call.params["res"])
        elif op == "DeleteRestApi":
            state.forget_api(api)

    # -- forwarding ---------------------------------------------------------------------------

    async def pass_through(self, req: Request, call: Call, writer, fault, n: int = 0) -> bool:
        try:
            resp = await asyncio.wait_for(forward(self.upstream, req), UPSTREAM_TIMEOUT)
        except (OSError, HttpError, ValueError, asyncio.IncompleteReadError,
                asyncio.TimeoutError) as e:
            self.write_log(call, n, fault, upstream=None, sent=502, error=f"upstream: {e!r}")
            msg = f"fault proxy: upstream {self.upstream[0]}:{self.upstream[1]} failed: {e!r}\n"
            return await self.send(writer, req, 502, "Bad Gateway",
                                   [("Content-Type", "text/plain")], msg.encode())
        if call.service is not None:
            self.learn(req, call, resp)
        self.write_log(call, n, fault, upstream=resp.status, sent=resp.status)
        return await self.send(writer, req, resp.status, resp.reason, resp.headers, resp.body)

    async def hang(self, req: Request, call: Call, n: int, reader, writer) -> bool:
        """Forwards the call so that it really happens, then never answers."""
        status, error = None, None
        try:
            resp = await asyncio.wait_for(forward(self.upstream, req), UPSTREAM_TIMEOUT)
            status = resp.status
            self.learn(req, call, resp)
        except (OSError, HttpError, ValueError, asyncio.IncompleteReadError,
                asyncio.TimeoutError) as e:
            error = f"upstream: {e!r}"
        self.state.calls += 1  # only now: calls >= K means the K-th call reached upstream
        self.state.mutating_calls += is_mutating(call)
        self.state.hung += 1
        self.write_log(call, n, "hang", upstream=status, sent=None, error=error)
        try:
            while await reader.read(65536):  # hold the connection until the client goes
                pass
        except (ConnectionError, OSError):
            pass
        return False

    # -- control API ----------------------------------------------------------------------------

    async def control(self, req: Request, writer) -> bool:
        path = req.path.rstrip("/")
        status, payload = 200, None
        if path == "/_fault/stats" and req.method == "GET":
            payload = self.state.stats()
        elif path == "/_fault/config" and req.method == "GET":
            payload = self.config.as_json()
        elif path == "/_fault/config" and req.method in ("POST", "PUT", "PATCH"):
            try:
                self.config.update(json.loads(req.body or b"{}"))
                payload = self.config.as_json()
            except (ConfigError, ValueError) as e:
                status, payload = 400, {"error": str(e)}
        elif path == "/_fault/reset" and req.method == "POST":
            self.state.reset()
            payload = self.state.stats()
        else:
            status, payload = 404, {"error": f"no control endpoint {req.method} {path}",
                                    "endpoints": ["GET /_fault/stats", "GET|POST /_fault/config",
                                                  "POST /_fault/reset"]}
        body = (json.dumps(payload, indent=1) + "\n").encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        return await self.send(writer, req, status, reason,
                               [("Content-Type", "application/json")], body)

    def write_log(self, call: Call, n: int, fault: str | None, *, upstream: int | None,
                  sent: int | None, code: str | None = None, error: str | None = None) -> None:
        """One JSON line: `status` is the upstream (emulator) status, null when the call was
        not forwarded; `sent` is what the client received, null for reset, lost and hang."""
        if self.log is None:
            return
        entry = {"time": round(time.time(), 3), "service": call.service,
                 "operation": call.operation, "n": n if call.service else None,
                 "fault": fault, "status": upstream, "sent": sent}
        if call.auth:
            entry["auth"] = call.auth
        if code:
            entry["code"] = code
        if error:
            entry["error"] = error
        self.log.write(json.dumps(entry) + "\n")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"proxy.py: {what} must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="emulator URL, http://127.0.0.1:4566")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default 127.0.0.1:0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.1,
                        help="probability of a random fault per AWS call (default 0.1)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"enabled faults (default {','.join(FAULTS)})")
    parser.add_argument("--propagation-seconds", type=float, default=2.0)
    parser.add_argument("--quota-scale", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--port-file")
    parser.add_argument("--log", help="append one JSON line per forwarded or answered request")
    args = parser.parse_args(argv)

    url = urlsplit(args.upstream)
    if url.scheme != "http" or not url.hostname:
        parser.error("--upstream must be an http:// URL")
    upstream = (url.hostname, url.port or 80)
    host, port = parse_hostport(args.listen, "--listen")
    config = Config()
    try:
        config.update({"rate": args.rate, "seed": args.seed, "latency_ms": args.latency_ms,
                       "propagation_seconds": args.propagation_seconds,
                       "quota_scale": args.quota_scale, "faults": args.faults})
    except ConfigError as e:
        parser.error(str(e))
    return asyncio.run(serve(Proxy(upstream, config, args.log), host, port, args.port_file))


async def serve(proxy: Proxy, host: str, port: int, port_file: str | None) -> int:
    server = await asyncio.start_server(proxy.client, host, port, limit=MAX_HEADER_BYTES,
                                        reuse_address=True)
    bound = server.sockets[0].getsockname()
    url = f"http://{bound[0]}:{bound[1]}"
    if port_file:
        tmp = f"{port_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(url + "\n")
        os.replace(tmp, port_file)
    print(url, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for task in list(proxy.tasks):
        task.cancel()
    await asyncio.gather(*proxy.tasks, return_exceptions=True)
    await server.wait_closed()
    if proxy.log:
        proxy.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
