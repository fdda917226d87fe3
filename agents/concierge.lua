-- An example of guardrail hooks (docs/guardrails.md) and long-term memory (docs/memory.md)
-- on the support agent's tools. Each hook is a Lua function of this file; agentd runs it in
-- a fresh sandbox at its moment and records its decision as a trace event (op "guardrail").
-- Memories are per user (--user NAME): the remember tool saves a fact, recall finds it in
-- a later run. Try it offline:
--   agentd run agents/concierge.lua "My card is 4111 1111 1111 1111, where is order 1042?"
--   agentd run agents/concierge.lua "Where is order 1013?"
--   agentd run agents/concierge.lua "Please open a ticket: order 1042 arrived damaged"
--   agentd run agents/concierge.lua --user ava "Remember that I prefer delivery to the pickup point"
--   agentd run agents/concierge.lua --user ava "What do you recall about my delivery preference?"
local function has_card_number(text)
  local digits = text:gsub("[ %-]", "")
  return digits:find("%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d") ~= nil
end

return {
  name = "concierge",
  description = "Support agent with guardrails: no card numbers, no other customers' orders, "
    .. "tickets approved by a person, no email addresses in answers",
  model = "offline",
  fallbacks = { "offline" },
  system_prompt_file = "prompts/support.md",
  tools = { "lookup_order", "search_kb", "create_ticket", "remember", "recall" },
  memory = { long_term = "user" },
  kb = "help",
  kb_sources = { "data/help" },
  limits = { max_steps = 8, max_tool_calls = 20, loop_limit = 2, deadline_s = 120 },

  guardrails = {
    -- The question, before any model call: deny stops the run (state failed, reason
    -- guardrail_input) with the reason as its error.
    on_input = function(input, ctx)
      if has_card_number(input) then
        return "deny", "card numbers must not be sent to the assistant; remove it and ask again"
      end
      return "allow"
    end,

    -- Each tool call the model asks for, after the built-in checks: "allow", "deny" with a
    -- reason the model reads as the call's result, or "ask" to pause for a person
    -- (`agentd approve RUN CALL [--args JSON]` / `agentd deny RUN CALL --reason TEXT`).
    on_tool_call = function(call, ctx)
      if call.name == "lookup_order" and call.args.order_id == "1013" then
        return "deny", "order 1013 belongs to another account; do not look it up"
      end
      if call.name == "create_ticket" then
        return "ask", "tickets are opened only after a person checks them"
      end
      return "allow"
    end,

    -- The final answer: "reject" with a reason sends it back to the model, which answers
    -- again; after max_output_retries rejections the run fails (reason output_rejected).
    on_output = function(output, ctx)
      if output:find("[%w._%-]+@[%w.-]+%.%a+") then
        return "reject", "answers must not contain email addresses"
      end
      return "allow"
    end,
    max_output_retries = 1,
  },
}
