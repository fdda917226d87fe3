-- A billing specialist the support agent delegates to (agents = { "billing" } in
-- support.lua): each call is a run of its own, linked to the support run that asked, with
-- limits carved from the support run's (docs/strategies.md). Also runs on its own:
--   ./agentd run agents/billing.lua "Was I charged twice for order 1042?"
return {
  name = "billing",
  description = "Billing specialist: charges, payments, invoices, receipts and refunds",

  model = "offline",
  fallbacks = { "offline" },

  system_prompt = "You are Acme's billing specialist. Answer questions about charges, "
    .. "invoices, payment methods and refunds of one order, from lookup_invoice only. "
    .. "Give the invoice number, the amount charged and how many charges were made.",

  tools = { "lookup_invoice" },

  limits = {
    max_steps = 4,
    max_tool_calls = 4,
    deadline_s = 60,
    max_tokens = 20000,
    max_cost_usd = 0.10,
  },

  policy = { http_allow = {}, exec_allow = {}, secrets = {} },

  default_input = "Was I charged twice for order 1042?",
}
