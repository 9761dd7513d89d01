/* qvlctl convert MODEL -o OUT.gguf [--type T] [--mmproj OUT-mmproj.gguf]:
 * a Qwen3-VL model to the GGUF files llama.cpp loads (src/convert.h). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "convert.h"
#include "json.h"
#include "progress.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qvlctl convert MODEL -o OUT.gguf [--type TYPE] [--mmproj OUT-mmproj.gguf]\n"
		"                      [--in-mmproj FILE] [--json] [--quiet]\n"
		"\n"
		"Write MODEL (a Hugging Face directory, a directory of GGUF files or a text\n"
		".gguf) as the GGUF files llama.cpp loads: the text model, and with --mmproj\n"
		"the vision tower, with the tensor names, types and metadata llama.cpp's\n"
		"convert_hf_to_gguf.py (and llama-quantize, for the quantized types) write.\n"
		"Each file is written to its name + .tmp and renamed when complete.\n"
		"\n"
		"  -o, --output OUT.gguf     the text model\n"
		"  --type TYPE               %s (default bf16); the quantized\n"
		"                            types choose per-tensor types as llama-quantize's\n"
		"                            presets do (see qvlctl(8))\n"
		"  --mmproj OUT-mmproj.gguf  also write the vision tower (f32 for f32, bf16 for\n"
		"                            bf16, f16 otherwise)\n"
		"  --in-mmproj FILE          the source mmproj GGUF when MODEL is a .gguf file\n"
		"  --json                    print the summary as one JSON object\n"
		"  --quiet                   no progress line (shown only when stderr is a\n"
		"                            terminal)\n"
		"  --help                    show this help\n",
		cv_preset_names());
}

static void print_types(FILE *f, const struct cv_file_result *fr, bool json)
{
	bool first = true;

	for (int t = 0; t < QVL_DT_COUNT; t++) {
		if (!fr->count[t])
			continue;
		if (json) {
			fprintf(f, "%s", first ? "" : ",");
			json_write_string(f, qvl_dtype_name((enum qvl_dtype)t),
					  strlen(qvl_dtype_name((enum qvl_dtype)t)));
			fprintf(f, ":%" PRIu64, fr->count[t]);
		} else {
			fprintf(f, "%s%s %" PRIu64, first ? "" : ", ",
				qvl_dtype_name((enum qvl_dtype)t), fr->count[t]);
		}
		first = false;
	}
}

static void print_file(FILE *f, const char *key, const struct cv_file_result *fr, bool json)
{
	if (json) {
		fprintf(f, "\"%s\":{\"path\":", key);
		json_write_string(f, fr->path, strlen(fr->path));
		fprintf(f,
			",\"bytes\":%" PRIu64 ",\"tensors\":%" PRIu64
			",\"file_type\":%u,\"types\":{",
			fr->bytes, fr->n_tensors, fr->ftype);
		print_types(f, fr, true);
		fprintf(f, "}}");
		return;
	}
	fprintf(f,
		"%s: %s\n%s.bytes: %" PRIu64 "\n%s.tensors: %" PRIu64
		"\n%s.file_type: %u\n%s.types: ",
		key, fr->path, key, fr->bytes, key, fr->n_tensors, key, fr->ftype, key);
	print_types(f, fr, false);
	fputc('\n', f);
}

static void on_progress(void *ctx, const char *stage, double done, double total)
{
	struct progress *p = ctx;

	if (!stage)
		progress_end(p);
	else if (done == 0)
		progress_start(p, stage, total, "MB", 1e6);
	else
		progress_update(p, done);
}

int cmd_convert(int argc, char **argv)
{
	enum { OPT_TYPE = 256, OPT_MMPROJ, OPT_IN_MMPROJ, OPT_JSON, OPT_QUIET, OPT_HELP };
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"mmproj", required_argument, NULL, OPT_MMPROJ},
	    {"in-mmproj", required_argument, NULL, OPT_IN_MMPROJ},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct cv_opts o = {.preset = cv_preset_find("bf16"), .progress = on_progress};
	struct qvl_err err = {{0}};
	struct cv_result r;
	bool json = false, quiet = false;
	struct progress pg;
	struct cli cl;
	int c, rc;

	cli_init(&cl, "convert", argc, argv, "o:h", longopts);
	while ((c = cli_next(&cl)) != -1) {
		switch (c) {
		case 'o':
			o.out = optarg;
			break;
		case OPT_TYPE:
			o.preset = cv_preset_find(optarg);
			if (!o.preset)
				return cli_usage("convert", "--type: unknown type '%s' (%s)",
						 optarg, cv_preset_names());
			break;
		case OPT_MMPROJ:
			o.out_mmproj = optarg;
			break;
		case OPT_IN_MMPROJ:
			o.in_mmproj = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_QUIET:
			quiet = true;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			return cli_opt_error(&cl, c);
		}
	}
	if ((rc = cli_operand("convert", argc, argv, "MODEL", &o.model)))
		return rc;
	if (!o.out)
		return cli_usage("convert", "missing -o OUT.gguf");
	if (o.out_mmproj && !strcmp(o.out, o.out_mmproj))
		return cli_usage("convert", "-o and --mmproj name the same file '%s'", o.out);
	progress_init(&pg, "convert", quiet);
	o.progress_ctx = &pg;
	rc = cv_convert(&o, &r, &err);
	progress_end(&pg);
	if (rc)
		return cli_fail("convert", rc, &err);
	if (json) {
		printf("{\"type\":\"%s\",", o.preset->name);
		print_file(stdout, "text", &r.text, true);
		if (r.has_mmproj) {
			putchar(',');
			print_file(stdout, "mmproj", &r.mmproj, true);
		}
		printf(",\"fallbacks\":%d,\"seconds\":%.3f}\n", r.n_fallback, r.seconds);
	} else {
		printf("type: %s\n", o.preset->name);
		print_file(stdout, "text", &r.text, false);
		if (r.has_mmproj)
			print_file(stdout, "mmproj", &r.mmproj, false);
		printf("fallbacks: %d\nseconds: %.1f\n", r.n_fallback, r.seconds);
	}
	return 0;
}
