#!/usr/bin/env node
// The OrderProcessor stack as a CDK app: the CDK peer of stepgate that tests/bench/peers.py
// measures. Plain JavaScript, so no tsc step. It reads the same sources as stepgate from
// BENCH_SRC (lambdas/, definitions/, policies/): the policies and the definition are the
// repository's files with their placeholders filled by CloudFormation references. Names follow
// stepgate's pattern with BENCH_BASE standing for `{stack}-{stage}`; the CloudFormation stack
// is named BENCH_BASE too.
//
//   BENCH_BASE=cdk-r0-dev BENCH_SRC=/path/to/copy cdk deploy --app "node app.js"
'use strict';

const fs = require('fs');
const path = require('path');
const cdk = require('aws-cdk-lib');
const { aws_apigateway: apigw, aws_iam: iam, aws_lambda: lambda, aws_logs: logs } = cdk;
const { aws_stepfunctions: sfn } = cdk;

const base = process.env.BENCH_BASE;
const src = process.env.BENCH_SRC;
if (!base || !src) throw new Error('set BENCH_BASE and BENCH_SRC');

const app = new cdk.App();
const stack = new cdk.Stack(app, 'OrderProcessor', { stackName: base });
const { PARTITION, REGION, ACCOUNT_ID } = cdk.Aws;
const FUNCTIONS = ['completeOrder', 'cancelOrder'];

const names = {
  role: (p) => `${base}-${REGION}-${p}`,
  fn: (key) => `${base}-${key}`,
  fnLog: (key) => `/aws/lambda/${base}-${key}`,
  sm: `${base}-OrderProcessor`,
  smLog: `/aws/vendedlogs/states/${base}-OrderProcessor`,
  api: `${base}-OrderProcessorAPI`,
};
const logGroupArn = (name) => `arn:${PARTITION}:logs:${REGION}:${ACCOUNT_ID}:log-group:${name}`;
const fnArn = (key) => `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT_ID}:function:${names.fn(key)}`;
const smArn = `arn:${PARTITION}:states:${REGION}:${ACCOUNT_ID}:stateMachine:${names.sm}`;

// The placeholders of policies/ and definitions/, as stepgate fills them in.
const values = {
  completeOrderArn: fnArn('completeOrder'),
  cancelOrderArn: fnArn('cancelOrder'),
  completeOrderLogGroupArn: logGroupArn(names.fnLog('completeOrder')),
  cancelOrderLogGroupArn: logGroupArn(names.fnLog('cancelOrder')),
  stateMachineArn: smArn,
  stateMachineLogGroupArn: logGroupArn(names.smLog),
  region: REGION,
  account: ACCOUNT_ID,
  partition: PARTITION,
};
const render = (text) => text.replace(/\$\{(\w+)\}/g, (m, key) => values[key] ?? m);
const policy = (file) => JSON.parse(render(fs.readFileSync(path.join(src, 'policies', file), 'utf8')));

const logGroup = (id, name) =>
  new logs.LogGroup(stack, id, {
    logGroupName: name,
    retention: logs.RetentionDays.TWO_WEEKS,
    removalPolicy: cdk.RemovalPolicy.DESTROY,
  });

// Roles with the repository's trust and inline permission policies.
const roles = {};
for (const p of ['lambda', 'states', 'apigateway']) {
  roles[p] = new iam.CfnRole(stack, `${p}Role`, {
    roleName: names.role(p),
    assumeRolePolicyDocument: policy(`${p}-trust.json`),
    policies: [{ policyName: `${base}-${p}`, policyDocument: policy(`${p}-permissions.json`) }],
  });
}
const refs = {};
const roleRef = (p) =>
  (refs[p] ??= iam.Role.fromRoleArn(stack, `${p}RoleRef`, roles[p].attrArn, { mutable: false }));

