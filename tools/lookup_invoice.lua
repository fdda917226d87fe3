-- lookup_invoice: the billing side of one order (invoice, amount charged, payment method,
-- refund), read from agents/data/orders.json. The billing agent's tool (agents/billing.lua).
return {
  name = "lookup_invoice",
  description = "Look up the invoice of an order by its order number: the amount charged, "
    .. "how many charges were made, the payment method, the charge date and any refund.",
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
  retries = 0,
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    local data = ctx.data("orders.json")
    for _, o in ipairs(data.orders) do
      if o.id == args.order_id then
        local refunded = o.status == "cancelled" or o.status == "returned"
        return {
          order_id = o.id,
          invoice = "INV-" .. o.id,
          amount_charged = o.total,
          currency = o.currency,
          charges = 1,
          payment_method = o.payment,
          charged_at = o.placed_at,
          refund = refunded and ("refunded " .. o.total .. " " .. o.currency) or "none",
        }
      end
    end
    error("no invoice for order number " .. args.order_id
      .. "; please check the 4-digit number in the confirmation email", 0)
  end,
}
