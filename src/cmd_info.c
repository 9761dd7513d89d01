/* qvlctl info MODEL [--mmproj FILE] [--json]: what a model is, from any
 * source format. The text form is "key: value" lines whose keys are the JSON
 * form's key paths, so scripts can use either. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "json.h"
#include "model.h"
#include "pack.h"

static void info_usage(FILE *f)
{
	fprintf(f, "Usage: qvlctl info MODEL [--mmproj FILE] [--json]\n\n"
		   "Describe a model: source format and files, architecture, text and vision\n"
		   "dimensions, tensor count, bytes by dtype and total parameters.\n\n"
		   "MODEL is a Hugging Face directory (config.json + safetensors), a directory\n"
		   "holding a text GGUF and optionally an mmproj GGUF, a text .gguf file, or a\n"
		   ".qvl pack (described from its head and tensor table: no weight is read).\n\n"
		   "  --mmproj FILE  the vision (mmproj) GGUF for a .gguf MODEL\n"
		   "  --json         print one JSON object instead of key: value lines\n"
		   "  --help         show this help\n");
}

struct info_totals {
	uint64_t bytes[QVL_DT_COUNT];
	uint64_t count[QVL_DT_COUNT];
	uint64_t params, total_bytes;
};

/* One emitter for both forms: `key` is the dotted path in text mode and the
 * member name in JSON mode. */
struct out {
	FILE *f;
	bool json;
	bool first; /* JSON: no comma before the first member of an object */
	char prefix[64];
};

static void o_key(struct out *o, const char *key)
{
	if (o->json) {
		fprintf(o->f, "%s", o->first ? "" : ",");
		json_write_string(o->f, key, strlen(key));
		fputc(':', o->f);
	} else {
		fprintf(o->f, "%s%s: ", o->prefix, key);
	}
	o->first = false;
}

static void o_int(struct out *o, const char *key, int64_t v)
{
	o_key(o, key);
	fprintf(o->f, "%" PRId64 "%s", v, o->json ? "" : "\n");
}

