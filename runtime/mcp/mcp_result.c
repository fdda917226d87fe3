/*
 * mcp_result: JSON-RPC message builders and the mapping between an MCP tools/call result and
 * agentd's tool result, in both directions.
 */
#include "mcp_int.h"

#include "err.h"

#include <stdio.h>
#include <string.h>

/* Bytes of text kept from an error result for the model. */
#define ERROR_TEXT_MAX 900

const char *const mcp_versions[] = {MCP_PROTOCOL_VERSION, "2025-06-18", "2025-03-26",
                                    "2024-11-05", NULL};

int mcp_version_known(const char *v)
{
    for (int i = 0; v && mcp_versions[i]; i++)
        if (strcmp(v, mcp_versions[i]) == 0)
            return 1;
    return 0;
}

static json_object *base(void)
{
    json_object *m = json_object_new_object();
    if (m)
        json_object_object_add(m, "jsonrpc", json_object_new_string("2.0"));
    return m;
}

json_object *mcp_msg_request(int64_t id, const char *method, json_object *params_take)
{
    json_object *m = base();
    if (!m) {
        json_object_put(params_take);
        return NULL;
    }
    json_object_object_add(m, "id", json_object_new_int64(id));
    json_object_object_add(m, "method", json_object_new_string(method));
    if (params_take)
        json_object_object_add(m, "params", params_take);
    return m;
}

json_object *mcp_msg_notify(const char *method, json_object *params_take)
{
    json_object *m = base();
    if (!m) {
        json_object_put(params_take);
        return NULL;
    }
    json_object_object_add(m, "method", json_object_new_string(method));
    if (params_take)
        json_object_object_add(m, "params", params_take);
    return m;
}

json_object *mcp_msg_result(json_object *id, json_object *result_take)
{
    json_object *m = base();
    if (!m) {
        json_object_put(result_take);
        return NULL;
    }
    json_object_object_add(m, "id", json_object_get(id));
    json_object_object_add(m, "result", result_take ? result_take : json_object_new_object());
    return m;
}

json_object *mcp_msg_error(json_object *id, int code, const char *message)
{
    json_object *m = base();
    if (!m)
        return NULL;
    json_object *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(m, "id", json_object_get(id)); /* null when unknown */
    json_object_object_add(m, "error", e);
    return m;
}

const char *mcp_msg_text(json_object *msg, size_t *len)
{
    return json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE,
                                             len);
}

static const char *str_field(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* Text items joined by newlines; NULL when some item is not text. */
static int all_text(json_object *content)
{
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        const char *t = str_field(json_object_array_get_idx(content, i), "type");
        if (!t || strcmp(t, "text") != 0 ||
            !str_field(json_object_array_get_idx(content, i), "text"))
            return 0;
    }
    return 1;
}

static json_object *joined_text(json_object *content)
{
    size_t n = json_object_array_length(content), total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(str_field(json_object_array_get_idx(content, i), "text")) + 1;
    char *buf = malloc(total + 1);
    if (!buf)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = str_field(json_object_array_get_idx(content, i), "text");
        size_t l = strlen(t);
        if (i)
            buf[off++] = '\n';
        memcpy(buf + off, t, l);
        off += l;
    }
    json_object *s = json_object_new_string_len(buf, (int)off);
    free(buf);
    return s;
}

/* The content list with base64 payloads (images, audio, blobs) replaced by their size: the
 * model cannot read them, and they would fill its context. */
static json_object *summarised(json_object *content)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0; out && i < json_object_array_length(content); i++) {
        json_object *item = json_object_array_get_idx(content, i), *copy = NULL, *res;
        if (json_object_deep_copy(item, &copy, NULL) != 0)
            break;
        const char *data = str_field(copy, "data");
        if (data) {
            json_object_object_add(copy, "bytes", json_object_new_int64((int64_t)strlen(data) *
                                                                        3 / 4));
            json_object_object_del(copy, "data");
        }
        if (json_object_object_get_ex(copy, "resource", &res) && str_field(res, "blob")) {
            json_object_object_add(res, "bytes", json_object_new_int64(
                                                     (int64_t)strlen(str_field(res, "blob")) *
                                                     3 / 4));
            json_object_object_del(res, "blob");
        }
        json_object_array_add(out, copy);
    }
    return out;
}

int mcp_result_to_tool(json_object *result, const schema_t *out_schema, json_object **out,
                       char *err, size_t errlen)
{
    json_object *content = NULL, *sc = NULL, *ie;
    if (!json_object_is_type(result, json_type_object))
        return err_set(err, errlen, ERR_PROTO, "the server's tools/call result is not an object");
    json_object_object_get_ex(result, "content", &content);
    json_object_object_get_ex(result, "structuredContent", &sc);
    if (content && !json_object_is_type(content, json_type_array))
        content = NULL;
    int is_error = json_object_object_get_ex(result, "isError", &ie) &&
                   json_object_get_boolean(ie);
    if (is_error) {
        char text[ERROR_TEXT_MAX + 1] = "";
        size_t off = 0;
        for (size_t i = 0; content && i < json_object_array_length(content); i++) {
            const char *t = str_field(json_object_array_get_idx(content, i), "text");
            if (t && off < ERROR_TEXT_MAX)
                off += (size_t)snprintf(text + off, sizeof text - off, "%s%s", off ? " " : "", t);
        }
        return err_set(err, errlen, ERR_INVAL, "%s",
                       off ? text : "the tool reported an error without a message");
    }
    if (out_schema) {
        if (!sc)
            return err_set(err, errlen, ERR_PROTO,
                           "the tool declares an outputSchema but returned no structuredContent");
        char msg[600];
        if (schema_check(out_schema, sc, msg, sizeof msg) != 0)
            return err_set(err, errlen, ERR_PROTO,
                           "structuredContent does not match the tool's outputSchema: %s", msg);
    }
    json_object *r = NULL;
    if (sc)
        r = json_object_get(sc);
    else if (!content || json_object_array_length(content) == 0)
        r = json_object_new_string("");
    else if (all_text(content))
        r = joined_text(content);
    else
        r = summarised(content);
    if (!r)
        return err_set(err, errlen, ERR_NOMEM, "out of memory");
    *out = r;
    return 0;
}

json_object *mcp_result_from_tool(const tools_result_t *r)
{
    json_object *res = json_object_new_object(), *content = json_object_new_array(),
                *item = json_object_new_object();
    if (!res || !content || !item) {
        json_object_put(res);
        json_object_put(content);
        json_object_put(item);
        return NULL;
    }
    int ok = r->status == TC_OK;
    json_object_object_add(item, "type", json_object_new_string("text"));
    if (ok && json_object_is_type(r->result, json_type_string))
        json_object_object_add(item, "text", json_object_get(r->result));
    else if (ok)
        json_object_object_add(item, "text", json_object_new_string(
                                                 r->result ? mcp_msg_text(r->result, NULL)
                                                           : "null"));
    else if (r->status == TC_TIMEOUT || r->status == TC_REJECTED) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s: %s", tcall_state_name(r->status), r->error ? r->error : "");
        json_object_object_add(item, "text", json_object_new_string(msg));
    } else
        json_object_object_add(item, "text", json_object_new_string(r->error ? r->error
                                                                             : tcall_state_name(r->status)));
    json_object_array_add(content, item);
    json_object_object_add(res, "content", content);
    /* An object result is also given as structured content, for clients that read it. */
    if (ok && json_object_is_type(r->result, json_type_object))
        json_object_object_add(res, "structuredContent", json_object_get(r->result));
    json_object_object_add(res, "isError", json_object_new_boolean(!ok));
    return res;
}
