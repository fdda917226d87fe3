/*
 * eval_report: everything read from a results document — the table and summary, JUnit XML,
 * and the regression gate against a baseline (an earlier results document).
 */
#include "eval_int.h"

#include "buf.h"
#include "err.h"
#include "jx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double dget(json_object *o, const char *k)
{
    json_object *v = jx_get(o, k);
    return v ? json_object_get_double(v) : 0;
}

/* One line of text: newlines and tabs become spaces, cut to max bytes with "...". */
static const char *oneline(const char *s, size_t max, char *buf, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 4 < len; i++) {
        if (j >= max) {
            memcpy(buf + j, "...", 3);
            j += 3;
            break;
        }
        buf[j++] = s[i] == '\n' || s[i] == '\t' || s[i] == '\r' ? ' ' : s[i];
    }
    buf[j] = 0;
    return buf;
}

static void print_matrix(FILE *f, json_object *vars);

void eval_print(FILE *f, json_object *r)
{
    json_object *vars = jx_get(r, "variants");
    for (size_t vi = 0; vi < json_object_array_length(vars); vi++) {
        json_object *v = json_object_array_get_idx(vars, vi), *cases = jx_get(v, "cases");
        json_object *sum = jx_get(v, "summary");
        int repeat = (int)jx_int(v, "repeat", 1);
        fprintf(f, "%seval %s · %s · %s · %zu cases × %d\n", vi ? "\n" : "",
                jx_str_or(r, "eval", ""), jx_str_or(r, "eval_id", ""), jx_str_or(v, "name", ""),
                json_object_array_length(cases), repeat);
        fprintf(f, "  %-28s %-10s %-6s %5s %8s %7s %9s  %s\n", "CASE", "FAMILY", "RESULT", "SCORE",
                "LATENCY", "TOKENS", "COST", "REASON");
        for (size_t i = 0; i < json_object_array_length(cases); i++) {
            json_object *c = json_object_array_get_idx(cases, i), *at = jx_get(c, "attempts");
            size_t n = json_object_array_length(at);
            double lat = 0, cost = 0, tok = 0;
            const char *reason = NULL;
            for (size_t k = 0; k < n; k++) {
                json_object *a = json_object_array_get_idx(at, k);
                lat += dget(a, "latency_ms");
                cost += dget(a, "cost_usd");
                tok += dget(a, "tokens");
                if (!reason && !json_object_get_boolean(jx_get(a, "pass")))
                    reason = jx_str(a, "reason");
            }
            if (!reason && n)
                reason = jx_str(json_object_array_get_idx(at, 0), "reason");
            char res[32], rbuf[200], idb[64];
            int passes = (int)jx_int(c, "passes", 0);
            if (repeat > 1)
                snprintf(res, sizeof res, "%d/%zu%s", passes, n,
                         json_object_get_boolean(jx_get(c, "flaky")) ? "~" : "");
            else
                snprintf(res, sizeof res, "%s", passes ? "pass" : "FAIL");
            double dn = n ? (double)n : 1;
            fprintf(f, "  %-28s %-10s %-6s %5.2f %5.0f ms %7.0f $%8.6f  %s\n",
                    oneline(jx_str_or(c, "id", ""), 25, idb, sizeof idb),
                    jx_str_or(c, "family", ""), res, dget(c, "score"), lat / dn, tok / dn,
                    cost / dn, oneline(reason ? reason : "", 90, rbuf, sizeof rbuf));
        }
        fprintf(f, "summary %s: pass rate %.1f%% (%lld/%lld)", jx_str_or(v, "name", ""),
                dget(sum, "pass_rate") * 100, (long long)jx_int(sum, "passed", 0),
                (long long)jx_int(sum, "attempts", 0));
        if (repeat > 1)
            fprintf(f, " · pass@%d %.1f%% · pass^%d %.1f%% · flaky %lld", repeat,
                    dget(sum, "pass_at_k") * 100, repeat, dget(sum, "pass_all_k") * 100,
                    (long long)jx_int(sum, "flaky", 0));
        fprintf(f,
                " · latency p50 %.0f ms, p95 %.0f ms · errors %.1f%% · cost $%.4f "
                "($%.6f/case) · %lld tokens\n",
                dget(sum, "p50_latency_ms"), dget(sum, "p95_latency_ms"),
                dget(sum, "error_rate") * 100, dget(sum, "cost_usd"),
                dget(sum, "cost_per_case_usd"), (long long)jx_int(sum, "tokens", 0));
        fprintf(f, "  by variant family:");
        static const char *const order[] = {"original", "paraphrase", "typos",
                                            "casing",   "whitespace", NULL};
        json_object *fam = jx_get(v, "families");
        for (size_t k = 0; order[k]; k++) {
            json_object *fo = jx_get(fam, order[k]);
            if (fo)
                fprintf(f, " %s %lld/%lld (%.0f%%)", order[k], (long long)jx_int(fo, "passed", 0),
                        (long long)jx_int(fo, "attempts", 0), dget(fo, "pass_rate") * 100);
        }
        fprintf(f, "\n");
    }
    print_matrix(f, vars);
    json_object *errs = jx_get(r, "harness_errors");
    for (size_t i = 0; i < json_object_array_length(errs); i++)
        fprintf(f, "harness error: %s\n",
                json_object_get_string(json_object_array_get_idx(errs, i)));
}

