/* The exact vision attention's AVX2 kernel (simd/vattn_f32.h):
 * - bit for bit qvl_vattn_f32_ref() (the scalar fmaf chains) with the same
 *   softmax, on key counts that fill no, one and many 16-key panels, head
 *   sizes that are not multiples of 16 (the masked last value panel), query
 *   counts that leave every tile height, keys stored in a scrambled order,
 *   finite garbage in the padding that must be ignored, and output columns
 *   past hv that must stay untouched;
 * - bit for bit the two f32 GEMMs it replaces (k->matmul at the AVX2 level,
 *   packed path, forced: small_m_avx2 = 1);
 * - within f32 rounding of a double reference on the original K and V
 *   rows (a layout mistake shared by kernel and ref is off by the size of
 *   the values themselves). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern_impl.h"
#include "kernels.h"
#include "rng.h"
#include "tap.h"
#include "vattn_f32.h"

struct vcase {
	size_t n, hv, nq;
	float *q, *k, *v;  /* rows: q nq x hv, k and v n x hv */
	float *kp, *vr;	   /* the kernel's layouts */
	size_t ldq, ldo;   /* q and output row strides (> hv) */
	float *out, *sc;
};

static void vcase_make(struct vcase *c, size_t n, size_t hv, size_t nq)
{
	const size_t vpf = qvl_vattn_f32_vp_floats(n, hv), kpf = qvl_vattn_f32_kp_floats(n, hv);

	*c = (struct vcase){.n = n, .hv = hv, .nq = nq, .ldq = hv + 3, .ldo = hv + 5};
	c->q = xmalloc(nq * c->ldq * sizeof(float));
	c->k = xmalloc(n * hv * sizeof(float));
	c->v = xmalloc(n * hv * sizeof(float));
	c->kp = xmalloc(kpf * sizeof(float));
	c->vr = xmalloc(vpf * sizeof(float));
	c->out = xmalloc(nq * c->ldo * sizeof(float));
	c->sc = xmalloc(qvl_vattn_f32_scratch_floats(n) * sizeof(float));
	for (size_t i = 0; i < nq * c->ldq; i++)
		c->q[i] = frand(2.0f);
	for (size_t i = 0; i < n * hv; i++) {
		c->k[i] = frand(2.0f);
		c->v[i] = frand(2.0f);
	}
	for (size_t i = 0; i < kpf; i++)
		c->kp[i] = 7.0f; /* the padding keys: finite, ignored */
	for (size_t i = 0; i < vpf; i++)
		c->vr[i] = 1e3f; /* the values past hv: finite, never stored */
	for (size_t t = 0; t < n; t++) {
		size_t r = (t * 7919) % n; /* a permutation when n % 7919 != 0 */
		qvl_vattn_f32_store_k(c->kp, c->k + r * hv, r, hv);
		qvl_vattn_f32_store_v(c->vr, c->v + r * hv, r, n, hv);
	}
}

static void vcase_free(struct vcase *c)
{
	free(c->q), free(c->k), free(c->v), free(c->kp), free(c->vr), free(c->out), free(c->sc);
}

/* run kernel or ref into c->out (the columns past hv set to a sentinel) */
static void vcase_run(struct vcase *c, const struct qvl_kernels *k, int ref)
{
	const float scale = 1.0f / sqrtf((float)c->hv);

	for (size_t i = 0; i < c->nq * c->ldo; i++)
		c->out[i] = -3.5f;
	(ref ? qvl_vattn_f32_ref : k->vattn_f32)(c->out, c->ldo, c->q, c->ldq, c->nq, c->kp, c->vr,
						 c->n, c->hv, scale, k->softmax, c->sc);
}

/* max |out - double reference| relative to max |V|, or +inf when a column
 * past hv was written */
static double vcase_err(const struct vcase *c)
{
	const size_t n = c->n, hv = c->hv;
	double *s = xmalloc(n * sizeof(double)), worst = 0, vmax = 0;

	for (size_t i = 0; i < n * hv; i++)
		vmax = fabs(c->v[i]) > vmax ? fabs(c->v[i]) : vmax;
	for (size_t i = 0; i < c->nq; i++) {
		double mx = -INFINITY, sum = 0;
		for (size_t j = 0; j < n; j++) {
			double a = 0;
			for (size_t d = 0; d < hv; d++)
				a += (double)c->q[i * c->ldq + d] * c->k[j * hv + d];
			s[j] = a / sqrt((double)hv);
			mx = s[j] > mx ? s[j] : mx;
		}
		for (size_t j = 0; j < n; j++)
			sum += (s[j] = exp(s[j] - mx));
		for (size_t d = 0; d < c->ldo; d++) {
			double o = 0, e;
			if (d >= hv) {
				if (c->out[i * c->ldo + d] != -3.5f)
					worst = INFINITY;
				continue;
			}
			for (size_t j = 0; j < n; j++)
				o += s[j] / sum * c->v[j * hv + d];
			e = fabs(o - c->out[i * c->ldo + d]);
			worst = e > worst || isnan(e) ? e : worst;
		}
	}
	free(s);
	return worst / vmax;
}

