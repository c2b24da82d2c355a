const test = require("node:test");
const assert = require("node:assert");
const { indexRecipe } = require("./index.js");

test("indexRecipe indexes the moved recipe's id", async () => {
  const move = { id: "r42", previous_owner: "owner-of-r42", new_owner: "u7" };
  assert.deepStrictEqual(await indexRecipe(move), { indexed: "r42", index: "indexRecipe" });
});
