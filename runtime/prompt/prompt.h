/*
 * prompt: prompts as files. A system prompt (or any template) is text with named variables
 * written {{name}} (spaces inside the braces allowed; names are letters, digits, _ . -).
 * Rendering fills every variable from the caller's values, then the agent's defaults; a
 * variable with no value is an error naming it, so a run never reaches a model with a hole
 * in its prompt. Prompts are identified by a content hash (FNV-1a 64, hex) and, when the
 * file is tracked by git, the commit that last changed it.
 *
 * No global state; nothing here touches the loop. prompt_git_commit runs `git` once
 * (blocking, milliseconds): call it when an agent is loaded, never from a loop callback.
 */
#ifndef AGENTD_PROMPT_H
#define AGENTD_PROMPT_H

#include <json-c/json.h>
#include <stddef.h>

/* FNV-1a 64 of text as 16 hex digits + NUL. */
void prompt_hash(const char *text, char out[17]);

/* Does text contain a {{variable}}? */
int prompt_has_vars(const char *text);

/* Each distinct variable name of tmpl, in order of first use; cb returns nonzero to stop.
 * ERR_INVAL with "line N: ..." in errbuf for a {{ without its }} or an empty/bad name. */
typedef int (*prompt_var_fn)(void *ud, const char *name);
int prompt_vars_each(const char *tmpl, prompt_var_fn cb, void *ud, char *errbuf, size_t errlen);

/* Render tmpl: each {{name}} becomes vars[name], else defaults[name] (objects of strings,
 * numbers or booleans; either may be NULL). *out is malloc'd on success. ERR_INVAL naming
 * the first missing variable (and every other one, comma-separated) in errbuf. */
int prompt_render(const char *tmpl, json_object *vars, json_object *defaults, char **out,
                  char *errbuf, size_t errlen);

/* The commit (40 hex + NUL) that last changed path, when path is tracked by git and git is
 * installed; ERR_NOTFOUND otherwise (untracked, no repository, no git). *dirty is set when
 * the file differs from that commit (may be NULL). */
int prompt_git_commit(const char *path, char out[41], int *dirty);

/* Parse "name=value" (a --var argument) into obj. ERR_INVAL with a message when there is
 * no '=' or the name is not a variable name. */
int prompt_var_arg(json_object *obj, const char *arg, char *errbuf, size_t errlen);

#endif
