/*
 * otlp_content: opt-in content capture for the OTLP export (`agentd trace export
 * --content`). Adds what the conversation said to a run's span tree, as the GenAI semantic
 * conventions shape it, so Langfuse, Phoenix and other backends show the generations:
 *   chat spans      gen_ai.system_instructions  [{"type":"text","content":…}]
 *                   gen_ai.input.messages       [{"role":…,"parts":[…]}]  (the request)
 *                   gen_ai.output.messages      [{"role":"assistant","parts":[…],
 *                                                 "finish_reason":…}]     (the reply)
 *                   gen_ai.tool.definitions     [{"type":"function","name",…}]
 *   invoke_agent    gen_ai.input.messages (the user's input), gen_ai.output.messages
 *                   (the final answer), gen_ai.system_instructions
 * Parts: {"type":"text","content"}, {"type":"tool_call","id","name","arguments"} and
 * {"type":"tool_call_response","id","response"}. Text is passed through trace_redact
 * (trace.h), so a secret a tool echoed does not leave in an export.
 *
 * Without content capture the exporter leaves content out (otlp.h OTLP_CONTENT), as the
 * conventions ask: tool arguments and results and the run's input are content too.
 */
#ifndef AGENTD_OTLP_CONTENT_H
#define AGENTD_OTLP_CONTENT_H

#include "spantree.h"

#include <json-c/json.h>

/* Add content attributes to the spans of run run_id in m: its invoke_agent span (whose id
 * is the run id) and the chat spans below it that are not a sub-agent's (a sub-run has an
 * invoke_agent root of its own; call again with its id and messages). messages: the run's
 * stored conversation in order (model.h neutral format; index i = message i), borrowed.
 * tools: the tool definitions the agent offered ([{"name","description","parameters"}],
 * tools.h), borrowed, may be NULL. A chat span's request is the first agentd.messages
 * messages and its reply the next one. Flattens m. 0 or ERR_NOMEM. */
int otlp_content_add(spantree_t *m, const char *run_id, json_object *messages, json_object *tools);

#endif
