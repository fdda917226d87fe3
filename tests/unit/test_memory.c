/*
 * Unit tests for memory (long-term memory over rag): scopes from the agent's kind and the
 * run, remember is idempotent per text, recall ranks within one scope only, forget removes
 * one memory or a scope, list shows scopes and memories, odd names map to distinct KBs.
 */
#include "check.h"
#include "err.h"
#include "memory/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_scope(void)
{
    char b[200];
    CHECK(memory_scope(NULL, "a", "u", "s", "r", b, sizeof b) == NULL);
    CHECK_EQ_STR(memory_scope("user", "a", "ava", "s", "r", b, sizeof b), "a/user/ava");
    CHECK_EQ_STR(memory_scope("user", "a", "", "s", "r", b, sizeof b), "");
    CHECK_EQ_STR(memory_scope("session", "a", "u", "demo", "r", b, sizeof b), "a/session/demo");
    CHECK_EQ_STR(memory_scope("session", "a", "u", "", "r1", b, sizeof b), "a/session/r1");
    CHECK_EQ_STR(memory_scope("agent", "a", "u", "s", "r", b, sizeof b), "a");
    unsetenv("AGENTD_MEMORY_DB");
    CHECK_EQ_STR(memory_db_path("/x/agentd.db", b, sizeof b), "/x/agentd.memory.db");
    CHECK_EQ_STR(memory_db_path("runs", b, sizeof b), "runs.memory.db");
    setenv("AGENTD_MEMORY_DB", "/y/m.db", 1);
    CHECK_EQ_STR(memory_db_path("/x/agentd.db", b, sizeof b), "/y/m.db");
    unsetenv("AGENTD_MEMORY_DB");
}

static void test_remember_recall(void)
{
    char path[] = "/tmp/agentd-memXXXXXX", db[300], err[512] = "";
    CHECK(mkdtemp(path) != NULL);
    snprintf(db, sizeof db, "%s/m.db", path);
    rag_t *r = rag_open(db, err, sizeof err);
    CHECK(r != NULL);
    if (!r)
        return;
    char id1[24], id2[24], id3[24];
    CHECK(memory_remember(r, "a/user/ava", "Ava prefers delivery to the pickup point", id1, err,
                          sizeof err) == 0);
    CHECK(memory_remember(r, "a/user/ava", "Ava's order number is 1042", id2, err, sizeof err) == 0);
    CHECK(memory_remember(r, "a/user/ava", "Ava prefers delivery to the pickup point", id3, err,
                          sizeof err) == 0);
    CHECK_EQ_STR(id1, id3); /* the same fact is one memory */
    CHECK(strcmp(id1, id2) != 0);
    CHECK(memory_remember(r, "a/user/b o/b", "Bob likes tea", id3, err, sizeof err) == 0);
    json_object *out = NULL;
    CHECK(memory_recall(r, "a/user/ava", "pickup point delivery", 5, &out, err, sizeof err) == 0);
    CHECK(out && json_object_array_length(out) >= 1);
    if (out && json_object_array_length(out))
        CHECK_EQ_STR(json_object_get_string(json_object_object_get(
                         json_object_array_get_idx(out, 0), "id")), id1);
    CHECK(out && !strstr(json_object_to_json_string(out), "tea")); /* not another scope's */
    json_object_put(out);
    /* A scope with nothing saved recalls nothing, without an error. */
    CHECK(memory_recall(r, "a/user/nobody", "tea", 5, &out, err, sizeof err) == 0);
    CHECK(out && json_object_array_length(out) == 0);
    json_object_put(out);
    /* list: scopes (names decoded back), then one scope's memories */
    CHECK(memory_list(r, NULL, &out, err, sizeof err) == 0);
    const char *s = out ? json_object_to_json_string(out) : "";
    CHECK(strstr(s, "a\\/user\\/ava") && strstr(s, "a\\/user\\/b o\\/b"));
    json_object_put(out);
    CHECK(memory_list(r, "a/user/ava", &out, err, sizeof err) == 0);
    CHECK(out && json_object_array_length(out) == 2);
    json_object_put(out);
    /* forget one, then the scope */
    CHECK(memory_forget(r, "a/user/ava", id2, err, sizeof err) == 0);
    CHECK(memory_forget(r, "a/user/ava", id2, err, sizeof err) == ERR_NOTFOUND);
    CHECK(strstr(err, "no memory") != NULL);
    CHECK(memory_list(r, "a/user/ava", &out, err, sizeof err) == 0);
    CHECK(out && json_object_array_length(out) == 1);
    json_object_put(out);
    CHECK(memory_forget(r, "a/user/ava", NULL, err, sizeof err) == 0);
    CHECK(memory_list(r, "a/user/ava", &out, err, sizeof err) == ERR_NOTFOUND);
    CHECK(memory_remember(r, "a", "", id1, err, sizeof err) == ERR_INVAL);
    rag_close(r);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", path);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    RUN(test_scope);
    RUN(test_remember_recall);
    return check_report();
}
