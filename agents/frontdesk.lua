-- A handoff: the front desk answers policy questions itself and hands billing questions
-- over to agents/billing.lua, whose answer is then the run's answer (no further model call
-- here). The billing run is a run of its own, nested in this run's trace
-- (docs/strategies.md).
--   ./agentd run agents/frontdesk.lua "I was charged twice for order 1042"
return {
  name = "frontdesk",
  description = "First line of the Acme store: policies, and hands billing questions over",

  model = "offline",
  fallbacks = { "offline" },

  system_prompt = "You are the first line of Acme's support. Answer policy questions from "
    .. "search_kb. Hand anything about charges, invoices, payments or refunds over to the "
    .. "billing agent with handoff_to_billing.",

  tools = { "search_kb" },
  kb = "help",
  kb_sources = { "data/help" },

  handoffs = { "billing" },

  limits = { max_steps = 6, deadline_s = 120, max_tokens = 50000, max_cost_usd = 0.50 },

  policy = { http_allow = {}, exec_allow = {}, secrets = {} },

  default_input = "I was charged twice for order 1042",
}
