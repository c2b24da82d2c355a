'use strict';

// Step Functions passes the order as the event; the reply carries the order's own fields.
exports.cancelOrder = async (event) => ({
  message: 'Your order is not approved because of payment failure',
  orderDetails: {
    orderId: event.orderId,
    customerName: event.customerName,
    orderDate: event.orderDate,
    orderAmount: event.orderAmount,
    status: 'Rejected',
  },
});