/* the GEMM path of src/vision.c on the same rows: S = Q·Kᵀ, S *= scale,
 * softmax, O = S·V (V transposed, as that path stores it), both products
 * on the packed kernel (the tile keeps its order; up to small_m_avx2 rows
 * the products would stream W and sum in 8 lanes) */
static void gemm_path(float *o, const struct vcase *c, const struct qvl_kernels *k)
{
	const size_t n = c->n, hv = c->hv, nq = c->nq;
	const float scale = 1.0f / sqrtf((float)hv);
	float *S = xmalloc(nq * n * sizeof(float)), *vt = xmalloc(hv * n * sizeof(float));
	const size_t keep_sm = qvl_gemm_blk.small_m_avx2;

	qvl_gemm_blk.small_m_avx2 = 1;
	for (size_t j = 0; j < n; j++)
		for (size_t d = 0; d < hv; d++)
			vt[d * n + j] = c->v[j * hv + d];
	k->matmul(S, n, c->q, c->ldq, c->k, QVL_DT_F32, hv, NULL, nq, n, hv);
	for (size_t r = 0; r < nq; r++) {
		for (size_t j = 0; j < n; j++)
			S[r * n + j] *= scale;
		k->softmax(S + r * n, n);
	}
	k->matmul(o, c->ldo, S, n, vt, QVL_DT_F32, n, NULL, nq, hv, n);
	qvl_gemm_blk.small_m_avx2 = keep_sm;
	free(S), free(vt);
}

static int same_outputs(const float *a, const float *b, const struct vcase *c)
{
	for (size_t i = 0; i < c->nq; i++)
		if (memcmp(a + i * c->ldo, b + i * c->ldo, c->hv * sizeof(float)))
			return 0;
	return 1;
}

int main(void)
{
	static const size_t cases[][3] = {
	    /* n, hv, queries */
	    {1, 16, 1},	  {2, 8, 2},	{5, 24, 3},    {16, 16, 6},  {17, 64, 7},
	    {31, 72, 13}, {40, 40, 12}, {100, 72, 17}, {784, 64, 20}, {203, 16, 64},
	};
	static const size_t gcases[][3] = {{33, 64, 40}, {784, 64, 64}, {100, 72, 24}, {50, 16, 30}};
	const int nc = (int)(sizeof(cases) / sizeof(cases[0]));
	const int ng = (int)(sizeof(gcases) / sizeof(gcases[0]));
	struct qvl_kernels k;
	struct vcase c;

	if (qvl_kernels_get(&k, QVL_SIMD_AVX2))
		skip_all("no AVX2 on this CPU or in this build: the kernel is never used");
	plan(1 + 2 * nc + ng);
	if (!ok(k.vattn_f32 != NULL, "the avx2 kernel table has the vision attention"))
		return done_testing();
	rng_seed(17);
	for (int i = 0; i < nc; i++) {
		vcase_make(&c, cases[i][0], cases[i][1], cases[i][2]);
		vcase_run(&c, &k, 1);
		float *ref = xmalloc(c.nq * c.ldo * sizeof(float));
		memcpy(ref, c.out, c.nq * c.ldo * sizeof(float));
		vcase_run(&c, &k, 0);
		ok(same_outputs(ref, c.out, &c), "n %zu hv %zu queries %zu: bit for bit the ref",
		   c.n, c.hv, c.nq);
		double e = vcase_err(&c);
		/* f32 sums of a few hundred terms: measured <= 1e-6 of max |V| */
		ok(e <= 1e-5, "n %zu hv %zu queries %zu: %.2g of max |V| from the double reference",
		   c.n, c.hv, c.nq, e);
		free(ref);
		vcase_free(&c);
	}
	for (int i = 0; i < ng; i++) {
		vcase_make(&c, gcases[i][0], gcases[i][1], gcases[i][2]);
		float *g = xmalloc(c.nq * c.ldo * sizeof(float));
		gemm_path(g, &c, &k);
		vcase_run(&c, &k, 0);
		ok(same_outputs(g, c.out, &c),
		   "n %zu hv %zu queries %zu: bit for bit the two f32 GEMMs it replaces", c.n, c.hv,
		   c.nq);
		free(g);
		vcase_free(&c);
	}
	return done_testing();
}
