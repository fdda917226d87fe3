-- The support agent with ticket creation behind a human approval: a run that wants to open
-- a ticket stops in `waiting` until someone approves or denies the call (agentd approve,
-- or POST /v1/runs/ID/approve with agentd serve).
return {
  name = "escalations",
  description = "Customer support that opens tickets only with a human's approval",
  model = "offline",
  system_prompt_file = "prompts/support.md",
  tools = { "lookup_order", "create_ticket" },
  limits = { max_steps = 8, max_tool_calls = 20 },
  approval = { create_ticket = true },
}
