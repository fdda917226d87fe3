/*
 * batch_cli: see batch_cli.h. Inputs are read up front (a line is a JSON string, or an
 * object with "input") and recorded in the database, all in one transaction, before the
 * first run starts; each run then takes its input in the unit that creates it
 * (store_batch_take), so a killed batch loses no input and runs none twice. A new run
 * starts whenever one ends, from the machine's on_end observer, so the number in flight
 * stays at the concurrency.
 */
#include "batch_cli.h"

#include "cli.h"
#include "err.h"
#include "proc.h"
#include "jx.h"
#include "schema/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct batch {
    proc_t s;
    char id[40];     /* the batch's id in the database */
    char **inputs;
    int64_t *nums;   /* nums[i]: the number of inputs[i] in the batch (1-based) */
    size_t ninputs, next, started, ended; /* ninputs: inputs to start (lines, or pending) */
    size_t total;                          /* runs to finish: lines + runs taken over */
    size_t done, failed, waiting, start_errors, stopped;
    long steps, tool_calls;
    int64_t tokens;
    double cost;
    int concurrency;
    int json, tty;
    uint64_t t0;
    double last_draw;
} batch_t;

static int add_input(batch_t *b, int64_t n, const char *text)
{
    if (b->ninputs % 64 == 0) {
        char **ni = realloc(b->inputs, (b->ninputs + 64) * sizeof *ni);
        if (ni)
            b->inputs = ni;
        int64_t *nn = ni ? realloc(b->nums, (b->ninputs + 64) * sizeof *nn) : NULL;
        if (!nn)
            return CLI_INTERNAL;
        b->nums = nn;
    }
    if (!(b->inputs[b->ninputs] = strdup(text)))
        return CLI_INTERNAL;
    b->nums[b->ninputs++] = n;
    return 0;
}

static int load_inputs(batch_t *b, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "agentd: %s: cannot open the inputs file\n", path);
        return CLI_USAGE;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int code = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        /* The runtime's one strict parse: invalid UTF-8 and \u0000 (which would cut the
         * input short) are refused here, with the line named, before anything is recorded. */
        json_object *o = NULL, *v = NULL;
        char why[200];
        if (schema_parse_json(line, (size_t)n, &o, why, sizeof why)) {
            fprintf(stderr, "agentd: %s:%zu: %s\n", path, lineno, why);
            code = CLI_USAGE;
            break;
        }
        const char *text = NULL;
        if (o && json_object_is_type(o, json_type_string))
            text = json_object_get_string(o);
        else if (o && json_object_object_get_ex(o, "input", &v) &&
                 json_object_is_type(v, json_type_string))
            text = json_object_get_string(v);
        if (!text || !*text) {
            fprintf(stderr, "agentd: %s:%zu: expected a JSON string or {\"input\": \"...\"}\n",
                    path, lineno);
            json_object_put(o);
            code = CLI_USAGE;
            break;
        }
        code = add_input(b, (int64_t)b->ninputs + 1, text);
        json_object_put(o);
        if (code)
            break;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    if (!code && b->ninputs == 0) {
        fprintf(stderr, "agentd: %s: no inputs (one JSON string per line)\n", path);
        code = CLI_USAGE;
    }
    return code;
}

static void draw(batch_t *b, int force)
{
    if (!b->tty || b->json)
        return;
    double now = (double)loop_mono_ns() / 1e9;
    if (!force && now - b->last_draw < 0.1)
        return;
    b->last_draw = now;
    int width = 30;
    int fill = (int)((double)b->ended / (double)b->total * width);
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu  done %zu  failed %zu  in flight %zu  %.1fs ",
            fill, "##############################", width - fill, "", b->ended, b->total,
            b->done, b->failed, b->started - b->ended,
            (double)(loop_mono_ns() - b->t0) / 1e9);
    fflush(stderr);
}

static void start_more(batch_t *b)
{
    char id[17], err[512];
    /* After a database error (a full disk, say) starting more runs would only fail too;
     * after Ctrl-C the user wants the batch to stop, not its next inputs to start. */
    while (!b->stopped && !b->s.cancelled && b->next < b->ninputs &&
           b->started - b->ended < (size_t)b->concurrency) {
        machine_start_opts_t so = {.batch_id = b->id, .batch_n = b->nums[b->next]};
        const char *in = b->inputs[b->next++];
        if (machine_start_ex(b->s.m, b->s.agent, in, &so, id, err, sizeof err)) {
            fprintf(stderr, "\nagentd: input %lld: %s\n", (long long)so.batch_n, err);
            b->start_errors++;
            b->ended++;
            b->started++;
            continue;
        }
        b->started++;
    }
}

