const test = require("node:test");
const assert = require("node:assert");
const { updateRecipe } = require("./index.js");

test("a move names the recipe, its previous owner and its new one", async () => {
  assert.deepStrictEqual(await updateRecipe({ id: "r42", user_id: "u7" }), {
    id: "r42",
    previous_owner: "owner-of-r42",
    new_owner: "u7",
  });
});

test("a move without its new owner fails", async () => {
  await assert.rejects(updateRecipe({ id: "r42" }), /user_id/);
});
