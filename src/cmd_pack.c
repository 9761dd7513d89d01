/* qvlctl pack MODEL -o FILE.qvl [--type T]: write a model as one qvl pack
 * (src/pack.h, qvl-pack(5)). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "commands.h"
#include "pack.h"
#include "progress.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: qvlctl pack MODEL -o FILE.qvl [--type TYPE] [--mmproj FILE] [--quiet]\n"
		   "\n"
		   "Write MODEL (a Hugging Face directory, a directory of GGUF files or a text\n"
		   ".gguf with --mmproj) as one qvl pack: config and tokenizer embedded, one\n"
		   "4096-aligned shard per layer with a CRC-64 each (qvl-pack(5)). The file is\n"
		   "written to FILE.qvl.tmp and renamed when complete.\n"
		   "\n"
		   "  -o, --output FILE.qvl  the pack to write\n"
		   "  --type TYPE            the type of the weight matrices: f32, f16, bf16,\n"
		   "                         q8_0, q4_0, q4_k, ... (any type the engine computes\n"
		   "                         on); default: keep the source's types\n"
		   "  --mmproj FILE          the vision GGUF for a .gguf MODEL\n"
		   "  --quiet                no progress line (shown only on a terminal)\n"
		   "  --help                 show this help\n");
}

static int parse_type(const char *s)
{
	for (int t = 0; t < QVL_DT_COUNT; t++)
		if (!strcasecmp(s, qvl_dtype_name((enum qvl_dtype)t)))
			return t;
	return -1;
}

int cmd_pack(int argc, char **argv)
{
	enum { OPT_TYPE = 256, OPT_MMPROJ, OPT_QUIET, OPT_HELP };
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"mmproj", required_argument, NULL, OPT_MMPROJ},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct pack_opts o = {.type = -1, .progress = progress_cb};
	struct qvl_err err = {{0}};
	struct pack_result r;
	struct progress pg;
	bool quiet = false;
	struct cli cl;
	int c, rc;

	cli_init(&cl, "pack", argc, argv, "o:h", longopts);
	while ((c = cli_next(&cl)) != -1) {
		switch (c) {
		case 'o':
			o.out = optarg;
			break;
		case OPT_TYPE:
			o.type = parse_type(optarg);
			if (o.type < 0)
				return cli_usage(
				    "pack",
				    "--type: unknown type '%s' (f32, f16, bf16, q8_0, "
				    "q4_0, q4_1, q5_0, q5_1, q2_k .. q6_k, iq4_nl, iq4_xs)",
				    optarg);
			break;
		case OPT_MMPROJ:
			o.mmproj = optarg;
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
	if ((rc = cli_operand("pack", argc, argv, "MODEL", &o.model)))
		return rc;
	if (!o.out)
		return cli_usage("pack", "missing -o FILE.qvl");
	progress_init(&pg, "pack", quiet);
	progress_start(&pg, "writing", 0, "MB", 1e6);
	o.progress_ctx = &pg;
	rc = pack_write(&o, &r, &err);
	progress_end(&pg);
	if (rc)
		return cli_fail("pack", rc, &err);
	printf("file: %s\nbytes: %" PRIu64 "\npayload: %" PRIu64 "\nshards: %" PRIu32
	       "\ntensors: %" PRIu32 "\nseconds: %.1f\n",
	       o.out, r.bytes, r.payload, r.n_shards, r.n_tensors, r.seconds);
	return 0;
}
