/*
 * offline_select: which tools the offline model calls for a request.
 *
 * Each tool is a small document: the words of its name, description, parameter names,
 * parameter descriptions and enum values, stemmed. A request word that occurs in a tool's
 * document adds its inverse document frequency over the offered tools (words every tool
 * shares count little), doubled when the word is part of the tool's name; earlier user turns
 * add a third of that. Each identifier-like parameter whose value appears in the request
 * ("1042" for `^[0-9]{4}$`) adds OFFLINE_HIT_BONUS. A tool is wanted when its score reaches
 * OFFLINE_MIN_SCORE and OFFLINE_REL_SCORE of the best score: several tools when several are
 * clearly relevant, none when nothing is. A tool whose name starts with a side-effect verb
 * ("create_ticket", "send_email") scores 0 unless the request names it ("ticket").
 */
#ifndef AGENTD_OFFLINE_SELECT_H
#define AGENTD_OFFLINE_SELECT_H

#include <json-c/json.h>
#include <stddef.h>

#define OFFLINE_MIN_SCORE 1.5
#define OFFLINE_HIT_BONUS 2.0
#define OFFLINE_REL_SCORE 0.3

/* scores[i] for tools[i] (the model_req_t.tools array). 0 or ERR_NOMEM. */
int offline_select_score(json_object *tools, const char *text, const char *history, double *scores);

/* Is tool i wanted given all scores? */
int offline_select_wanted(const double *scores, size_t n, size_t i);

#endif
