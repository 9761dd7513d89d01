/* The tiered pool under the engine, on the tiny model packed:
 *  - placement from the budgets (3 of 4 layers streamed; layers on the
 *    simulated device) and bad budgets refused with the option named;
 *  - greedy decoding of a batch of 8 sequences gives the same ids whether
 *    every layer is resident, most are streamed, or some are on the
 *    simulated device, and each batched step takes each streamed layer
 *    from the window once (not once per sequence), and creating the
 *    engine reads none of them (the norms are read apart), nor takes memory
 *    for their matrices;
 *  - a byte flipped on disk inside a streamed shard fails the step with
 *    -EBADMSG naming the shard, the sequences unchanged; once repaired the
 *    next step works and continues exactly;
 *  - an injected failing read (the reader's fault hook) fails a step with
 *    -EIO naming the shard, and the next step works;
 *  - the report stays JSON whatever bytes a shard name holds (a pack's
 *    name pool may hold any byte but NUL). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "json.h"
#include "nvme.h"
#include "pack.h"
#include "pool_impl.h"
#include "tap.h"
#include "tiers.h"
#include "util.h"

#define NSEQ  8
#define STEPS 6

struct rig {
	struct qvl_model *m;
	struct tier_pool *t;
	struct qvl_engine *e;
	struct qvl_seq *s[NSEQ];
	int32_t last[NSEQ];
};

static void rig_close(struct rig *r)
{
	for (int i = 0; i < NSEQ; i++)
		qvl_seq_destroy(r->s[i]);
	qvl_engine_destroy(r->e);
	tier_close(r->t);
	if (r->m)
		qvl_model_close(r->m);
	memset(r, 0, sizeof(*r));
}

static int rig_open(struct rig *r, const char *path, const struct tier_opts *o, struct qvl_err *err)
{
	struct qvl_engine_opts eo = {
	    .threads = 1, .precision = QVL_PREC_EXACT, .kv_dtype = QVL_DT_F16};
	int rc = tier_open(&r->t, &r->m, path, o, err);

	if (rc < 0)
		return rc;
	eo.wsrc = tier_weight_src(r->t);
	if ((rc = qvl_engine_create(&r->e, r->m, &eo, err)) < 0)
		return rc;
	for (int i = 0; i < NSEQ && !rc; i++)
		rc = qvl_seq_create(r->e, 256, &r->s[i], err);
	return rc;
}

/* Prompts of different lengths, one pass each; then the first ids. */
static int rig_prefill(struct rig *r, struct qvl_err *err)
{
	for (int i = 0; i < NSEQ; i++) {
		int32_t ids[12];
		struct qvl_chunk c = {.ids = ids, .n = (size_t)(3 + i)};
		for (size_t j = 0; j < c.n; j++)
			ids[j] = (int32_t)(100 + 37 * i + 11 * (int)j);
		int rc = qvl_seq_forward_argmax(r->e, r->s[i], &c, &r->last[i], err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* One batched greedy step of all sequences: out[i] = the next id. */
static int rig_step(struct rig *r, int32_t *out, struct qvl_err *err)
{
	struct qvl_batch_item it[NSEQ];

	memset(it, 0, sizeof(it));
	for (int i = 0; i < NSEQ; i++) {
		it[i].seq = r->s[i];
		it[i].chunk = (struct qvl_chunk){.ids = &r->last[i], .n = 1};
		it[i].argmax = &out[i];
	}
	int rc = qvl_engine_forward(r->e, it, NSEQ, err);
	if (rc == 0)
		memcpy(r->last, out, sizeof(r->last));
	return rc;
}

/* Pages wholly inside the weight matrices of text layer l that are in
 * memory (mincore): none for a streamed layer, whose home in the arena is
 * never read into. */
static long resident_pages(const struct qvl_model *m, int l)
{
	static const char *mats[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
				     "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
				     "mlp.down_proj"};
	uintptr_t psz = (uintptr_t)sysconf(_SC_PAGESIZE);
	long n = 0;

	for (size_t i = 0; i < sizeof(mats) / sizeof(mats[0]); i++) {
		char name[128];
		const struct qvl_tensor *t;

		snprintf(name, sizeof(name), "model.language_model.layers.%d.%s.weight", l,
			 mats[i]);
		if (!(t = qvl_model_find(m, name)))
			return -1;
		uintptr_t a = ((uintptr_t)t->data + psz - 1) & ~(psz - 1);
		uintptr_t b = ((uintptr_t)t->data + t->nbytes) & ~(psz - 1);
		size_t np = b > a ? (b - a) / psz : 0;
		unsigned char *v = np ? malloc(np) : NULL;

		if (np && (!v || mincore((void *)a, b - a, v) < 0)) {
			free(v);
			return -1;
		}
		for (size_t k = 0; k < np; k++)
			n += v[k] & 1;
		free(v);
	}
	return n;
}

static int64_t counter(struct rig *r, const char *key)
{
	char buf[8192];
	struct json_doc d;
	struct qvl_err err;
	int64_t v = -1;

	tier_json(r->t, buf, sizeof(buf));
	if (json_parse(&d, buf, strlen(buf), "tiers", &err) < 0)
		return -1;
	uint32_t k = json_get(&d, 0, key);
	if (k != JSON_NONE)
		json_int64(&d, k, &v);
	json_free(&d);
	return v;
}

static const struct pack_shard *shard(const struct pack_info *p, const char *name)
{
	for (uint32_t i = 0; i < p->n_shards; i++)
		if (!strcmp(p->shards[i].name, name))
			return &p->shards[i];
	return NULL;
}

static int flip(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	int ok1 = fd >= 0 && pread(fd, &b, 1, (off_t)off) == 1;

	b ^= 0x40;
	ok1 = ok1 && pwrite(fd, &b, 1, (off_t)off) == 1 && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	return ok1 ? 0 : -1;
}

static struct {
	const char *shard;
	int left; /* fail when it reaches 0 */
} fault;

static int fault_hook(void *ctx, const char *name, uint64_t off, size_t len)
{
	(void)ctx, (void)off, (void)len;
	/* relaxed: two I/O threads call this; reads of one shard are ordered */
	return strcmp(name, fault.shard) || __atomic_sub_fetch(&fault.left, 1, __ATOMIC_RELAXED)
		   ? 0
		   : -EIO;
}

int main(void)
{
	const char *tiny = getenv("QVL_TINY");
	char dir[] = "/tmp/qvl-tiers.XXXXXX", path[4200];
	struct pack_opts po = {.type = -1};
	struct pack_result pr;
	struct qvl_err err = {{0}};
	struct pack_info p;
	uint8_t *head;
	uint64_t fsize, fixed = 0, lay = 0;
	int32_t ref[STEPS][NSEQ], got[NSEQ];
	struct rig r = {0};
	int rc;

	if (!tiny || access(tiny, F_OK))
		skip_all("no tiny model (QVL_TINY)");
	plan(25);
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/t.qvl", dir);
	po.model = tiny;
	po.out = path;
	rc = pack_write(&po, &pr, &err);
	ok(rc == 0, "pack the tiny model (%s)", rc ? err.msg : "ok");
	if (rc || pack_read_head(path, &p, &head, &fsize, &err))
		return done_testing();
	for (uint32_t i = 0; i < p.n_shards; i++) {
		uint64_t a = (p.shards[i].len + 4095) / 4096 * 4096;
		if (!strncmp(p.shards[i].name, "text.layer.", 11))
			lay = a;
		else if (strncmp(p.shards[i].name, "vision.", 7))
			fixed += a;
	}

	/* the reference: every layer resident (no budget) */
	rc = rig_open(&r, path, &(struct tier_opts){0}, &err);
	ok(rc == 0 && !tier_weight_src(r.t), "no budget: every layer resident, no hook (%s)",
	   rc ? err.msg : "ok");
	rc = rc ? rc : rig_prefill(&r, &err);
	for (int k = 0; k < STEPS && !rc; k++)
		rc = rig_step(&r, ref[k], &err);
	ok(rc == 0, "resident: %d batched steps of %d sequences (%s)", STEPS, NSEQ,
	   rc ? err.msg : "ok");
	rig_close(&r);

	/* 2 buffers (asked for) and one resident layer: 3 of 4 layers stream */
	struct tier_opts o = {.cpu_mem = fixed + 3 * lay, .bufs = 2};
	rc = rig_open(&r, path, &o, &err);
	ok(rc == 0 && counter(&r, "layers_streamed") == 3 && counter(&r, "layers_host") == 1 &&
	       counter(&r, "buffers") == 2,
	   "--cpu-mem of the embeddings + 3 layers, 2 buffers: 1 resident, 3 streamed (%s)",
	   rc ? err.msg : "ok");
	/* the engine widened the streamed layers' norms from the few bytes the
	 * pool read, not from a pass through the window: nothing served yet,
	 * and only the window's first reads (at most its buffers) issued */
	ok(rc == 0 && counter(&r, "layers_served") == 0 && counter(&r, "stream_reads") <= 2,
	   "engine start-up reads no streamed shard (%" PRId64 " served, %" PRId64 " reads)",
	   counter(&r, "layers_served"), counter(&r, "stream_reads"));
	/* the streamed layers' home in the arena stays unfaulted (the load's
	 * fill covers the shards it reads, not the gaps between them) */
	long res0 = rc ? -1 : resident_pages(r.m, 0), res_str = 0;
	for (int l = 1; l <= 3 && !rc; l++) {
		long np = resident_pages(r.m, l);
		res_str = np < 0 || res_str < 0 ? -1 : res_str + np;
	}
	ok(rc == 0 && res0 > 0 && res_str == 0,
	   "no memory taken for the streamed layers' matrices (%ld pages; the resident "
	   "layer: %ld)",
	   res_str, res0);
	rc = rc ? rc : rig_prefill(&r, &err);
	bool same = rc == 0;
	int64_t served0 = counter(&r, "layers_served"), served1 = served0;
	for (int k = 0; k < STEPS && same; k++) {
		same = rig_step(&r, got, &err) == 0 && !memcmp(got, ref[k], sizeof(got));
		if (k == 0)
			served1 = counter(&r, "layers_served");
	}
	ok(same, "streamed: the same ids as resident, every step (%s)", same ? "ok" : err.msg);
	ok(served1 - served0 == 3,
	   "a batched step of %d sequences takes each streamed layer once (%" PRId64 " served)",
	   NSEQ, served1 - served0);
	ok(counter(&r, "stream_failed") == 0 && counter(&r, "stream_reads") > 3 * STEPS,
	   "the window read the streamed layers every pass (%" PRId64 " reads)",
	   counter(&r, "stream_reads"));

	/* a byte flipped in a streamed shard on disk */
	const struct pack_shard *l2 = shard(&p, "text.layer.2");
	int32_t save[NSEQ];
	int lens[NSEQ];
	ok(l2 && flip(path, l2->off + l2->len / 2) == 0, "flip a byte of text.layer.2 on disk");
	memcpy(save, r.last, sizeof(save));
	for (int i = 0; i < NSEQ; i++)
		lens[i] = qvl_seq_len(r.s[i]);
	/* the window may hold layer 2 already read (good) for this step: the
	 * corrupt copy is read within two steps */
	rc = 0;
	for (int k = 0; k < 2 && rc == 0; k++)
		rc = rig_step(&r, got, &err);
	ok(rc == -EBADMSG && strstr(err.msg, "text.layer.2") && strstr(err.msg, "CRC"),
	   "the step fails with -EBADMSG naming the shard (%d: %s)", rc, err.msg);
	bool unchanged = true;
	for (int i = 0; i < NSEQ; i++)
		unchanged &= qvl_seq_len(r.s[i]) >= lens[i] && qvl_seq_len(r.s[i]) <= lens[i] + 1;
	ok(unchanged && counter(&r, "stream_failed") >= 1,
	   "the sequences are intact, the failure counted");
	flip(path, l2->off + l2->len / 2);
	/* the window restarted at the failure and may have read the corrupt
	 * copy again before the repair: then that step fails too, and the
	 * one after reads the repaired shard */
	int32_t again[NSEQ];
	rc = rig_step(&r, again, &err);
	if (rc == -EBADMSG)
		rc = rig_step(&r, again, &err);
	ok(rc == 0, "repaired: a step after it works (%s)", rc ? err.msg : "ok");
	rig_close(&r);

	/* an injected failing read, then the next request works: replay the
	 * reference run with the hook failing layer 1's 6th read */
	fault.shard = "text.layer.1";
	fault.left = 12; /* 1 at load (the norms), 8 prefill passes, then the steps */
	nv_set_fault(fault_hook, NULL);
	rc = rig_open(&r, path, &o, &err);
	rc = rc ? rc : rig_prefill(&r, &err);
	int failed_at = -1, k = 0;
	same = true;
	while (k < STEPS && rc == 0) {
		int s = rig_step(&r, got, &err);
		if (s < 0) {
			if (failed_at >= 0)
				break;
			failed_at = k;
			ok(s == -EIO && strstr(err.msg, "text.layer.1"),
			   "an injected read failure fails the step: -EIO naming the shard (%s)",
			   err.msg);
			continue; /* the next request: the same step again */
		}
		same &= !memcmp(got, ref[k], sizeof(got));
		k++;
	}
	if (failed_at < 0)
		ok(0, "an injected read failure fails the step (it never fired)");
	ok(k == STEPS && same, "the steps after it work and give the resident ids (%d of %d)", k,
	   STEPS);
	ok(counter(&r, "window_resets") >= 1, "the window restarted after the failure");
	nv_set_fault(NULL, NULL);
	rig_close(&r);

	/* the simulated device: 1 layer there, the rest streamed */
	o = (struct tier_opts){.cpu_mem = fixed + 2 * lay, .gpu_mem = lay, .sim_bw = 2000000000};
	rc = rig_open(&r, path, &o, &err);
	ok(rc == 0 && counter(&r, "layers_sim_device") == 1 && counter(&r, "layers_streamed") == 3,
	   "--gpu-mem of 1 layer: 1 on the simulated device, 3 streamed (%s)", rc ? err.msg : "ok");
	char js[8192];
	tier_json(r.t, js, sizeof(js));
	ok(strstr(js, "simulated device") && strstr(js, "\"text.layer.0\":\"sim-device\"") &&
	       counter(&r, "sim_device_copied") == (int64_t)lay,
	   "named a simulation; layer 0 copied through its copy engine");
	/* a shard name with a quote, a backslash and control bytes: the
	 * report parses and the placement key decodes to the name */
	static char odd[] = "text.\"layer\\.0\n\x01\x1f";
	char *name0 = r.t->p.shards[0].name;
	struct json_doc d;
	bool odd_ok = false;
	r.t->p.shards[0].name = odd;
	tier_json(r.t, js, sizeof(js));
	r.t->p.shards[0].name = name0;
	if (json_parse(&d, js, strlen(js), "tiers", &err) == 0) {
		uint32_t pl = json_get(&d, 0, "placement");
		odd_ok = pl != JSON_NONE && json_get(&d, pl, odd) != JSON_NONE;
		json_free(&d);
	}
	ok(odd_ok, "a shard name with a quote and control bytes: the report is JSON and names it");
	rc = rc ? rc : rig_prefill(&r, &err);
	same = rc == 0;
	for (int s = 0; s < STEPS && same; s++)
		same = rig_step(&r, got, &err) == 0 && !memcmp(got, ref[s], sizeof(got));
	ok(same, "device + streamed: the same ids as resident (%s)", same ? "ok" : err.msg);
	rig_close(&r);

	/* bad budgets */
	o = (struct tier_opts){.cpu_mem = fixed};
	rc = tier_open(&r.t, &r.m, path, &o, &err);
	ok(rc == -EINVAL && strstr(err.msg, "--cpu-mem") && strstr(err.msg, "minimum"),
	   "a budget below the embeddings + 2 buffers: -EINVAL naming --cpu-mem (%s)", err.msg);
	uint64_t v;
	ok(qvl_parse_size("--cpu-mem", "8G", true, &v, &err) == 0 && v == 8ull << 30 &&
	       qvl_parse_size("--cpu-mem", "1.5M", true, &v, &err) == 0 && v == 3ull << 19 &&
	       qvl_parse_size("--gpu-mem", "512MiB", false, &v, &err) == 0 && v == 512ull << 20,
	   "sizes: 8G, 1.5M, 512MiB");
	ok(qvl_parse_size("--cpu-mem", "25%", true, &v, &err) == 0 && v > 0 &&
	       qvl_parse_size("--cpu-mem", "0%", true, &v, &err) == -EINVAL &&
	       qvl_parse_size("--cpu-mem", "101%", true, &v, &err) == -EINVAL,
	   "shares of RAM: 25%% yes, 0%% and 101%% no");
	rc = qvl_parse_size("--gpu-mem", "12X", false, &v, &err);
	rc = rc == -EINVAL && qvl_parse_size("--gpu-mem", " 8G", false, &v, NULL) == -EINVAL &&
		     qvl_parse_size("--gpu-mem", "8 ", false, &v, NULL) == -EINVAL &&
		     qvl_parse_size("--gpu-mem", "", false, &v, NULL) == -EINVAL
		 ? -EINVAL
		 : 0;
	ok(rc == -EINVAL && strstr(err.msg, "--gpu-mem") && strstr(err.msg, "'12X'"),
	   "a bad size names the option and the value (%s)", err.msg);
	ok(qvl_parse_bw("--sim-device-bw", "25G", &v, &err) == 0 && v == 25000000000ull &&
	       qvl_parse_bw("--sim-device-bw", "0", &v, &err) == -EINVAL &&
	       qvl_parse_bw("--sim-device-bw", "-1G", &v, &err) == -EINVAL,
	   "bandwidths: 25G is 25e9 bytes/s; 0 and negatives refused");

	pack_free(&p);
	free(head);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