const functions = {};
for (const key of FUNCTIONS) {
  const group = logGroup(`${key}LogGroup`, names.fnLog(key));
  functions[key] = new lambda.Function(stack, key, {
    functionName: names.fn(key),
    code: lambda.Code.fromAsset(path.join(src, 'lambdas', key), { exclude: ['*.test.js'] }),
    handler: `index.${key}`,
    runtime: lambda.Runtime.NODEJS_22_X,
    memorySize: 128,
    timeout: cdk.Duration.seconds(10),
    role: roleRef('lambda'),
  });
  functions[key].node.addDependency(group);
}

const smLogGroup = logGroup('stateMachineLogGroup', names.smLog);
const stateMachine = new sfn.CfnStateMachine(stack, 'OrderProcessor', {
  stateMachineName: names.sm,
  stateMachineType: 'STANDARD',
  definitionString: fs.readFileSync(path.join(src, 'definitions', 'OrderProcessor.asl.json'), 'utf8'),
  definitionSubstitutions: Object.fromEntries(FUNCTIONS.map((k) => [`${k}Arn`, functions[k].functionArn])),
  roleArn: roles.states.attrArn,
  loggingConfiguration: {
    level: 'ALL',
    includeExecutionData: true,
    destinations: [{ cloudWatchLogsLogGroup: { logGroupArn: smLogGroup.logGroupArn } }],
  },
});

// POST /orderprocess starts an execution of the pinned state machine (the client sends only the
// order); OPTIONS answers the CORS preflight. The same methods, integrations and templates as
// stepgate's.
const api = new apigw.RestApi(stack, 'Api', {
  restApiName: names.api,
  endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
  deployOptions: { stageName: 'dev' },
  cloudWatchRole: false,
});
const resource = api.root.addResource('orderprocess');
const ORIGIN = 'method.response.header.Access-Control-Allow-Origin';
const HEADERS = 'method.response.header.Access-Control-Allow-Headers';
const METHODS = 'method.response.header.Access-Control-Allow-Methods';
const template = `{
  "stateMachineArn": "${stateMachine.attrArn}",
  "input": "$util.escapeJavaScript($input.json('$')).replaceAll("\\\\'","'")"
}`;
resource.addMethod(
  'POST',
  new apigw.AwsIntegration({
    service: 'states',
    action: 'StartExecution',
    integrationHttpMethod: 'POST',
    options: {
      credentialsRole: roleRef('apigateway'),
      passthroughBehavior: apigw.PassthroughBehavior.NEVER,
      requestTemplates: { 'application/json': template },
      integrationResponses: [
        { statusCode: '200', responseParameters: { [ORIGIN]: "'*'" } },
        { statusCode: '400', selectionPattern: '4\\d{2}', responseParameters: { [ORIGIN]: "'*'" } },
      ],
    },
  }),
  {
    methodResponses: ['200', '400'].map((statusCode) => ({
      statusCode,
      responseParameters: { [ORIGIN]: false },
      responseModels: { 'application/json': apigw.Model.EMPTY_MODEL },
    })),
  },
);
resource.addMethod(
  'OPTIONS',
  new apigw.MockIntegration({
    passthroughBehavior: apigw.PassthroughBehavior.WHEN_NO_MATCH,
    requestTemplates: { 'application/json': '{"statusCode": 200}' },
    integrationResponses: [
      {
        statusCode: '200',
        responseParameters: {
          [HEADERS]: "'Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token'",
          [METHODS]: "'OPTIONS,POST'",
          [ORIGIN]: "'*'",
        },
      },
    ],
  }),
  {
    methodResponses: [
      {
        statusCode: '200',
        responseParameters: { [HEADERS]: false, [METHODS]: false, [ORIGIN]: false },
        responseModels: { 'application/json': apigw.Model.EMPTY_MODEL },
      },
    ],
  },
);
// The API role's policy names the state machine by its deterministic ARN; deploy it first.
api.node.addDependency(stateMachine);

new cdk.CfnOutput(stack, 'ApiId', { value: api.restApiId });
new cdk.CfnOutput(stack, 'StateMachineArn', { value: stateMachine.attrArn });
