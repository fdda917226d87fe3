-- recall: search the agent's long-term memory (docs/memory.md) for facts saved by the
-- remember tool in earlier runs and sessions of the same scope.
return {
  name = "recall",
  description = "Look up what you know from earlier conversations with this user: facts, "
    .. "preferences and details saved in long-term memory. Use it when the user refers to "
    .. "something said before or asks what you know about them.",
  parameters = {
    type = "object",
    properties = {
      query = {
        type = "string",
        minLength = 2,
        maxLength = 500,
        description = "What to look for, in plain words, e.g. delivery preference",
      },
      k = {
        type = "integer",
        minimum = 1,
        maximum = 10,
        default = 5,
        description = "How many memories to return",
      },
    },
    required = { "query" },
    additionalProperties = false,
  },
  timeout = 10,
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    local hits, err = ctx.memory.recall(args.query, { k = args.k or 5 })
    if not hits then
      error(err, 0)
    end
    local memories = {}
    for i, h in ipairs(hits) do
      memories[i] = { id = h.id, fact = h.text, score = math.floor(h.score * 100000 + 0.5) / 100000 }
    end
    return { query = args.query, count = #memories, memories = memories }
  end,
}
