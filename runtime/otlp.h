/*
 * otlp: a run's span tree as OTLP/JSON (the OpenTelemetry protocol's JSON encoding,
 * opentelemetry-proto ExportTraceServiceRequest == TracesData), following the GenAI
 * semantic conventions: `invoke_agent {agent}` root, plan/act/observe state spans,
 * `chat {model}` (kind CLIENT), `execute_tool {tool}`.
 *
 * Encoding rules applied (OTLP spec, "JSON Protobuf Encoding"): field names lowerCamelCase;
 * traceId/spanId as lowercase hex (32 and 16 characters), not base64; 64-bit integers
 * (times, intValue) as decimal strings; enums (kind, status code) as integers.
 * The trace id is derived from the run id only, so a run that crashed and was resumed is
 * still one trace. Instant spans (retries, guardrail decisions) become span events of
 * their parent; spans never closed end at the run's last event and carry
 * agentd.span.unfinished=true.
 */
#ifndef AGENTD_OTLP_H
#define AGENTD_OTLP_H

#include "spantree.h"

#include <json-c/json.h>
#include <stdio.h>

/* Trace id for a run: its 16-hex id twice; a 32-hex id as is; anything else hashed. */
void otlp_trace_id(const char *run_id, char out[33]);
/* Span id: a 16-hex id lowercased; anything else hashed to 16 hex. */
void otlp_span_id(const char *id, char out[17]);

/* Flags. OTLP_CONTENT: export what the conversation said (messages, tool arguments and
 * results, the run's input; otlp_content.h adds the messages). Without it those attributes
 * are left out, as the GenAI conventions ask of instrumentation by default. */
enum { OTLP_CONTENT = 1 };

/* New TracesData object for the run in m. Calls spantree_flatten(m, 1) to resolve parent
 * links (the rows change; collapsed spans are still exported). NULL on ENOMEM or when the
 * model holds no spans. */
json_object *otlp_build(spantree_t *m, int flags);

/* Write the run as one TracesData JSON object plus '\n'. 0, ERR_INVAL (no spans),
 * ERR_NOMEM or ERR_IO. */
int otlp_write(spantree_t *m, int flags, FILE *out);

#endif
