-- search_kb: ranked help-center articles with a snippet, from agents/data/kb.json.
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
    local STOP = {}
    for w in ("a an and are as at be but by can do for from has have how i if in is it its "
      .. "me my no not of on or our so that the their this to was we what when where "
      .. "which who why will with you your hasnt havent isnt dont didnt still"):gmatch("%S+") do
      STOP[w] = true
    end

    -- Same light stemming idea as the offline model: plurals, -ing, -ed, final e.
    local function stem(w)
      if #w <= 3 or w:match("^%d+$") then return w end
      if w:sub(-3) == "ies" then w = w:sub(1, -4) .. "y"
      elseif w:sub(-1) == "s" and not w:match("[su]s$") and w:sub(-2) ~= "is" then w = w:sub(1, -2) end
      if #w >= 6 and w:sub(-3) == "ing" then w = w:sub(1, -4)
      elseif #w >= 5 and w:sub(-2) == "ed" then w = w:sub(1, -3) end
      if #w > 4 and w:sub(-1) == "e" then w = w:sub(1, -2) end
      return w
    end

    local function words(text)
      local out = {}
      for w in text:lower():gsub("'", ""):gmatch("[%w]+") do
        if not STOP[w] then out[#out + 1] = stem(w) end
      end
      return out
    end

    local kb = ctx.data("kb.json")
    local terms = words(args.query)
    if #terms == 0 then
      error("the query has no searchable words; try e.g. 'late delivery' or 'refund'", 0)
    end

    -- Document frequency of each query term, for idf.
    local docs, df = {}, {}
    for i, a in ipairs(kb.articles) do
      local bag = {}
      local function add(text, weight)
        for _, w in ipairs(words(text)) do bag[w] = (bag[w] or 0) + weight end
      end
      add(a.title, 3)
      add(table.concat(a.tags, " "), 2)
      add(a.body, 1)
      docs[i] = bag
      for _, t in ipairs(terms) do
        if bag[t] then df[t] = (df[t] or 0) + 1 end
      end
    end

    local n = #kb.articles
    local ranked = {}
    for i, a in ipairs(kb.articles) do
      local score = 0
      for _, t in ipairs(terms) do
        local tf = docs[i][t]
        if tf then score = score + (1 + math.log(tf)) * math.log(1 + n / df[t]) end
      end
      if score > 0 then ranked[#ranked + 1] = { article = a, score = score } end
    end
    table.sort(ranked, function(x, y)
      if x.score ~= y.score then return x.score > y.score end
      return x.article.id < y.article.id
    end)

    -- The snippet is the body sentence that shares the most words with the query.
    local function snippet(body)
      local best, best_hits = nil, -1
      for sentence in body:gmatch("[^%.]+%.?") do
        local s = sentence:gsub("^%s+", "")
        local hits, seen = 0, {}
        for _, w in ipairs(words(s)) do seen[w] = true end
        for _, t in ipairs(terms) do if seen[t] then hits = hits + 1 end end
        if hits > best_hits and #s > 0 then best, best_hits = s, hits end
      end
      if best and #best > 240 then best = best:sub(1, 237) .. "..." end
      return best or ""
    end

    local limit = args.limit or 2
    local results = {}
    for i = 1, math.min(limit, #ranked) do
      local a = ranked[i].article
      results[i] = {
        id = a.id,
        title = a.title,
        snippet = snippet(a.body),
        url = a.url,
        score = math.floor(ranked[i].score * 1000 + 0.5) / 1000,
      }
    end
    return { query = args.query, count = #results, results = results }
  end,
}