static void o_num(struct out *o, const char *key, double v)
{
	char buf[32];

	/* integers as integers (5000000), else the shortest form that reads back
	 * exactly: 1e-06, not 9.99...e-07 */
	for (int prec = fabs(v) < 1e15 && v == (double)(int64_t)v ? 17 : 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	o_key(o, key);
	fprintf(o->f, "%s%s", buf, o->json ? "" : "\n");
}

static void o_str(struct out *o, const char *key, const char *v)
{
	o_key(o, key);
	if (o->json)
		json_write_string(o->f, v, strlen(v));
	else
		fprintf(o->f, "%s\n", v);
}

static void o_bool(struct out *o, const char *key, bool v)
{
	o_key(o, key);
	fprintf(o->f, "%s%s", v ? "true" : "false", o->json ? "" : "\n");
}

static void o_ints(struct out *o, const char *key, const int *v, int n)
{
	o_key(o, key);
	fputc('[', o->f);
	for (int i = 0; i < n; i++)
		fprintf(o->f, "%s%d", i ? (o->json ? "," : ", ") : "", v[i]);
	fprintf(o->f, "]%s", o->json ? "" : "\n");
}

static void o_open(struct out *o, const char *key)
{
	if (o->json) {
		o_key(o, key);
		fputc('{', o->f);
		o->first = true;
	} else {
		snprintf(o->prefix, sizeof(o->prefix), "%s.", key);
	}
}

static void o_close(struct out *o)
{
	if (o->json)
		fputc('}', o->f);
	o->prefix[0] = 0;
	o->first = false;
}

static void info_text_config(struct out *o, const struct qvl_text_config *t)
{
	o_open(o, "text");
	o_int(o, "hidden_size", t->hidden_size);
	o_int(o, "num_layers", t->num_layers);
	o_int(o, "num_heads", t->num_heads);
	o_int(o, "num_kv_heads", t->num_kv_heads);
	o_int(o, "head_dim", t->head_dim);
	o_int(o, "intermediate_size", t->intermediate_size);
	o_int(o, "vocab_size", t->vocab_size);
	o_int(o, "max_position", t->max_position);
	o_num(o, "rms_norm_eps", t->rms_norm_eps);
	o_num(o, "rope_theta", t->rope_theta);
	o_ints(o, "mrope_section", t->mrope_section, 3);
	o_bool(o, "tie_word_embeddings", t->tie_word_embeddings);
	o_close(o);
}

static void info_vision_config(struct out *o, const struct qvl_vision_config *v)
{
	if (!v->present) {
		if (o->json) {
			o_key(o, "vision");
			fputs("null", o->f);
		} else {
			fputs("vision: none\n", o->f);
		}
		return;
	}
	o_open(o, "vision");
	o_int(o, "depth", v->depth);
	o_int(o, "hidden_size", v->hidden_size);
	o_int(o, "intermediate_size", v->intermediate_size);
	o_int(o, "num_heads", v->num_heads);
	o_int(o, "patch_size", v->patch_size);
	o_int(o, "temporal_patch_size", v->temporal_patch_size);
	o_int(o, "spatial_merge_size", v->spatial_merge_size);
	o_int(o, "out_hidden_size", v->out_hidden_size);
	o_int(o, "num_position_embeddings", v->num_position_embeddings);
	o_ints(o, "deepstack_indexes", v->deepstack_indexes, v->n_deepstack);
	o_close(o);
}

static void info_print(const struct qvl_model *m, bool json)
{
	struct out o = {.f = stdout, .json = json, .first = true};
	struct info_totals tot = {0};

	for (size_t i = 0; i < m->ntensors; i++) {
		const struct qvl_tensor *t = &m->tensors[i];

		tot.bytes[t->dtype] += t->nbytes;
		tot.count[t->dtype]++;
		tot.params += t->nelem;
		tot.total_bytes += t->nbytes;
	}
	if (json)
		fputc('{', o.f);
	o_str(&o, "format", qvl_format_name(m->format));
	o_str(&o, "path", m->path);
	if (json) {
		o_key(&o, "files");
		fputc('[', o.f);
		for (size_t i = 0; i < m->nsources; i++) {
			if (i)
				fputc(',', o.f);
			json_write_string(o.f, m->sources[i].path, strlen(m->sources[i].path));
		}
		fputc(']', o.f);
	} else {
		for (size_t i = 0; i < m->nsources; i++)
			o_str(&o, "file", m->sources[i].path);
	}
	o_str(&o, "architecture", m->config.architecture);
	o_str(&o, "tokenizer",
	      m->tokenizer_json_path	  ? m->tokenizer_json_path
	      : m->tokenizer_json	  ? "embedded tokenizer.json"
	      : m->gguf_text		  ? "gguf metadata"
					  : "none");
	o_ints(&o, "eos_token_ids", m->gen.eos_token_ids, m->gen.n_eos);
	info_text_config(&o, &m->config.text);
	info_vision_config(&o, &m->config.vision);
	o_int(&o, "tensors", (int64_t)m->ntensors);
	o_int(&o, "parameters", (int64_t)tot.params);
	o_int(&o, "bytes", (int64_t)tot.total_bytes);
	o_open(&o, "bytes_by_dtype");
	for (int d = 0; d < QVL_DT_COUNT; d++)
		if (tot.count[d])
			o_int(&o, qvl_dtype_name((enum qvl_dtype)d), (int64_t)tot.bytes[d]);
	o_close(&o);
	o_open(&o, "tensors_by_dtype");
	for (int d = 0; d < QVL_DT_COUNT; d++)
		if (tot.count[d])
			o_int(&o, qvl_dtype_name((enum qvl_dtype)d), (int64_t)tot.count[d]);
	o_close(&o);
	if (json)
		fputs("}\n", o.f);
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"mmproj", required_argument, NULL, 'm'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *mmproj = NULL;
	struct qvl_model *m;
	struct qvl_err err = {{0}};
	bool json = false;
	struct cli cl;
	int c, rc;

	cli_init(&cl, "info", argc, argv, "h", opts);
	while ((c = cli_next(&cl)) != -1) {
		switch (c) {
		case 'm':
			mmproj = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			info_usage(stdout);
			return 0;
		default:
			return cli_opt_error(&cl, c);
		}
	}
	if (argc - optind != 1)
		return cli_usage("info", "expected exactly one MODEL");
	/* a pack describes itself from its head: no shard is read */
	rc = qvl_model_describe(&m, argv[optind], mmproj, &err);
	if (rc)
		return cli_fail("info", rc, &err);
	info_print(m, json);
	qvl_model_close(m);
	return 0;
}