/* With several variants (a model or agent matrix): their figures side by side, and the
 * cases whose outcome differs between them. */
/* Print the row without its trailing blanks, and empty it. */
static void put_row(FILE *f, buf_t *row)
{
    const char *t = buf_str(row);
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ')
        n--;
    fprintf(f, "%.*s\n", (int)n, t);
    buf_reset(row);
}

static void print_matrix(FILE *f, json_object *vars)
{
    size_t nv = json_object_array_length(vars);
    if (nv < 2)
        return;
    char cell[64];
    buf_t row = {0};
    buf_addf(&row, "\nside by side%*s", 14, "");
    for (size_t i = 0; i < nv; i++)
        buf_addf(&row, " %-24.24s", jx_str_or(json_object_array_get_idx(vars, i), "name", ""));
    put_row(f, &row);
    static const struct {
        const char *label, *key;
        int kind; /* 0 percent, 1 ms, 2 dollars */
    } rows[] = {{"pass rate", "pass_rate", 0},
                {"p50 latency", "p50_latency_ms", 1},
                {"p95 latency", "p95_latency_ms", 1},
                {"error rate", "error_rate", 0},
                {"cost", "cost_usd", 2},
                {"cost per case", "cost_per_case_usd", 2}};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        buf_addf(&row, "  %-24s", rows[r].label);
        for (size_t i = 0; i < nv; i++) {
            double x = dget(jx_get(json_object_array_get_idx(vars, i), "summary"), rows[r].key);
            if (rows[r].kind == 0)
                snprintf(cell, sizeof cell, "%.1f%%", x * 100);
            else if (rows[r].kind == 1)
                snprintf(cell, sizeof cell, "%.0f ms", x);
            else
                snprintf(cell, sizeof cell, "$%.6f", x);
            buf_addf(&row, " %-24s", cell);
        }
        put_row(f, &row);
    }
    static const char *const fams[] = {"original", "paraphrase", "typos",
                                       "casing",   "whitespace", NULL};
    for (size_t k = 0; fams[k]; k++) {
        if (!jx_get(jx_get(json_object_array_get_idx(vars, 0), "families"), fams[k]))
            continue;
        buf_addf(&row, "  %-24s", fams[k]);
        for (size_t i = 0; i < nv; i++) {
            json_object *fo =
                jx_get(jx_get(json_object_array_get_idx(vars, i), "families"), fams[k]);
            snprintf(cell, sizeof cell, "%lld/%lld", (long long)jx_int(fo, "passed", 0),
                     (long long)jx_int(fo, "attempts", 0));
            buf_addf(&row, " %-24s", cell);
        }
        put_row(f, &row);
    }
    json_object *cases = jx_get(json_object_array_get_idx(vars, 0), "cases");
    int shown = 0;
    for (size_t c = 0; c < json_object_array_length(cases); c++) {
        const char *id = jx_str_or(json_object_array_get_idx(cases, c), "id", "");
        int p0 = -1, differ = 0;
        buf_addf(&row, "  %-24.24s", id);
        for (size_t i = 0; i < nv; i++) {
            json_object *vc = NULL, *vcs = jx_get(json_object_array_get_idx(vars, i), "cases");
            for (size_t k = 0; k < json_object_array_length(vcs) && !vc; k++)
                if (!strcmp(jx_str_or(json_object_array_get_idx(vcs, k), "id", ""), id))
                    vc = json_object_array_get_idx(vcs, k);
            int p = vc ? json_object_get_boolean(jx_get(vc, "pass")) : -1;
            if (i == 0)
                p0 = p;
            differ |= p != p0;
            buf_addf(&row, " %-24s", p < 0 ? "-" : p ? "pass" : "FAIL");
        }
        if (differ && !shown++)
            fprintf(f, "cases whose outcome differs:\n");
        if (differ)
            put_row(f, &row);
        buf_reset(&row);
    }
    if (!shown)
        fprintf(f, "every case has the same outcome in every variant\n");
    buf_free(&row);
}

