-- plan_execute: the model first writes a plan (steps with a tool, an intent and the
-- arguments it knows); the runtime runs the steps, asking the model again only for a step
-- whose arguments it left out, and for the final answer. A step that fails, or whose result
-- reports an error, makes the model re-plan, up to limits.max_replans times
-- (docs/strategies.md).
--   ./agentd run agents/planner.lua "Where are my orders 1042 and 1043?"
return {
  name = "planner",
  description = "Order-status agent that plans its tool calls before making them",

  model = "offline",
  fallbacks = { "offline" },

  strategy = "plan_execute",

  system_prompt = "You are Acme's order-status assistant. Plan the lookups a question "
    .. "needs, then answer from their results: status, carrier, tracking number and ETA.",

  tools = { "lookup_order", "search_kb" },
  kb = "help",
  kb_sources = { "data/help" },

  limits = {
    max_steps = 10,         -- plan steps and model calls together
    max_replans = 2,        -- new plans after a failed step
    max_tool_calls = 10,
    deadline_s = 120,
    max_tokens = 50000,
  },

  policy = { http_allow = {}, exec_allow = {}, secrets = {} },

  default_input = "Where are my orders 1042 and 1043?",
}
