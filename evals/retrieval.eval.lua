-- Does retrieval help? Policy questions whose answers are only in the help-center articles
-- (agents/data/help), asked of the support agent with its search_kb tool and of the same agent
-- without it (evals/support_no_kb.lua):
--
--   ./agentd eval evals/retrieval.eval.lua --agent agents/support.lua,evals/support_no_kb.lua
--
-- Each case asserts the fact the article states; docs/rag.md has the table.
local function policy(id, input, fact)
  return { id = id, input = input,
           assert = { contains(fact), final_state("done"), max_steps(4) },
           expected = fact }
end

return {
  name = "retrieval",
  agent = "../agents/support.lua",
  concurrency = 4,
  gate = { min_pass_rate = 0.0 },   -- a comparison, not a gate: both variants are reported
  cases = {
    policy("refund-card", "How long until a refund shows up on my credit card?", "5 to 10 business days"),
    policy("express-cost", "How much does express shipping cost?", "15 USD"),
    policy("free-shipping", "Is shipping free if my order is big enough?", "50 USD"),
    policy("return-window", "How many days do I have to return an item?", "30 days"),
    policy("international", "How long does international shipping take?", "7 to 14 business days"),
    policy("warranty", "How long is the warranty on electronics?", "1-year"),
    policy("support-reply", "How fast does support answer a ticket?", "one business day"),
    policy("declined-card", "What happens if my card is declined at checkout?", "48 hours"),
    policy("lost-package", "Tracking has not moved for a week, is my package lost?", "7 days"),
    policy("refund-paypal", "How long do PayPal refunds take?", "1 to 3 days"),
  },
}
