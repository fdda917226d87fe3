/*
 * otlp_send: post OTLP/HTTP JSON (one ExportTraceServiceRequest per call) to a collector,
 * Langfuse, Phoenix or any OTLP/HTTP receiver, the way the OpenTelemetry exporters do:
 * POST {endpoint}/v1/traces with Content-Type application/json, retried on 429, 502, 503,
 * 504 and transport failures with exponential backoff and full jitter (retry.h), honouring
 * Retry-After; 2xx with a partialSuccess that rejected spans is a failure.
 *
 * For commands, not for the runtime's loop: otlp_send runs a loop of its own until the
 * request is settled. Header values (auth) never appear in messages.
 */
#ifndef AGENTD_OTLP_SEND_H
#define AGENTD_OTLP_SEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct otlp_send_opts {
    const char *url;            /* full URL, see otlp_send_url() */
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    int max_attempts;           /* 0: 5 */
    long timeout_ms;            /* per attempt; 0: 10 s */
    uint64_t base_ms, cap_ms;   /* backoff; 0: 500 ms and 10 s */
} otlp_send_opts_t;

typedef struct otlp_send_result {
    int attempts;      /* requests made */
    int status;        /* HTTP status of the last attempt, 0 if none arrived */
    int64_t rejected;  /* partialSuccess.rejectedSpans of an accepted request */
    char message[512]; /* why it failed (status, the receiver's message), or "" */
} otlp_send_result_t;

/* The traces URL for an endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT is read: "…/v1/traces"
 * is used as given, anything else gets "/v1/traces" appended. Into out; ERR_INVAL (with
 * a message in out) unless the endpoint is an http:// or https:// URL. */
int otlp_send_url(const char *endpoint, char *out, size_t len);

/* Parse OTEL_EXPORTER_OTLP_HEADERS-style "k1=v1,k2=v2" (values may be %-encoded) into
 * "k1: v1" strings appended to list (capacity cap, NULL-terminated, each malloc'd).
 * Returns the new count, or ERR_INVAL for a pair without '=', ERR_NOMEM. */
int otlp_send_env_headers(const char *spec, char **list, int n, int cap);

/* POST body; 0 when the receiver accepted every span, else ERR_HTTP (res->message says
 * why: status and body snippet, or the transport error), ERR_NOMEM. */
int otlp_send(const otlp_send_opts_t *o, const char *body, size_t len, otlp_send_result_t *res);

#endif
