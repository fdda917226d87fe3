-- A travel agent for the offline model's argument filling (docs/offline.md): one request
-- fills several required parameters of the same kind — two airport codes, two dates — and
-- the chat span records why it chose each tool (agentd.offline.decision, scores per tool).
--   agentd run agents/travel.lua "Flights from OSL to LIS on 2026-12-20"
--   agentd run agents/travel.lua "A hotel in Lisbon: check in 2026-12-20, check out 2026-12-24"
return {
  name = "travel",
  description = "Finds flights and hotels",
  model = "offline",
  system_prompt = "You help people plan trips: find flights and hotels, and quote fares.",
  tools = { "search_flights", "find_hotels" },
  limits = { max_steps = 4, max_tool_calls = 6, deadline_s = 60 },
  default_input = "Flights from OSL to LIS on 2026-12-20",
}
