/*
 * viewer_tui: pieces of the interactive viewer shared by viewer.c (screens, keys, terminal)
 * and viewer_detail.c (the text of the detail pane). Not for other modules.
 */
#ifndef AGENTD_VIEWER_TUI_H
#define AGENTD_VIEWER_TUI_H

#include "store.h"
#include "spantree.h"

/* Kinds of detail lines; the screen picks colours (or none, under NO_COLOR) per kind. */
enum { VL_TEXT, VL_HEAD, VL_ERROR, VL_DIM, VL_KEY, VL_OK };

typedef struct vline {
    char *text; /* owned, one screen line (already wrapped) */
    int kind;
} vline_t;

typedef struct vlines {
    vline_t *v;
    int n, cap;
    int width; /* wrap width in columns */
} vlines_t;

void vlines_clear(vlines_t *l);
/* Add text (may hold newlines), wrapped at l->width, each line prefixed by indent. */
int vlines_add(vlines_t *l, int kind, const char *indent, const char *text);
int vlines_addf(vlines_t *l, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Display columns of a UTF-8 string (invalid bytes count one). */
int vtui_width(const char *s);
/* Bytes of s that fit in maxcols columns; *cols gets the columns they use. */
size_t vtui_clip(const char *s, int maxcols, int *cols);

/* Fill out with the detail of span i of m: summary, error, tool call and messages from the
 * store, retries, attributes, events. json_only: just the span's JSON, pretty-printed,
 * for copying. 0 or ERR_NOMEM. */
int viewer_detail_build(vlines_t *out, store_t *st, const spantree_t *m, int i, int json_only);

/* Fill out (its width set) with runs a and b side by side: the run rows' figures, prompt,
 * input, answer and error, then the trajectories turn by turn; rows that differ start with
 * '≠' ('!' and ASCII marks throughout when ascii). Flattens both models. 0 or ERR_NOMEM. */
int viewer_compare_build(vlines_t *out, const store_run_t *a, spantree_t *ma, const store_run_t *b,
                         spantree_t *mb, int ascii);

#endif
