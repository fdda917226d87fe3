-- remember: save a fact to the agent's long-term memory (docs/memory.md), to be found by the
-- recall tool in later runs and sessions of the same scope (the user, the session or the
-- agent, from memory.long_term in the agent file). The same fact saved twice is one memory.
return {
  name = "remember",
  description = "Save a fact for later conversations in long-term memory: what the user "
    .. "asks you to remember, preferences, names, order numbers, decisions. One fact per call, "
    .. "as a sentence that makes sense on its own.",
  parameters = {
    type = "object",
    properties = {
      fact = {
        type = "string",
        minLength = 3,
        maxLength = 1000,
        description = "The fact, one self-contained sentence, e.g. The customer prefers "
          .. "delivery to the pickup point on Main Street",
      },
    },
    required = { "fact" },
    additionalProperties = false,
  },
  timeout = 10,
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    local id, err = ctx.memory.remember(args.fact)
    if not id then
      error(err, 0)
    end
    return { remembered = args.fact, id = id, scope = ctx.memory.scope }
  end,
}
