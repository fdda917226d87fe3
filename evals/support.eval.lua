-- The flagship eval: the support agent (agents/support.lua) on order status, policies and
-- tickets. Runs offline with no key (`agentd eval evals/support.eval.lua`); point it at a
-- real model with --model, and compare with a baseline with --baseline (docs/eval.md).
--
-- Each case: an input, optional vars (the prompt's {{variables}}), assertions, and variants
-- (typos, casing, whitespace, paraphrases) that check the agent survives small changes of
-- the input. Assertion constructors: contains, not_contains, icontains, regex, equals,
-- json_schema, tool_called(name, args_subset), tool_not_called, tool_order, max_steps,
-- max_cost, max_latency_ms, final_state, similar(text, threshold), llm_rubric(text), or a
-- function(output, run) returning pass, score, reason.

-- A custom check: an answer about an order must repeat its tracking number when the order
-- has one, and never show an order number the customer did not ask about.
local function cites_only_asked_order(output, run)
  local asked = run.input:match("%d%d%d%d")
  for n in output:gmatch("order ID (%d%d%d%d)") do
    if n ~= asked then return false, 0, "mentions order " .. n .. ", asked about " .. tostring(asked) end
  end
  return true, 1, "only order " .. tostring(asked)
end

local function order_case(id, n, input, facts, variants)
  local a = { tool_called("lookup_order", { order_id = n }), tool_not_called("create_ticket"),
              final_state("done"), max_steps(4), cites_only_asked_order }
  for _, f in ipairs(facts) do a[#a + 1] = contains(f) end
  return { id = id, input = input, assert = a, variants = variants }
end

return {
  name = "support",
  agent = "../agents/support.lua",
  -- judge = "openai:gpt-4o-mini",  -- the model that grades llm_rubric assertions (the
  --                                   offline model cannot: it does not read a rubric)
  concurrency = 8,
  gate = {
    min_pass_rate = 1.0,       -- with no baseline: every case must pass
    max_pass_rate_drop = 0.0,  -- with a baseline: any drop is a regression
    max_cost_increase = 0.25,  -- cost per case may grow 25 %
    max_latency_increase = 1.0,  -- p95 may double, and must grow by 2 s to count: offline
    latency_floor_ms = 2000,     -- runs take milliseconds, so scheduler noise is no regression
  },
  cases = {
    order_case("status-in-transit", "1042", "Where is my order 1042? It hasn't arrived.",
               { "in transit", "UPS", "1Z999AA10123451042", "2026-12-01" },
               { "typos", "casing", "whitespace",
                 paraphrases = { "Can you check on order #1042 for me?",
                                 "order 1042 status please" } }),
    order_case("status-shipped", "1043", "What's the status of order 1043?",
               { "shipped", "FedEx", "771234561043" }, { "typos", "casing" }),
    order_case("status-delivered", "1038", "Has order 1038 been delivered?",
               { "delivered", "UPS" }, { "whitespace" }),
    order_case("status-processing", "1044", "When will order 1044 ship?",
               { "processing", "2026-12-03" }, { "typos" }),
    order_case("status-delayed", "1045", "My sofa, order 1045, is late. What is going on?",
               { "delayed", "XPO Freight" }, { "casing" }),
    order_case("status-cancelled", "1047", "Why was my order 1047 cancelled?",
               { "cancelled" }, {}),
    {
      id = "two-orders",
      input = "Can you check orders 1043 and 1048?",
      assert = { tool_called("lookup_order", { order_id = "1043" }),
                 tool_called("lookup_order", { order_id = "1048" }),
                 contains("FedEx"), contains("DHL"), max_steps(4) },
      variants = { "whitespace" },
    },
    {
      id = "unknown-order",
      input = "Where is order 9999?",
      assert = { tool_called("lookup_order", { order_id = "9999" }),
                 icontains("no order with number 9999"), final_state("done") },
      variants = { "casing" },
    },
    {
      id = "missing-order-number",
      input = "Where is my order? It is late.",
      assert = { tool_not_called("lookup_order"), tool_not_called("create_ticket"),
                 icontains("order ID") },
    },
    {
      id = "return-policy",
      input = "What is your return policy?",
      assert = { tool_called("search_kb"), tool_not_called("lookup_order"),
                 tool_not_called("create_ticket"), contains("30 days") },
      -- no "typos" variant: "retrun polciy" shares no word with the help articles, and the
      -- offline model picks tools by shared words (a real model reads through it)
      variants = { "casing", "whitespace", paraphrases = { "How do returns work?" } },
    },
    {
      id = "refund-timeline",
      input = "How long does a refund take?",
      assert = { tool_called("search_kb"), regex("[0-9]+ (business )?days"),
                 tool_not_called("create_ticket") },
      variants = { "whitespace" },
    },
    {
      id = "damaged-ticket",
      input = "Please open a ticket: order 1042 arrived damaged",
      assert = { tool_called("create_ticket"), tool_order({ "create_ticket" }),
                 regex("T-[0-9A-F]{8}"),
                 final_state("done") },
      variants = { "casing" },
    },
    {
      id = "no-ticket-unasked",
      input = "My package is damaged, what are my options?",
      assert = { tool_not_called("create_ticket"), tool_called("search_kb") },
    },
    {
      id = "shipping-times",
      input = "How long does shipping take?",
      expected = "Standard shipping takes 3 to 5 business days; express shipping takes 1 to 2 business days.",
      assert = { tool_called("search_kb"), similar(0.2), max_cost(0.01), max_latency_ms(5000) },
    },
    {
      id = "ticket-for-lost-order",
      input = "I want a refund for order 1046, it never arrived. Open a ticket please.",
      assert = { tool_called("create_ticket"), tool_called("lookup_order", { order_id = "1046" }),
                 function(output, run)
                   local id = output:match("T%-%x+")
                   return id ~= nil, id and 1 or 0, id and ("ticket " .. id .. " given")
                                                         or "no ticket id in the answer"
                 end },
      variants = { "whitespace" },
    },
  },
}
