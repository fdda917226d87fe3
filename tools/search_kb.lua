-- search_kb: ranked help-center articles with a snippet, from the knowledge base "help": the
-- Markdown files in agents/data/help/, which the support agent's kb_sources index before its
-- runs start (again when one changes). Hybrid search: BM25 + vectors (docs/rag.md).
return {
  name = "search_kb",
  description = "Search the help-center knowledge base for policy and how-to articles: "
    .. "shipping times, late or delayed deliveries that have not arrived, lost packages, "
    .. "returns, refunds, exchanges, damaged items, warranty, payments and customs. "
    .. "Returns the best matching articles with a short snippet.",
  parameters = {
    type = "object",
    properties = {
      query = {
        type = "string",
        minLength = 2,
        maxLength = 200,
        description = "What to search for, in plain words, e.g. late delivery",
      },
      limit = {
        type = "integer",
        minimum = 1,
        maximum = 5,
        default = 2,
        description = "How many articles to return",
      },
    },
    required = { "query" },
    additionalProperties = false,
  },
  timeout = 5,
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    local hits, err = ctx.kb.search("help", args.query, { k = 12, mode = "hybrid" })
    if not hits then
      error("help-center search failed: " .. tostring(err), 0)
    end

    local terms = {}
    for w in args.query:lower():gsub("'", ""):gmatch("%w+") do
      if #w > 3 then terms[#terms + 1] = w:sub(1, 5) end
    end

    -- The snippet is the sentence of the chunk that shares the most word beginnings with
    -- the query (the chunk's "Tags:" line is for search, not for reading).
    local function snippet(text)
      local best, best_hits = nil, -1
      for sentence in text:gsub("Tags:[^\n]*", ""):gmatch("[^%.]+%.?") do
        local s = sentence:gsub("^%s+", "")
        local low, hits = s:lower(), 0
        for _, t in ipairs(terms) do
          if low:find(t, 1, true) then hits = hits + 1 end
        end
        if hits > best_hits and #s > 0 then best, best_hits = s, hits end
      end
      if best and #best > 240 then best = best:sub(1, 237) .. "..." end
      return best or ""
    end

    local limit = args.limit or 2
    local results, seen = {}, {}
    for _, h in ipairs(hits) do
      local id = h.source:match("([^/]+)%.md$")
      if id and not seen[id] and #results < limit then
        seen[id] = true
        results[#results + 1] = {
          id = id,
          title = h.title,
          snippet = snippet(h.text),
          url = "https://help.acme.example/articles/" .. id:lower(),
          score = math.floor(h.score * 100000 + 0.5) / 100000,
          source = h.id,
        }
      end
    end
    return { query = args.query, count = #results, results = results }
  end,
}
