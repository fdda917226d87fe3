-- search_flights: direct flights between two airports on a date, from agents/data/flights.json.
-- Two required parameters of the same kind (IATA codes) and a date: the offline model fills
-- both codes from one request by the words before them ("from OSL to LIS"), docs/offline.md.
return {
  name = "search_flights",
  description = "Find direct flights from one airport to another on a given day, with "
    .. "departure and arrival times, airline, flight number and fare.",
  parameters = {
    type = "object",
    properties = {
      origin = {
        type = "string",
        pattern = "^[A-Z]{3}$",
        description = "IATA code of the airport to fly from, e.g. OSL",
      },
      destination = {
        type = "string",
        pattern = "^[A-Z]{3}$",
        description = "IATA code of the airport to fly to, e.g. LIS",
      },
      date = {
        type = "string",
        format = "date",
        description = "Day of departure, YYYY-MM-DD",
      },
    },
    required = { "origin", "destination", "date" },
    additionalProperties = false,
  },
  timeout = 5,
  idempotent = true,
  approval = false,

  run = function(args, ctx)
    if args.origin == args.destination then
      error("origin and destination are the same airport (" .. args.origin .. ")", 0)
    end
    local found = {}
    for _, f in ipairs(ctx.data("flights.json").flights) do
      if f.from == args.origin and f.to == args.destination then
        found[#found + 1] = { flight = f.flight, airline = f.airline, departs = args.date .. "T" .. f.dep,
                              arrives = args.date .. "T" .. f.arr, fare = f.fare, currency = "EUR" }
      end
    end
    return { origin = args.origin, destination = args.destination, date = args.date,
             count = #found, flights = found }
  end,
}
