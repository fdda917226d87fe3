/*
 * rag_sim: text similarity with the offline embedder (rag.h), for evaluations that compare
 * an answer with an expected one without calling a model.
 */
#include "rag.h"
#include "rag_int.h"

enum { SIM_DIM = 512 };

double rag_similarity(const char *a, const char *b)
{
    float va[SIM_DIM], vb[SIM_DIM];
    rag_embed_offline(a ? a : "", SIM_DIM, va);
    rag_embed_offline(b ? b : "", SIM_DIM, vb);
    double dot = 0;
    for (int i = 0; i < SIM_DIM; i++)
        dot += (double)va[i] * (double)vb[i];
    return dot < 0 ? 0 : dot > 1 ? 1 : dot;
}
