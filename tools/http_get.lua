-- http_get: fetch a web page or API response from an allow-listed host.
-- The agent's policy.http_allow lists the hosts; ctx.http refuses every other host.
return {
  name = "http_get",
  description = "Fetch a URL with HTTP GET and return its status, content type and body "
    .. "(text, cut to max_chars). Only hosts the agent allows can be reached. Use it to read a "
    .. "status page or a JSON API the agent is configured for.",
  parameters = {
    type = "object",
    properties = {
      url = {
        type = "string",
        description = "An http:// or https:// URL on an allowed host",
        pattern = "^https?://",
        maxLength = 2000,
      },
      max_chars = {
        type = "integer",
        description = "Longest body to return (default 20000)",
        minimum = 100,
        maximum = 200000,
      },
    },
    required = { "url" },
    additionalProperties = false,
  },
  timeout = 15,
  idempotent = true,
  retries = 2,

  run = function(args, ctx)
    local max = args.max_chars or 20000
    local r, err = ctx.http{ url = args.url, timeout = 10, max_bytes = 4 * 1024 * 1024,
                             headers = { ["User-Agent"] = "agentd-http_get/1" } }
    if not r then error(err, 0) end
    if r.status >= 500 then
      -- Raising makes the runtime retry (the tool is idempotent); 4xx is an answer.
      error(string.format("%s answered HTTP %d", args.url, r.status), 0)
    end
    local body = r.body
    -- Cut on a UTF-8 boundary so the result stays valid JSON text.
    local truncated = #body > max
    if truncated then
      local cut = max
      while cut > 0 and (body:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
      body = body:sub(1, cut)
    end
    if not utf8.len(body) then
      body = "(binary body of " .. #r.body .. " bytes not shown)"
    end
    ctx.log("info", "GET %s -> %d (%d bytes)", args.url, r.status, #r.body)
    return {
      url = args.url,
      status = r.status,
      ok = r.ok,
      content_type = r.content_type or json.null,
      body = body,
      truncated = truncated,
    }
  end,
}
