'use strict';
// The Node.js side of the stepgate-node LocalStack executor: one process per execution
// environment. It loads the handler named by _HANDLER from LAMBDA_TASK_ROOT, reports ready to
// LocalStack with the loopback port it listens on, and for each POST /invoke runs the handler and
// posts the logs, then the result (or the error), back to LOCALSTACK_RUNTIME_ENDPOINT.
// Timeouts are enforced by the Python side, which kills this process.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const util = require('node:util');
const { pathToFileURL } = require('node:url');

const env = process.env;
const runtimeEndpoint = env.LOCALSTACK_RUNTIME_ENDPOINT;
const runtimeId = env.LOCALSTACK_RUNTIME_ID;
const taskRoot = env.LAMBDA_TASK_ROOT || process.cwd();
const timeoutMs = Number(env.AWS_LAMBDA_FUNCTION_TIMEOUT || 3) * 1000;

// stdin is a pipe from LocalStack that it never writes to: EOF means the emulator is gone.
process.stdin.on('end', () => process.exit(0)).on('error', () => process.exit(0)).resume();

// --- logs: console output in the Lambda format, kept for the invocation's log callback ----------
let logs = '';
let currentId; // request id of the running invocation (undefined during init, as on AWS)

function writeLog(level, args) {
  const line = `${new Date().toISOString()}\t${currentId}\t${level}\t${util.format(...args)}\n`;
  logs += line;
  process.stdout.write(line);
}
for (const [name, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'],
  ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE']]) {
  console[name] = (...args) => writeLog(level, args);
}

// --- talking to LocalStack -----------------------------------------------------------------------
function post(suffix, body) {
  const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve) => {
    const req = http.request(runtimeEndpoint + suffix, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
    }, (res) => res.resume().on('end', resolve));
    req.on('error', (err) => {
      process.stderr.write(`stepgate-node: POST ${suffix} failed: ${err}\n`);
      resolve();
    });
    req.end(data);
  });
}

// The error payload shape of the AWS Node.js runtime.
function toError(err, errorType) {
  if (err instanceof Error) {
    return {
      errorType: errorType || err.name || 'Error',
      errorMessage: err.message,
      trace: String(err.stack || '').split('\n'),
    };
  }
  const message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  return { errorType: errorType || typeof err, errorMessage: message, trace: [] };
}

function namedError(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

// --- the handler ---------------------------------------------------------------------------------
// "dir/file.export" (export may be nested: "file.a.b"); file is .js, .mjs or .cjs.
async function loadHandler(spec) {
  const dot = spec.indexOf('.', spec.lastIndexOf('/') + 1);
  if (dot < 0) throw namedError('Runtime.MalformedHandlerName', `Bad handler ${spec}`);
  const base = path.resolve(taskRoot, spec.slice(0, dot));
  const exportPath = spec.slice(dot + 1).split('.');
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!file) {
    throw namedError('Runtime.ImportModuleError', `Error: Cannot find module '${path.basename(base)}'`);
  }
  let mod;
  try {
    if (file.endsWith('.mjs')) {
      mod = await import(pathToFileURL(file).href);
    } else {
      try {
        mod = require(file);
      } catch (err) {
        if (err.code !== 'ERR_REQUIRE_ESM') throw err; // a .js file in a "type": "module" package
        mod = await import(pathToFileURL(file).href);
      }
    }
  } catch (err) {
    if (err instanceof SyntaxError) throw namedError('Runtime.UserCodeSyntaxError', String(err));
    throw err;
  }
  let fn = mod;
  for (const key of exportPath) fn = fn == null ? undefined : fn[key];
  if (typeof fn !== 'function') {
    throw namedError('Runtime.HandlerNotFound',
      `${path.basename(base)}.${exportPath.join('.')} is undefined or not exported`);
  }
  return fn;
}

// Async handlers settle through their promise, callback-style ones through the callback (or the
// legacy context.succeed/fail/done). A sync handler's return value is ignored, as on AWS.
function runHandler(fn, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (err, data) => (err ? reject(err) : resolve(data));
    Object.assign(context, { done: callback, succeed: resolve, fail: reject });
    const result = fn(event, context, callback);
    if (result && typeof result.then === 'function') result.then(resolve, reject);
    else if (fn.length < 3) resolve(null);
  });
}

function makeContext(requestId, invokedArn, deadline) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: invokedArn,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

async function finish(requestId, kind, body, started) {
  const ms = performance.now() - started;
  const memory = Math.round(process.memoryUsage().rss / 1048576);
  logs += `END RequestId: ${requestId}\nREPORT RequestId: ${requestId}\tDuration: ${ms.toFixed(2)} ms\t`
    + `Billed Duration: ${Math.max(1, Math.ceil(ms))} ms\tMemory Size: ${env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE} MB\t`
    + `Max Memory Used: ${memory} MB\t\n`;
  const sent = logs;
  logs = '';
  currentId = undefined;
  await post(`/invocations/${requestId}/logs`, { logs: sent });
  await post(`/invocations/${requestId}/${kind}`, body);
}

let handler;
let started = 0;

async function invoke(request) {
  const requestId = request['invoke-id'];
  started = performance.now();
  currentId = requestId;
  env._X_AMZN_TRACE_ID = request['trace-id'] || '';
  logs += `START RequestId: ${requestId} Version: ${env.AWS_LAMBDA_FUNCTION_VERSION}\n`;
  let kind = 'response';
  let body;
  try {
    const event = request.payload ? JSON.parse(request.payload) : {};
    const context = makeContext(requestId, request['invoked-function-arn'], Date.now() + timeoutMs);
    const result = await runHandler(handler, event, context);
    body = JSON.stringify(result === undefined ? null : result);
  } catch (err) {
    const error = toError(err);
    writeLog('ERROR', ['Invoke Error', JSON.stringify(error)]);
    kind = 'error';
    body = JSON.stringify(error);
  }
  await finish(requestId, kind, body, started);
}

// Errors escaping the handler (a throw in a timer, an unawaited rejection) end the runtime, as on
// AWS; the running invocation gets them as its error. The executor starts a new runtime next time.
async function fatal(err, errorType) {
  const error = toError(err, errorType);
  writeLog('ERROR', ['Uncaught Exception', JSON.stringify(error)]);
  if (currentId) await finish(currentId, 'error', JSON.stringify(error), started);
  process.exit(1);
}
process.on('uncaughtException', (err) => fatal(err));
process.on('unhandledRejection', (reason) => fatal(reason, 'Runtime.UnhandledPromiseRejection'));

async function main() {
  try {
    handler = await loadHandler(env._HANDLER || 'index.handler');
  } catch (err) {
    const error = toError(err);
    writeLog('ERROR', ['Init Error', JSON.stringify(error)]);
    await post(`/status/${runtimeId}/error`, error);
    process.exit(1);
  }
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/invoke') {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk)).on('end', () => {
      res.writeHead(200).end('OK'); // accepted; the outcome goes back through the callbacks
      invoke(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    });
  });
  server.listen(0, '127.0.0.1', () => post(`/status/${runtimeId}/ready`, { port: server.address().port }));
}

main();
