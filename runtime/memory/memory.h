/*
 * memory: long-term memory for agents (docs/memory.md) — facts a run saves and later runs
 * recall, kept in knowledge bases of the retrieval module (rag/rag.h), one per scope.
 *
 * A scope says whose memories a run shares, from the agent's memory.long_term:
 *   "user"     AGENT/user/NAME      runs started with --user NAME (any session)
 *   "session"  AGENT/session/NAME   the turns of one session (a run outside one: the run)
 *   "agent"    AGENT                every run of the agent
 * A scope is stored as the KB "memory.AGENT[.KIND.KEY]" (bytes outside [0-9A-Za-z-] written
 * as _XX, so any name maps to a valid, distinct KB name). A memory is one document of it,
 * named m-<FNV-1a 64 of its text>: the same fact saved twice is one memory, so remembering is
 * idempotent. Retrieval is the module's hybrid search (BM25 + offline-embedded vectors).
 *
 * Storage: a database of its own, $AGENTD_MEMORY_DB, else beside the run database
 * (agentd.db -> agentd.memory.db). Not the run database: a tool writes memories while the
 * machine's group-commit transaction on that database may be open on the same thread, and
 * a second connection would wait on it. Memories outlive runs and sessions (gc and
 * `sessions rm` leave them); `agentd memory rm` deletes them.
 *
 * Synchronous, on the caller's thread (the offline embedder takes microseconds). No globals.
 */
#ifndef AGENTD_MEMORY_H
#define AGENTD_MEMORY_H

#include "rag/rag.h"

#include <json-c/json.h>
#include <stddef.h>

/* The run's scope for an agent whose memory.long_term is kind: the scope text in buf, ""
 * when kind is "user" and user is empty (ctx.memory then says how to give one), NULL when
 * kind is NULL (no long-term memory). */
const char *memory_scope(const char *kind, const char *agent, const char *user,
                         const char *session, const char *run_id, char *buf, size_t len);

/* $AGENTD_MEMORY_DB, else run_db with ".db" replaced by ".memory.db" (appended otherwise);
 * agentd.memory.db in the working directory when run_db is a PostgreSQL URL. */
const char *memory_db_path(const char *run_db, char *buf, size_t len);

/* Save text under scope: *id gets its id (m-<16 hex>). 0 or ERR_* with err. */
int memory_remember(rag_t *r, const char *scope, const char *text, char id[24], char *err,
                    size_t errlen);
/* New array of up to k {"id","text","score"}, best first ([] when the scope has none). */
int memory_recall(rag_t *r, const char *scope, const char *query, int k, json_object **out,
                  char *err, size_t errlen);
/* Delete one memory (id), or the whole scope (id NULL). ERR_NOTFOUND names what is missing. */
int memory_forget(rag_t *r, const char *scope, const char *id, char *err, size_t errlen);
/* New array: with scope NULL, every scope {"scope","memories"}; else the scope's memories
 * {"id","text","saved_ns"} oldest first. */
int memory_list(rag_t *r, const char *scope, json_object **out, char *err, size_t errlen);

#endif