/* --json: one line per finished run, as it ends (the summary object comes last). */
static void print_result(const store_run_t *rec)
{
    json_object *o = json_object_new_object();
    int64_t end = rec->ended_ns ? rec->ended_ns : rec->updated_ns;
    json_object_object_add(o, "run_id", json_object_new_string(rec->id));
    json_object_object_add(o, "input", rec->input ? json_object_new_string(rec->input) : NULL);
    json_object_object_add(o, "state", json_object_new_string(rec->state));
    json_object_object_add(o, "answer", rec->answer ? json_object_new_string(rec->answer) : NULL);
    json_object_object_add(o, "reason", rec->reason[0] ? json_object_new_string(rec->reason) : NULL);
    json_object_object_add(o, "steps", json_object_new_int(rec->step));
    json_object_object_add(o, "tokens", json_object_new_int64(rec->input_tokens + rec->output_tokens));
    json_object_object_add(o, "cost_usd", jx_new_num(rec->cost_usd));
    json_object_object_add(o, "latency_ms",
                           jx_new_num((double)(end - rec->created_ns) / 1e6));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static void on_end(void *ud, const store_run_t *rec)
{
    batch_t *b = ud;
    if (b->json)
        print_result(rec);
    b->ended++;
    if (!strcmp(rec->reason, "store_error"))
        b->stopped++;
    else if (!strcmp(rec->state, "done"))
        b->done++;
    else if (!strcmp(rec->state, "waiting"))
        b->waiting++;
    else
        b->failed++;
    b->steps += rec->step;
    b->tool_calls += rec->tool_calls;
    b->tokens += rec->input_tokens + rec->output_tokens;
    b->cost += rec->cost_usd;
    start_more(b);
    draw(b, 0);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void summary(batch_t *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = (double)(loop_mono_ns() - b->t0) / 1e9;
    double cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    if (b->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "batch", json_object_new_string(b->id));
        json_object_object_add(o, "runs", json_object_new_int64((int64_t)b->total));
        json_object_object_add(o, "done", json_object_new_int64((int64_t)b->done));
        json_object_object_add(o, "failed",
                               json_object_new_int64((int64_t)(b->failed + b->start_errors)));
        json_object_object_add(o, "waiting", json_object_new_int64((int64_t)b->waiting));
        json_object_object_add(o, "stopped_by_store_error",
                               json_object_new_int64((int64_t)b->stopped));
        json_object_object_add(o, "not_started",
                               json_object_new_int64((int64_t)(b->ninputs - b->next)));
        json_object_object_add(o, "steps", json_object_new_int64(b->steps));
        json_object_object_add(o, "tool_calls", json_object_new_int64(b->tool_calls));
        json_object_object_add(o, "wall_s", jx_new_num(wall));
        json_object_object_add(o, "cpu_s", jx_new_num(cpu));
        json_object_object_add(o, "peak_rss_kb", json_object_new_int64(ru.ru_maxrss));
        json_object_object_add(o, "tokens", json_object_new_int64(b->tokens));
        json_object_object_add(o, "cost_usd", jx_new_num(b->cost));
        json_object_object_add(o, "steps_per_s",
                               jx_new_num(wall > 0 ? (double)b->steps / wall : 0));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return;
    }
    if (b->tty)
        fprintf(stderr, "\n");
    printf("batch: %zu runs · %zu done · %zu failed · %zu waiting\n", b->total, b->done,
           b->failed + b->start_errors, b->waiting);
    printf("       %ld steps · %ld tool calls · %lld tokens · $%.4f\n", b->steps, b->tool_calls,
           (long long)b->tokens, b->cost);
    printf("       wall %.2f s · CPU %.2f s · %.0f steps/s · peak RSS %.1f MB\n", wall, cpu,
           wall > 0 ? (double)b->steps / wall : 0, (double)ru.ru_maxrss / 1024);
    if (b->stopped)
        printf("stopped: %zu runs hit a database error and %zu inputs were not started; fix the "
               "cause, then `agentd batch --resume %s` (or `agentd resume --all`) finishes "
               "them\n",
               b->stopped, b->ninputs - b->next, b->id);
    else if (b->s.cancelled && b->next < b->ninputs)
        printf("interrupted: %zu inputs were not started; `agentd batch --resume %s` starts "
               "them\n", b->ninputs - b->next, b->id);
}

/* Thousands of concurrent runs hold thousands of sockets: lift the soft descriptor limit
 * to the hard one. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: agentd batch AGENT.lua INPUTS.jsonl [--concurrency C] [--model M] "
            "[--db PATH] [--traces DIR] [--tools DIR] [--durability full|normal] "
            "[--cache MODE] [--json]\n"
            "       agentd batch --resume [BATCH] [options]\n");
    return CLI_USAGE;
}

/* 48 bits of wall-clock milliseconds and 16 random bits, "b" first so it never reads as a
 * run id: batches sort by creation. */
static void new_batch_id(char id[40])
{
    uint16_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (uint16_t)loop_mono_ns();
    snprintf(id, 40, "b%012llx%04x",
             (unsigned long long)((loop_wall_ns() / 1000000) & 0xffffffffffffull), (unsigned)rnd);
}

/* Record the batch and every input, one transaction, before the first run starts. */
static int record(batch_t *b)
{
    store_batch_t sb;
    memset(&sb, 0, sizeof sb);
    new_batch_id(sb.id);
    snprintf(sb.agent_path, sizeof sb.agent_path, "%s", b->s.agent->path);
    snprintf(sb.model, sizeof sb.model, "%.127s", b->s.model_override);
    sb.concurrency = b->concurrency;
    sb.created_ns = (int64_t)loop_wall_ns();
    snprintf(sb.owner, sizeof sb.owner, "%s", machine_owner(b->s.m));
    sb.lease_until_ns = sb.created_ns + machine_lease_ns();
    int rc = store_batch_create(b->s.st, &sb, (const char *const *)b->inputs, b->ninputs);
    if (rc) {
        fprintf(stderr, "agentd: %s: cannot record the batch's inputs: %s\n",
                store_path(b->s.st), store_errmsg(b->s.st));
        return CLI_INTERNAL;
    }
    snprintf(b->id, sizeof b->id, "%s", sb.id);
    /* With --json the id is in the summary (and stdout/stderr stay JSON lines only). */
    if (!b->json)
        fprintf(stderr, "agentd: batch %s: %zu inputs recorded; if it stops, `agentd batch "
                "--resume %s` finishes them\n", b->id, b->ninputs, b->id);
    return 0;
}

static int take_pending(void *ud, int64_t n, const char *input)
{
    return add_input(ud, n, input) ? ERR_NOMEM : 0;
}

/* --resume: this process takes the batch over and loads the inputs that have no run. */
static int claim(batch_t *b)
{
    int64_t now = (int64_t)loop_wall_ns();
    store_batch_t sb;
    int rc =
        store_batch_claim(b->s.st, b->id, machine_owner(b->s.m), now, now + machine_lease_ns());
    if (rc == ERR_BUSY && store_batch_get(b->s.st, b->id, &sb) == 0) {
        fprintf(stderr, "agentd: batch %s is being driven by %s; not resuming it\n", b->id,
                sb.owner);
        return CLI_USAGE;
    }
    if (!rc)
        rc = store_batch_pending(b->s.st, b->id, take_pending, b);
    if (rc) {
        fprintf(stderr, "agentd: batch %s: %s\n", b->id,
                rc == ERR_NOMEM ? "out of memory" : store_errmsg(b->s.st));
        return CLI_INTERNAL;
    }
    return 0;
}

/* Open everything, record (or take over) the batch, start its inputs, run to the end. */
static int drive(batch_t *b, proc_opts_t *so, const char *inputs_path)
{
    so->quiet_model_note = b->json;
    so->obs = (machine_observer_t){.ud = b, .on_end = on_end};
    b->tty = isatty(2);
    int code = inputs_path ? load_inputs(b, inputs_path) : 0;
    char err[1024];
    if (!code) {
        code = proc_open(&b->s, so, err, sizeof err);
        if (code)
            fprintf(stderr, "agentd: %s\n", err);
    }
    if (!code)
        code = inputs_path ? record(b) : claim(b);
    if (!code) {
        b->t0 = loop_mono_ns();
        size_t reclaimed = (size_t)proc_reclaim(&b->s);
        b->total = b->ninputs + reclaimed; /* taken-over runs end through on_end too */
        b->started += reclaimed;
        start_more(b);
        if (proc_run(&b->s)) {
            fprintf(stderr, "agentd: event loop failed\n");
            code = CLI_INTERNAL;
        } else {
            draw(b, 1);
            summary(b);
            code = b->stopped ? CLI_INTERNAL : b->failed + b->start_errors ? CLI_FAILED : CLI_OK;
        }
    }
    proc_close(&b->s);
    for (size_t i = 0; i < b->ninputs; i++)
        free(b->inputs[i]);
    free(b->inputs);
    free(b->nums);
    return code;
}

/* Continue one recorded batch with its agent, model and concurrency (options given now
 * override them). */
static int resume_one(const char *id, const proc_opts_t *base, int concurrency, int json)
{
    batch_t b;
    memset(&b, 0, sizeof b);
    int code;
    store_t *st = cli_open_db(base->db_path, STORE_OPEN_READ, "agentd batch", &code);
    if (!st)
        return code;
    store_batch_t sb;
    int rc = store_batch_get(st, id, &sb);
    if (rc)
        fprintf(stderr, "agentd: batch %s: %s\n", id,
                rc == ERR_NOTFOUND ? "no such batch in this database"
                : rc == ERR_INVAL  ? "ambiguous id prefix; give more characters"
                                   : store_errmsg(st));
    store_close(st);
    if (rc)
        return rc == ERR_NOTFOUND || rc == ERR_INVAL ? CLI_USAGE : CLI_INTERNAL;
    proc_opts_t so = *base;
    so.agent_path = sb.agent_path;
    if (!so.model && sb.model[0])
        so.model = sb.model;
    snprintf(b.id, sizeof b.id, "%s", sb.id);
    b.concurrency = concurrency ? concurrency : sb.concurrency > 0 ? sb.concurrency : 16;
    b.json = json;
    return drive(&b, &so, NULL);
}

typedef struct ids {
    char (*id)[40];
    size_t n;
} ids_t;

static int collect_batch(void *ud, const char *id, const char *agent_path)
{
    (void)agent_path;
    ids_t *ids = ud;
    char(*ni)[40] = realloc(ids->id, (ids->n + 1) * sizeof *ni);
    if (!ni)
        return 1;
    ids->id = ni;
    snprintf(ids->id[ids->n++], 40, "%s", id);
    return 0;
}

int batch_cli_resume_orphans(const proc_opts_t *base, int concurrency, int json)
{
    int code;
    store_t *st = cli_open_db(base->db_path, STORE_OPEN_READ, "agentd batch", &code);
    if (!st)
        return code;
    ids_t ids = {0};
    int rc = store_batches_orphaned(st, (int64_t)loop_wall_ns(), collect_batch, &ids);
    if (rc)
        fprintf(stderr, "agentd: cannot list unfinished batches: %s\n", store_errmsg(st));
    store_close(st);
    code = rc ? CLI_INTERNAL : CLI_OK;
    for (size_t i = 0; i < ids.n; i++) {
        int c = resume_one(ids.id[i], base, concurrency, json);
        if (c > code)
            code = c;
    }
    free(ids.id);
    return code;
}

int batch_cli_main(int argc, char **argv)
{
    batch_t b;
    memset(&b, 0, sizeof b);
    b.concurrency = 16;
    proc_opts_t so;
    memset(&so, 0, sizeof so);
    const char *pos[2];
    int npos = 0, resume = 0, concurrency_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
#define OPT(name) CLI_OPT(name, return CLI_USAGE)
        if (!strcmp(argv[i], "--json")) {
            b.json = 1;
            continue;
        }
        if (!strcmp(argv[i], "--resume")) {
            resume = 1;
            continue;
        }
        OPT("--concurrency") {
            long n = cli_long("--concurrency", val, 1, 100000);
            if (n < 0)
                return CLI_USAGE;
            b.concurrency = (int)n;
            concurrency_set = 1;
            continue;
        }
        OPT("--model") { so.model = val; continue; }
        OPT("--db") { so.db_path = val; continue; }
        OPT("--traces") { so.traces_dir = val; continue; }
        OPT("--tools") { so.tools_dir = val; continue; }
        OPT("--cache") { so.cache_mode = val; continue; }
        OPT("--durability") {
            if (strcmp(val, "full") && strcmp(val, "normal")) {
                fprintf(stderr, "agentd: --durability: expected full or normal\n");
                return CLI_USAGE;
            }
            so.durability = strcmp(val, "normal") ? STORE_DURABLE_FULL : STORE_DURABLE_NORMAL;
            continue;
        }
#undef OPT
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "agentd: %s: unknown option\n", argv[i]);
            return usage();
        }
        if (npos == 2)
            return usage();
        pos[npos++] = argv[i];
    }
    raise_nofile();
    if (resume) {
        if (npos > 1)
            return usage();
        int c = concurrency_set ? b.concurrency : 0;
        return npos ? resume_one(pos[0], &so, c, b.json)
                    : batch_cli_resume_orphans(&so, c, b.json);
    }
    if (npos != 2)
        return usage();
    so.agent_path = pos[0];
    return drive(&b, &so, pos[1]);
}
