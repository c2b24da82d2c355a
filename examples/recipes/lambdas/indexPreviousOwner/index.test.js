const test = require("node:test");
const assert = require("node:assert");
const { indexPreviousOwner } = require("./index.js");

test("indexPreviousOwner indexes the moved recipe's previous_owner", async () => {
  const move = { id: "r42", previous_owner: "owner-of-r42", new_owner: "u7" };
  assert.deepStrictEqual(await indexPreviousOwner(move), { indexed: "owner-of-r42", index: "indexPreviousOwner" });
});
