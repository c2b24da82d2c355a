'use strict';

// Step Functions passes the order as the event; the reply carries the order's own fields.
exports.completeOrder = async (event) => ({
  message: 'Your order approved and it will be delivered soon',
  orderDetails: {
    orderId: event.orderId,
    customerName: event.customerName,
    orderDate: event.orderDate,
    orderAmount: event.orderAmount,
    status: 'Approved',
  },
});
