/*
 * viewer_screen: the state and the drawing helpers the interactive viewer's screens share
 * (viewer.c: terminal, loop and key dispatch; viewer_list.c: runs list; viewer_run.c:
 * run view and detail). Not for other modules.
 */
#ifndef AGENTD_VIEWER_SCREEN_H
#define AGENTD_VIEWER_SCREEN_H

#include "store.h"
#include "spantree.h"
#include "viewer_tui.h"

#include <curses.h>
#include <stdint.h>

/* Screens, list sort keys, state filters, colour pairs. */
enum { SCR_LIST, SCR_RUN, SCR_DETAIL, SCR_COMPARE };
enum { SORT_NEWEST, SORT_DURATION, SORT_COST, SORT_TOKENS, SORT_STATE, SORT_AGENT, SORT__N };
enum { FILTERS = 6 };
enum { C_ERR = 1, C_OK, C_CHAT, C_TOOL, C_STATE, C_POINT, C_HEAD, C_DIM, C_MATCH };

/* One row of the runs list (copied out of the store). */
typedef struct lrun {
    char id[40], agent[128], state[16];
    char model[160]; /* the model that answered ("provider:model"), else the configured one */
    int steps;
    int64_t created_ns, dur_ns, tokens, last_seq;
    double cost;
    int errors, retries; /* errors -1 until counted */
    int64_t errors_seq;  /* last_seq the counts are for */
    char *error, *input, *answer;
} lrun_t;

/* Error and retry counts already computed for the runs list, by run id and the last seq
 * counted. */
enum { ECACHE = 256 };
typedef struct errcache {
    char id[40];
    int64_t seq;
    int errors, retries;
} errcache_t;

/* The whole state of the interactive viewer; one per viewer_tui() call. */
typedef struct tui {
    store_t *st;
    const char *db_path;
    int scr, quit, color, utf8;
    /* runs list */
    lrun_t *runs;
    int nruns, caprun;
    int *order, norder;
    int lsel, ltop, sort, rev, filter;
    char fagent[128], fmodel[160]; /* "" = any agent / model */
    char mark[40];                 /* run marked for comparison, "" = none */
    int id_unique;                 /* id prefix length that tells the listed runs apart */
    char cmp[2][40];               /* the runs on the compare screen */
    int64_t list_at_ns;
    errcache_t ecache[ECACHE];
    int necache, ecache_next;
    /* run view */
    spantree_t *m;
    store_run_t run;
    int has_run, rsel, rtop, follow, points, direct;
    int64_t open_t0;
    /* detail */
    vlines_t det;
    int dtop, dspan, djson;
    /* shared */
    char query[128];
    char msg[300];
    int64_t msg_until;
} tui_t;

/* Drawing: write s at (y, x) in at most maxw columns (returns the columns used); a colour
 * pair, or the fallback attribute under NO_COLOR; a full-width line in attribute a. */
int vtui_put(int y, int x, int maxw, const char *s, attr_t a);
void vtui_putf(int y, int x, int maxw, attr_t a, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
attr_t vtui_pair(const tui_t *t, int p, attr_t fallback);
void vtui_bar(const tui_t *t, int y, attr_t a);
/* A message on the status line for a few seconds. */
void vtui_say(tui_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t vtui_mono_ns(void);
/* A count in at most 6 columns (below 10^11): "2037", "123k", "4.1M", "250M". Returns
 * buf. */
const char *vtui_fmt_count(int64_t n, char *buf, size_t len);
void vtui_move_sel(int *sel, int n, int delta);

/* Runs list (viewer_list.c). */
void vtui_list_load(tui_t *t);
void vtui_list_free(tui_t *t);
void vtui_list_draw(tui_t *t);
void vtui_list_key(tui_t *t, int ch);
void vtui_list_next_failed(tui_t *t);
/* Select the next run matching t->query in direction dir; 1 if found. */
int vtui_list_search(tui_t *t, int dir);
/* Compare screen (viewer_list.c): the marked run and the selected one side by side. */
void vtui_compare_build(tui_t *t);
void vtui_compare_draw(tui_t *t);
void vtui_compare_key(tui_t *t, int ch);

/* Run view and detail (viewer_run.c). vtui_run_open: 0 or an ERR_* (message in t->msg). */
int vtui_run_open(tui_t *t, const char *id);
void vtui_run_close(tui_t *t);
/* Follow tick; returns 1 when the screen needs redrawing. */
int vtui_run_poll(tui_t *t);
void vtui_run_draw(tui_t *t);
void vtui_run_key(tui_t *t, int ch);
void vtui_run_next_error(tui_t *t);
int vtui_run_search(tui_t *t, int dir);
void vtui_detail_build(tui_t *t);
void vtui_detail_draw(tui_t *t);
void vtui_detail_key(tui_t *t, int ch);
/* The scrolling keys of a text pane (detail, compare): 1 when ch was one of them. */
int vtui_scroll_key(tui_t *t, int ch);
/* The selection keys of a list (runs, spans): move *sel within n rows, a page being page
 * rows; 1 when ch was one of them. */
int vtui_sel_key(int *sel, int n, int page, int ch);

#endif
