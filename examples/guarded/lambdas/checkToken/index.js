// A token authorizer (API Gateway's TOKEN type): the caller's Authorization
// header, bare or as "Bearer TOKEN", is compared with ACCEPTED_TOKEN in
// constant time. The right token gets an Allow policy on the method it
// called; a wrong one a Deny (403); none at all "Unauthorized" (401).
const crypto = require("node:crypto");

const PRINCIPAL = "token-holder";

function policy(principalId, effect, methodArn) {
  return {
    principalId,
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: effect, Resource: methodArn }],
    },
  };
}

function matches(token, accepted) {
  const a = Buffer.from(token);
  const b = Buffer.from(accepted);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

exports.checkToken = async (event) => {
  const header = (event.authorizationToken || "").trim();
  const token = header.replace(/^Bearer(\s+|$)/i, "");
  if (!token) {
    // API Gateway answers 401 to exactly this error message.
    throw new Error("Unauthorized");
  }
  const accepted = process.env.ACCEPTED_TOKEN || "";
  const allowed = accepted !== "" && matches(token, accepted);
  return policy(PRINCIPAL, allowed ? "Allow" : "Deny", event.methodArn);
};