static void xml_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
                fputc(' ', f);
            else
                fputc(*s, f);
        }
    }
}

int eval_junit_write(const char *path, json_object *r, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(errbuf, errlen, ERR_IO, "%s: cannot write the JUnit file", path);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"");
    xml_text(f, jx_str_or(r, "eval", ""));
    fprintf(f, "\">\n");
    json_object *vars = jx_get(r, "variants");
    for (size_t vi = 0; vi < json_object_array_length(vars); vi++) {
        json_object *v = json_object_array_get_idx(vars, vi), *cases = jx_get(v, "cases");
        size_t n = json_object_array_length(cases), failures = 0;
        double total_s = 0;
        for (size_t i = 0; i < n; i++)
            failures +=
                !json_object_get_boolean(jx_get(json_object_array_get_idx(cases, i), "pass"));
        fprintf(f, "  <testsuite name=\"");
        xml_text(f, jx_str_or(v, "name", ""));
        fprintf(f, "\" tests=\"%zu\" failures=\"%zu\">\n", n, failures);
        for (size_t i = 0; i < n; i++) {
            json_object *c = json_object_array_get_idx(cases, i), *at = jx_get(c, "attempts");
            total_s = 0;
            for (size_t k = 0; k < json_object_array_length(at); k++)
                total_s += dget(json_object_array_get_idx(at, k), "latency_ms") / 1000;
            fprintf(f, "    <testcase classname=\"");
            xml_text(f, jx_str_or(v, "name", ""));
            fprintf(f, ".");
            xml_text(f, jx_str_or(c, "family", ""));
            fprintf(f, "\" name=\"");
            xml_text(f, jx_str_or(c, "id", ""));
            fprintf(f, "\" time=\"%.3f\"", total_s);
            if (json_object_get_boolean(jx_get(c, "pass"))) {
                fprintf(f, "/>\n");
                continue;
            }
            fprintf(f, ">\n      <failure message=\"");
            for (size_t k = 0; k < json_object_array_length(at); k++) {
                json_object *a = json_object_array_get_idx(at, k);
                if (!json_object_get_boolean(jx_get(a, "pass"))) {
                    xml_text(f, jx_str_or(a, "reason", ""));
                    break;
                }
            }
            fprintf(f, "\">run ");
            xml_text(f, jx_str_or(json_object_array_get_idx(at, 0), "run_id", ""));
            fprintf(f, ": agentd trace ");
            xml_text(f, jx_str_or(json_object_array_get_idx(at, 0), "run_id", ""));
            fprintf(f, "</failure>\n    </testcase>\n");
        }
        fprintf(f, "  </testsuite>\n");
    }
    fprintf(f, "</testsuites>\n");
    if (fclose(f) != 0)
        return err_set(errbuf, errlen, ERR_IO, "%s: cannot write the JUnit file", path);
    return 0;
}

static json_object *find_variant(json_object *results, const char *name, int only_one)
{
    json_object *vars = jx_get(results, "variants");
    size_t n = json_object_array_length(vars);
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(vars, i);
        if (!strcmp(jx_str_or(v, "name", ""), name))
            return v;
    }
    return only_one && n == 1 ? json_object_array_get_idx(vars, 0) : NULL;
}

static json_object *find_case(json_object *v, const char *id)
{
    json_object *cases = jx_get(v, "cases");
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        if (!strcmp(jx_str_or(c, "id", ""), id))
            return c;
    }
    return NULL;
}

static const char *first_reason(json_object *c)
{
    json_object *at = jx_get(c, "attempts");
    for (size_t k = 0; k < json_object_array_length(at); k++) {
        json_object *a = json_object_array_get_idx(at, k);
        if (!json_object_get_boolean(jx_get(a, "pass")))
            return jx_str_or(a, "reason", "");
    }
    return "";
}

