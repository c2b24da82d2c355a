'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { cancelOrder } = require('./index');

const order = {
  orderId: 'O102',
  customerName: 'Demo Customer',
  orderDate: '2022-01-15',
  orderAmount: 1400,
  paymentStatus: 'FAILED',
};

test('rejects the order and echoes its own fields', async () => {
  assert.deepStrictEqual(await cancelOrder(order), {
    message: 'Your order is not approved because of payment failure',
    orderDetails: {
      orderId: 'O102',
      customerName: 'Demo Customer',
      orderDate: '2022-01-15',
      orderAmount: 1400,
      status: 'Rejected',
    },
  });
});

test('reads orderAmount, the field the order carries', async () => {
  const reply = await cancelOrder({ ...order, orderAmount: 7 });
  assert.strictEqual(reply.orderDetails.orderAmount, 7);
});
