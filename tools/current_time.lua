-- current_time: the date and time now, in UTC or at a fixed offset.
return {
  name = "current_time",
  description = "Get the current date, time and weekday, in UTC or at a UTC offset such as "
    .. "+02:00. Use it whenever the answer depends on today's date (deadlines, how many days "
    .. "since an order was placed, whether a delivery date has passed).",
  parameters = {
    type = "object",
    properties = {
      utc_offset = {
        type = "string",
        description = "Offset from UTC as +HH:MM or -HH:MM; default UTC",
        pattern = "^[+-](0[0-9]|1[0-4]):[0-5][0-9]$",
        examples = { "+02:00", "-05:00" },
      },
    },
    additionalProperties = false,
  },
  timeout = 1,
  idempotent = true,

  run = function(args, ctx)
    local offset = args.utc_offset or "+00:00"
    local sign, hh, mm = offset:match("^([+-])(%d%d):(%d%d)$")
    local shift = (tonumber(hh) * 3600 + tonumber(mm) * 60) * (sign == "-" and -1 or 1)
    local now = ctx.now()
    local secs = math.floor(now)
    local t = os.date("!*t", secs + shift)
    local suffix = shift == 0 and "Z" or offset
    return {
      iso8601 = string.format("%04d-%02d-%02dT%02d:%02d:%02d%s", t.year, t.month, t.day,
        t.hour, t.min, t.sec, suffix),
      date = string.format("%04d-%02d-%02d", t.year, t.month, t.day),
      time = string.format("%02d:%02d:%02d", t.hour, t.min, t.sec),
      weekday = os.date("!%A", secs + shift),
      utc_offset = shift == 0 and "+00:00" or offset,
      unix = secs,
    }
  end,
}
