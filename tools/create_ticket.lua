-- create_ticket: opens a support ticket for a human agent (stored with ctx.kv).
-- Not idempotent: each call is a new ticket, so the runtime records it before running it
-- and never re-runs it blindly after a crash. The ticket is keyed by ctx.idempotency_key,
-- so a retry of the same call returns the same ticket instead of opening a second one.
return {
  name = "create_ticket",
  description = "Open a support ticket so a human agent follows up: damaged or broken "
    .. "items, refund or replacement requests, complaints, or anything the knowledge base "
    .. "cannot resolve. Only when the customer asks for it or the problem needs a person.",
  parameters = {
    type = "object",
    properties = {
      subject = {
        type = "string",
        minLength = 3,
        maxLength = 120,
        description = "One-line summary of the problem",
      },
      description = {
        type = "string",
        minLength = 3,
        maxLength = 2000,
        description = "What happened, in the customer's words",
      },
      priority = {
        type = "string",
        enum = { "low", "normal", "high", "urgent" },
        default = "normal",
        description = "How urgent the problem is",
      },
      order_id = {
        type = "string",
        pattern = "^[0-9]{4}$",
        description = "The related 4-digit order number, if any",
      },
      customer_email = {
        type = "string",
        format = "email",
        description = "Where the agent should reply",
      },
    },
    required = { "subject", "description" },
    additionalProperties = false,
  },
  timeout = 5,
  retries = 0,
  idempotent = false,
  approval = false,

  run = function(args, ctx)
    local key = "ticket:" .. ctx.idempotency_key
    local existing = ctx.kv.get(key)
    if existing then
      ctx.log("info", "ticket " .. existing.ticket.ticket_id .. " already exists for this call")
      return existing.ticket
    end

    -- The id comes from the idempotency key (FNV-1a), so concurrent runs need no shared
    -- counter and a replay names the same ticket.
    local h = 2166136261
    for i = 1, #ctx.idempotency_key do
      h = ((h ~ ctx.idempotency_key:byte(i)) * 16777619) & 0xffffffff
    end
    local now = ctx.now()
    if now > 1e15 then now = now / 1e9 elseif now > 1e12 then now = now / 1e3 end

    local ticket = {
      ticket_id = string.format("T-%08X", h),
      status = "open",
      subject = args.subject,
      priority = args.priority or "normal",
      order_id = args.order_id,
      customer_email = args.customer_email,
      created_at = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(now)),
      first_response = (args.priority == "urgent" or args.priority == "high")
        and "within 4 hours" or "within one business day",
    }
    ctx.kv.put(key, { ticket = ticket, description = args.description })
    ctx.log("info", "opened ticket " .. ticket.ticket_id)
    return ticket
  end,
}
