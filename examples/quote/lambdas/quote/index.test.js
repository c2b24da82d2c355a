const test = require("node:test");
const assert = require("node:assert");
const { quote } = require("./index.js");

test("a basket is priced, with the coupon's discount", async () => {
  const items = [{ sku: "a", quantity: 2, unitPrice: 10 }];
  assert.deepStrictEqual(await quote({ items }), { subtotal: 20, discount: 0, total: 20 });
  assert.deepStrictEqual(await quote({ items, coupon: "TENOFF" }), { subtotal: 20, discount: 2, total: 18 });
});

test("a basket over the limit is refused as QuoteRefused", async () => {
  await assert.rejects(quote({ items: [{ sku: "a", quantity: 1, unitPrice: 20000 }] }), { name: "QuoteRefused" });
});
