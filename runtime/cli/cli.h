/*
 * cli: small helpers shared by the command-line entry points (main.c and the *_cli.c
 * files): option matching and the resolution of paths users expect defaults for.
 */
#ifndef AGENTD_CLI_H
#define AGENTD_CLI_H

#include <stddef.h>

/* Exit codes of every agentd command (documented in `agentd help` and the README). */
enum {
    CLI_OK = 0,       /* success; for run: the run ended done */
    CLI_FAILED = 1,   /* the run ended failed or cancelled; or: invalid (schema check) */
    CLI_USAGE = 2,    /* bad command line or bad input file */
    CLI_WAITING = 3,  /* the run waits for a human approval */
    CLI_INTERNAL = 4, /* database or internal error; committed state is kept */
};

/* Match "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past the value.
 * Returns 1 on match (value in *out), 0 when not this option, -1 when the value is missing
 * (a message naming the option is printed). */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **out);
/* The one option macro, for a `for (int i = 1; i < argc; i++)` loop with `const char *val;
 * int m;` in scope: `CLI_OPT("--name", return CLI_USAGE) { use val; continue; }` runs its
 * block when argv[i] is --name VALUE or --name=VALUE, and the second argument (a statement)
 * when the value is missing. */
#define CLI_OPT(name, on_missing)                                                          \
    if ((m = cli_opt(argc, argv, &i, (name), &val)) < 0) {                                 \
        on_missing;                                                                        \
    } else if (m > 0)

/* The database: explicit (--db), else $AGENTD_DB, else "agentd.db" in the working
 * directory. A file path, or a postgres:// URL (db.h: db_is_url). */
const char *cli_db_path(const char *explicit_path);

/* The traces folder of a database: explicit_dir (--traces) when given, else
 * $AGENTD_TRACES, else beside the database file: "traces" for one named agentd.db, else
 * "<name>.traces" (copy.db -> copy.traces), so two databases never share trace files and
 * `gc` on one never touches another's. A PostgreSQL URL has no folder beside it: "traces" in
 * the working directory (each host keeps the trace files of the runs it drove). Written
 * into buf (len bytes); returns buf. */
const char *cli_traces_dir(const char *db_path, const char *explicit_dir, char *buf, size_t len);

typedef struct store store_t;
/* Open the existing database of a command (--db, $AGENTD_DB or ./agentd.db) with
 * store_open_existing (STORE_OPEN_READ for commands that only read). On failure prints one
 * line prefixed by who ("agentd runs") and returns NULL with *code: CLI_USAGE when there is
 * no such file, CLI_INTERNAL for any database error. */
store_t *cli_open_db(const char *db_opt, int mode, const char *who, int *code);

/* Parse a positive integer option value; -1 with a message naming the option if bad. */
long cli_long(const char *opt, const char *value, long min, long max);

/* The whole file at path, NUL-terminated, malloc'd (*len: its size, may be NULL); NULL when
 * it cannot be read. */
char *cli_read_file(const char *path, size_t *len);

#endif
