"""LocalStack plugin for stepgate's tests: runs Node.js Lambda handlers as local `node` processes.

LocalStack's stock Lambda executor starts a Docker container per execution environment; the test
machines have no Docker, so this package registers another runtime executor (selected with
``LAMBDA_RUNTIME_EXECUTOR=stepgate-node``) that speaks the same callback protocol from a plain
child process listening on 127.0.0.1.
"""
