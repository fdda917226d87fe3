-- lookup_order: one order's status, items and shipment, read from agents/data/orders.json.
return {
  name = "lookup_order",
  description = "Look up a customer's order by its order number and return its status, "
    .. "items, total, carrier, tracking number, estimated delivery date (ETA) and the "
    .. "latest shipment update. Use it for questions about a specific order.",
  parameters = {
    type = "object",
    properties = {
      order_id = {
        type = "string",
        pattern = "^[0-9]{4}$",
        description = "The 4-digit order number from the confirmation email",
        examples = { "1042" },
      },
    },
    required = { "order_id" },
    additionalProperties = false,
  },
  timeout = 5,
  retries = 0,           -- a missing order stays missing: nothing transient to retry
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    local data = ctx.data("orders.json")
    local order
    for _, o in ipairs(data.orders) do
      if o.id == args.order_id then
        order = o
        break
      end
    end
    if not order then
      error("no order with number " .. args.order_id
        .. " was found; please check the 4-digit number in the confirmation email", 0)
    end
    ctx.log("info", "order " .. order.id .. " is " .. order.status)
    local items = {}
    for i, it in ipairs(order.items) do
      items[i] = { name = it.name, qty = it.qty, price = it.price }
    end
    -- The customer's name and address stay out of the result: the model does not need them.
    return {
      order_id = order.id,
      status = order.status,
      placed_at = order.placed_at,
      items = items,
      total = order.total,
      currency = order.currency,
      carrier = order.carrier,
      tracking_number = order.tracking_number,
      shipped_at = order.shipped_at,
      eta = order.eta,
      delivered_at = order.delivered_at,
      last_update = order.last_update,
      customer_email = order.customer.email,
    }
  end,
}
