-- An agent that answers from a folder of documents: the built-in `retrieve` tool searches the
-- knowledge base "docs", which kb_sources index (unchanged files skipped) before each run.
return {
  name = "docs",
  description = "Answers questions about agentd from its own documentation, citing sources",
  model = "offline",
  tools = { "retrieve" },
  kb = "docs",
  kb_sources = { "../docs" },
  limits = { max_steps = 4 },
}
