"""LocalStack start hook that keeps the gateway on the GATEWAY_LISTEN host.

LocalStack 4.4's default (twisted) gateway server drops the host of IPv4 GATEWAY_LISTEN entries
("TODO: interface = host?" in ``localstack/runtime/server/twisted.py``) and listens on 0.0.0.0.
The emulator must only ever be reachable on 127.0.0.1, and the hypercorn server, which does bind
the host, breaks Lambda's internal S3 calls. So before the gateway starts (on_infra_start hooks
run right before it), swap in TCP4 endpoints that bind the configured host.
"""

import types

from localstack.runtime import hooks


@hooks.on_infra_start()
def stepgate_bind_gateway_to_listen_host():
    from twisted.internet import endpoints

    from localstack import config
    from localstack.runtime.server import twisted as twisted_server

    hosts = {listen.port: listen.host for listen in config.GATEWAY_LISTEN}

    def tcp4_endpoint(reactor, port, *args, **kwargs):
        kwargs.setdefault("interface", hosts.get(port, ""))
        return endpoints.TCP4ServerEndpoint(reactor, port, *args, **kwargs)

    twisted_server.endpoints = types.SimpleNamespace(
        TCP4ServerEndpoint=tcp4_endpoint, TCP6ServerEndpoint=endpoints.TCP6ServerEndpoint
    )
