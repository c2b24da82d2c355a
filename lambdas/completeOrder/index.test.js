'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { completeOrder } = require('./index');

const order = {
  orderId: 'O101',
  customerName: 'Demo Customer',
  orderDate: '2022-01-15',
  orderAmount: 1400,
  paymentStatus: 'SUCCESS',
};

test('approves the order and echoes its own fields', async () => {
  assert.deepStrictEqual(await completeOrder(order), {
    message: 'Your order approved and it will be delivered soon',
    orderDetails: {
      orderId: 'O101',
      customerName: 'Demo Customer',
      orderDate: '2022-01-15',
      orderAmount: 1400,
      status: 'Approved',
    },
  });
});

test('reads orderAmount, the field the order carries', async () => {
  const reply = await completeOrder({ ...order, orderAmount: 99.5 });
  assert.strictEqual(reply.orderDetails.orderAmount, 99.5);
});
