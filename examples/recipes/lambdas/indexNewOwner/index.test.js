const test = require("node:test");
const assert = require("node:assert");
const { indexNewOwner } = require("./index.js");

test("indexNewOwner indexes the moved recipe's new_owner", async () => {
  const move = { id: "r42", previous_owner: "owner-of-r42", new_owner: "u7" };
  assert.deepStrictEqual(await indexNewOwner(move), { indexed: "u7", index: "indexNewOwner" });
});
