-- find_hotels: hotels with rooms free between two dates, from agents/data/flights.json.
-- check_in and check_out are both dates: the offline model puts each date where the words
-- before it say ("check in 2026-12-20, check out 2026-12-24"), docs/offline.md.
return {
  name = "find_hotels",
  description = "Find hotels in a city with a room free from the check-in date to the "
    .. "check-out date, with the price per night and the total for the stay.",
  parameters = {
    type = "object",
    properties = {
      city = {
        type = "string",
        enum = { "Lisbon", "Oslo", "Porto" },
        description = "The city",
      },
      check_in = { type = "string", format = "date", description = "Arrival day, YYYY-MM-DD" },
      check_out = { type = "string", format = "date", description = "Departure day, YYYY-MM-DD" },
    },
    required = { "city", "check_in", "check_out" },
    additionalProperties = false,
  },
  timeout = 5,
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    local function day(s)
      local y, m, d = s:match("^(%d+)-(%d+)-(%d+)$")
      return os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 })
    end
    local nights = math.floor((day(args.check_out) - day(args.check_in)) / 86400 + 0.5)
    if nights < 1 then
      error("check_out (" .. args.check_out .. ") must be after check_in (" .. args.check_in .. ")", 0)
    end
    local found = {}
    for _, h in ipairs(ctx.data("flights.json").hotels) do
      if h.city == args.city then
        found[#found + 1] = { hotel = h.name, per_night = h.price, total = h.price * nights,
                              currency = "EUR" }
      end
    end
    return { city = args.city, check_in = args.check_in, check_out = args.check_out,
             nights = nights, count = #found, hotels = found }
  end,
}
