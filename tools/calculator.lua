-- calculator: exact arithmetic for the model, which is bad at it.
-- The expression is parsed here (a small recursive-descent parser), never handed to load():
-- only numbers, operators, parentheses and the listed functions are accepted.
return {
  name = "calculator",
  description = "Evaluate an arithmetic expression and return the exact result. Supports + - * / "
    .. "% ^, parentheses, and sqrt, abs, floor, ceil, round, min, max, log, exp, pi. Use it for "
    .. "any sum, difference, percentage, unit price or total instead of computing in your head.",
  parameters = {
    type = "object",
    properties = {
      expression = {
        type = "string",
        description = "The arithmetic expression, e.g. \"(113.00 - 24.00) * 0.15\"",
        minLength = 1,
        maxLength = 500,
        examples = { "2 * (3 + 4)", "round(89.99 * 1.2, 2)" },
      },
    },
    required = { "expression" },
    additionalProperties = false,
  },
  timeout = 2,
  idempotent = true,

  run = function(args, ctx)
    local src = args.expression
    local pos = 1

    local function fail(msg)
      error(string.format("%s at position %d of %q", msg, pos, src), 0)
    end

    local function skip()
      pos = src:find("[^%s]", pos) or #src + 1
    end

    local function peek(pat)
      skip()
      return src:match("^" .. pat, pos)
    end

    local function take(pat)
      local m = peek(pat)
      if m then pos = pos + #m end
      return m
    end

    local funcs = {
      sqrt = function(x) if x < 0 then fail("sqrt of a negative number") end return math.sqrt(x) end,
      abs = math.abs, floor = math.floor, ceil = math.ceil, exp = math.exp,
      log = function(x, b)
        if x <= 0 then fail("log of a non-positive number") end
        return b and math.log(x, b) or math.log(x)
      end,
      min = math.min, max = math.max,
      round = function(x, d)
        local m = 10 ^ (d or 0)
        return math.floor(x * m + 0.5) / m
      end,
    }
    local consts = { pi = math.pi, e = math.exp(1) }

    local expr -- forward declaration

    local function primary()
      local num = take("%d+%.?%d*[eE][%+%-]?%d+") or take("%d+%.?%d*") or take("%.%d+")
      if num then return tonumber(num) end
      if take("%(") then
        local v = expr()
        if not take("%)") then fail("expected ')'") end
        return v
      end
      local name = take("%a%w*")
      if name then
        if consts[name] then return consts[name] end
        local f = funcs[name]
        if not f then fail("unknown name '" .. name .. "'") end
        if not take("%(") then fail("expected '(' after " .. name) end
        local argv = { expr() }
        while take(",") do argv[#argv + 1] = expr() end
        if not take("%)") then fail("expected ')'") end
        return f(table.unpack(argv))
      end
      fail(pos > #src and "unexpected end" or "unexpected '" .. src:sub(pos, pos) .. "'")
    end

    local unary -- forward declaration

    -- power binds tighter than unary minus (-2^2 == -4) and is right associative.
    local function power()
      local base = primary()
      if take("%^") then return base ^ unary() end
      return base
    end

    unary = function()
      if take("%-") then return -unary() end
      if take("%+") then return unary() end
      return power()
    end

    local function term()
      local v = unary()
      while true do
        local op = take("[%*/%%]")
        if not op then return v end
        local r = unary()
        if (op == "/" or op == "%") and r == 0 then fail("division by zero") end
        if op == "*" then v = v * r elseif op == "/" then v = v / r else v = v % r end
      end
    end

    expr = function()
      local v = term()
      while true do
        local op = take("[%+%-]")
        if not op then return v end
        local r = term()
        v = op == "+" and v + r or v - r
      end
    end

    local result = expr()
    skip()
    if pos <= #src then fail("unexpected '" .. src:sub(pos, pos) .. "'") end
    if result ~= result or result == math.huge or result == -math.huge then
      error("the result is not a finite number", 0)
    end
    -- Integral floats read better as integers (2.0 -> 2).
    if math.type(result) == "float" and result == math.floor(result) and math.abs(result) < 2^53 then
      result = math.tointeger(result)
    end
    return { expression = src, result = result }
  end,
}
