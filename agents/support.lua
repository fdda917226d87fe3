-- The flagship example: a customer-support agent for the Acme store.
-- Runs with no key at all on the built-in offline model; set `model` (or pass --model) to a
-- real provider and keep "offline" as the last fallback so a provider outage still answers.
-- Field reference: docs/agents.md.
return {
  name = "support",
  description = "Customer-support agent for the Acme store: order status, policies, tickets",

  model = "offline",                 -- e.g. "openai:gpt-4o-mini" or "anthropic:claude-3-5-haiku-latest"
  fallbacks = { "offline" },

  system_prompt_file = "prompts/support.md",   -- relative to this file; hashed into every trace

  tools = { "lookup_order", "search_kb", "create_ticket" },

  -- Agents this one may delegate to, each called like a tool (a run of its own, nested in
  -- this run's trace, limits carved from this run's): agents/billing.lua.
  agents = { "billing" },

  -- The help-center articles search_kb reads: indexed into the knowledge base "help" before
  -- runs start (unchanged files are skipped). Any agent can do this and list the built-in
  -- `retrieve` tool instead of writing its own (docs/rag.md).
  kb = "help",
  kb_sources = { "data/help" },

  limits = {
    max_steps = 8,          -- model turns per run
    max_tool_calls = 20,    -- tool calls per run
    loop_limit = 2,         -- the same tool with the same arguments at most this often
    deadline_s = 120,       -- wall clock for the whole run
    max_tokens = 50000,     -- input + output tokens over all model calls
    max_cost_usd = 0.50,
  },

  -- Optional structured final answer (a JSON Schema as a Lua table); nil means prose.
  output_schema = nil,

  -- What the tools' ctx doors may reach. The support tools only read shipped data and kv.
  policy = { http_allow = {}, exec_allow = {}, secrets = {} },

  -- Per-tool override of the tool's own `approval` flag; true pauses the run in `waiting`
  -- until a person approves the call.
  approval = { create_ticket = false },

  default_input = "Where is my order 1042? It hasn't arrived.",
}
