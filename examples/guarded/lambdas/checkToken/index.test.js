const test = require("node:test");
const assert = require("node:assert");
const { checkToken } = require("./index.js");

const methodArn = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/POST/greet";

function event(authorizationToken) {
  return { type: "TOKEN", authorizationToken, methodArn };
}

test.beforeEach(() => {
  process.env.ACCEPTED_TOKEN = "let-me-in";
});

test("the accepted token gets an Allow policy on the method it called", async () => {
  for (const header of ["let-me-in", "Bearer let-me-in"]) {
    const answer = await checkToken(event(header));
    assert.strictEqual(answer.principalId, "token-holder");
    assert.deepStrictEqual(answer.policyDocument.Statement, [
      { Action: "execute-api:Invoke", Effect: "Allow", Resource: methodArn },
    ]);
  }
});

test("a wrong token gets a Deny policy", async () => {
  for (const header of ["let-me-out", "Bearer let-me-i", "let-me-in-too"]) {
    const answer = await checkToken(event(header));
    assert.strictEqual(answer.policyDocument.Statement[0].Effect, "Deny", header);
    assert.strictEqual(answer.policyDocument.Statement[0].Resource, methodArn);
  }
});

test("no token at all is Unauthorized (API Gateway's 401)", async () => {
  for (const header of [undefined, "", "Bearer "]) {
    await assert.rejects(checkToken(event(header)), { message: "Unauthorized" });
  }
});

test("with no accepted token configured, nothing is allowed", async () => {
  delete process.env.ACCEPTED_TOKEN;
  const answer = await checkToken(event("let-me-in"));
  assert.strictEqual(answer.policyDocument.Statement[0].Effect, "Deny");
});
