-- retrieve: passages from a knowledge base (agentd kb add KB PATH...), for answers that cite
-- their sources. An agent lists it in `tools` and names its KB with `kb = "NAME"` in the agent
-- file (the agent decides which documents it reads, not the model). Each passage carries an
-- `id` ("path#chunk") to cite.
return {
  name = "retrieve",
  description = "Search the agent's knowledge base of documents and return the most relevant "
    .. "passages, each with its source id, title, section heading and text. Use it to find "
    .. "facts in the documentation before answering, and cite the ids you used.",
  parameters = {
    type = "object",
    properties = {
      query = {
        type = "string",
        minLength = 2,
        maxLength = 500,
        description = "What to look for, in plain words, e.g. how to enable write-ahead logging",
      },
      k = {
        type = "integer",
        minimum = 1,
        maximum = 10,
        default = 4,
        description = "How many passages to return",
      },
      mode = {
        type = "string",
        enum = { "hybrid", "keyword", "vector" },
        default = "hybrid",
        description = "hybrid (default) fuses keyword (BM25) and vector similarity",
      },
    },
    required = { "query" },
    additionalProperties = false,
  },
  timeout = 10,
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    local kb = ctx.kb.default
    if not kb then
      error("no knowledge base: set kb = \"NAME\" in the agent file (see agentd kb list)", 0)
    end
    local hits, err = ctx.kb.search(kb, args.query, { k = args.k or 4, mode = args.mode })
    if not hits then
      error(err, 0)
    end
    local passages = {}
    for i, h in ipairs(hits) do
      passages[i] = {
        id = h.id,
        source = h.source,
        title = h.title,
        heading = h.heading,
        score = math.floor(h.score * 100000 + 0.5) / 100000,
        text = h.text,
      }
    end
    return { kb = kb, query = args.query, count = #passages, passages = passages }
  end,
}