int eval_gate(json_object *r, json_object *base, json_object *gate, FILE *f)
{
    int bad = 0;
    json_object *vars = jx_get(r, "variants");
    size_t nv = json_object_array_length(vars);
    double min_rate = dget(gate, "min_pass_rate"), max_drop = dget(gate, "max_pass_rate_drop"),
           max_cost = dget(gate, "max_cost_increase"), max_lat = dget(gate, "max_latency_increase"),
           floor_ms = dget(gate, "latency_floor_ms");
    for (size_t vi = 0; vi < nv; vi++) {
        json_object *v = json_object_array_get_idx(vars, vi), *sum = jx_get(v, "summary");
        const char *name = jx_str_or(v, "name", "");
        double rate = dget(sum, "pass_rate");
        if (!base) {
            int ok = rate + 1e-9 >= min_rate;
            fprintf(f, "gate %s: %s pass rate %.1f%% %s the minimum %.1f%%\n", name,
                    ok ? "ok        " : "REGRESSION", rate * 100, ok ? "reaches" : "is below",
                    min_rate * 100);
            bad += !ok;
            json_object *cases = jx_get(v, "cases");
            for (size_t i = 0; !ok && i < json_object_array_length(cases); i++) {
                json_object *c = json_object_array_get_idx(cases, i);
                if (!json_object_get_boolean(jx_get(c, "pass")))
                    fprintf(f, "  failed    %s: %s\n", jx_str_or(c, "id", ""), first_reason(c));
            }
            continue;
        }
        json_object *b = find_variant(base, name, nv == 1);
        if (!b) {
            fprintf(f, "gate %s: new variant, not in the baseline (nothing to compare)\n", name);
            continue;
        }
        json_object *bsum = jx_get(b, "summary");
        fprintf(f, "gate %s vs baseline %s (%s)\n", name, jx_str_or(base, "eval_id", "?"),
                jx_str_or(b, "name", ""));
        const char *ph = jx_str(jx_get(v, "prompt"), "hash"),
                   *bph = jx_str(jx_get(b, "prompt"), "hash");
        if (ph && bph && strcmp(ph, bph))
            fprintf(f, "  note       the prompt changed since the baseline: %s -> %s\n", bph, ph);
        double brate = dget(bsum, "pass_rate"), drop = brate - rate;
        int rbad = drop > max_drop + 1e-9;
        fprintf(f, "  %s pass rate %.1f%% -> %.1f%% (%+.1f points; allowed drop %.1f)\n",
                rbad ? "REGRESSION" : "ok        ", brate * 100, rate * 100, -drop * 100 + 0.0,
                max_drop * 100);
        bad += rbad;
        json_object *cases = jx_get(v, "cases");
        int newly = 0, fixed = 0;
        for (size_t i = 0; i < json_object_array_length(cases); i++) {
            json_object *c = json_object_array_get_idx(cases, i);
            json_object *bc = find_case(b, jx_str_or(c, "id", ""));
            int now = json_object_get_boolean(jx_get(c, "pass"));
            if (!bc)
                continue;
            int was = json_object_get_boolean(jx_get(bc, "pass"));
            if (was && !now) {
                fprintf(f, "  REGRESSION case %s: pass -> FAIL: %s\n", jx_str_or(c, "id", ""),
                        first_reason(c));
                newly++;
            } else if (!was && now) {
                fixed++;
            }
        }
        bad += newly;
        if (fixed)
            fprintf(f, "  ok         %d case%s fixed since the baseline\n", fixed,
                    fixed == 1 ? "" : "s");
        double bc = dget(bsum, "cost_per_case_usd"), cc = dget(sum, "cost_per_case_usd");
        int cbad = cc > bc * (1 + max_cost) + 1e-9;
        fprintf(f, "  %s cost per case $%.6f -> $%.6f (allowed +%.0f%%)\n",
                cbad ? "REGRESSION" : "ok        ", bc, cc, max_cost * 100);
        bad += cbad;
        double bl = dget(bsum, "p95_latency_ms"), cl = dget(sum, "p95_latency_ms");
        int lbad = cl > bl * (1 + max_lat) && cl > bl + floor_ms;
        fprintf(f, "  %s p95 latency %.0f ms -> %.0f ms (allowed +%.0f%%, at least %.0f ms)\n",
                lbad ? "REGRESSION" : "ok        ", bl, cl, max_lat * 100, floor_ms);
        bad += lbad;
    }
    fprintf(f, "gate: %s\n", bad ? "REGRESSION (exit 1)" : "no regression (exit 0)");
    return bad;
}
