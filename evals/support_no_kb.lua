-- The support agent without retrieval: agents/support.lua minus its search_kb tool and its
-- knowledge base, the baseline of evals/retrieval.eval.lua (does retrieval help?):
--   ./agentd eval evals/retrieval.eval.lua --agent agents/support.lua,evals/support_no_kb.lua
return {
  name = "support-no-kb",
  description = "Customer-support agent for the Acme store, without the help-center search",
  model = "offline",
  fallbacks = { "offline" },
  system_prompt_file = "../agents/prompts/support.md",
  tools = { "lookup_order", "create_ticket" },
  limits = { max_steps = 8, max_tool_calls = 20, loop_limit = 2, deadline_s = 120,
             max_tokens = 50000, max_cost_usd = 0.50 },
  policy = { http_allow = {}, exec_allow = {}, secrets = {} },
  approval = { create_ticket = false },
}
