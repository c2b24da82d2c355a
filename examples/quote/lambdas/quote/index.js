// Prices a basket. A basket worth more than 10,000 is refused: the error's
// name, QuoteRefused, is what the route maps to HTTP 422.
class QuoteRefused extends Error {
  constructor(message) {
    super(message);
    this.name = "QuoteRefused";
  }
}

exports.quote = async (event) => {
  const subtotal = event.items.reduce((sum, i) => sum + i.quantity * i.unitPrice, 0);
  if (subtotal > 10000) {
    throw new QuoteRefused(`a basket of ${subtotal} is over the 10000 limit; call sales`);
  }
  const discount = event.coupon === "TENOFF" ? Math.round(subtotal * 10) / 100 : 0;
  return { subtotal, discount, total: subtotal - discount };
};
