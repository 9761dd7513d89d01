/* qvlctl: the administration tool. Today every command runs in-process on
 * the engine; the daemon commands (status, stats, generate) come with qvld. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "kernels.h"


static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{"info", cmd_info, "describe a model (any format): architecture, sizes, tensors"},
	{"mkmodel", cmd_mkmodel, "write the deterministic test model (testmodel.md)"},
	{"tokenize", cmd_tokenize, "text to token ids"},
	{"detokenize", cmd_detokenize, "token ids to text"},
	{"chat-format", cmd_chat_format, "show the token sequence of a chat request"},
	{"run", cmd_run, "run one generation in-process"},
	{"bench", cmd_bench, "measure prefill and decode speed"},
	{"embed-image", cmd_embed_image, "run the vision tower on an image"},
	{"convert", cmd_convert, "write a model as llama.cpp GGUF files (text + mmproj)"},
	{"pack", cmd_pack, "write a model as one qvl pack (.qvl) for direct I/O"},
	{"verify", cmd_verify, "check every shard of a qvl pack (CRC-64)"},
	{"status", cmd_status, "the daemon's state and thread placement (qvld)"},
	{"tiers", cmd_tiers, "the tiered pool: placement, streaming window, stream rate (qvld)"},
	{"stats", cmd_stats, "the daemon's counters: requests, tokens/s, latency (qvld)"},
	{"generate", cmd_generate, "one generation through the daemon (qvld)"},
	{"shutdown", cmd_shutdown, "drain and stop the daemon (qvld)"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: qvlctl [--socket PATH] COMMAND [OPTIONS]\n       qvlctl COMMAND --help\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nSee qvlctl(8).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	/* --socket PATH before the command: the daemon commands read it from
	 * $QVL_SOCKET, the one place the default rule looks first */
	if (!strcmp(argv[1], "--socket")) {
		if (argc < 4) {
			usage(stderr);
			return 2;
		}
		setenv("QVL_SOCKET", argv[2], 1);
		argc -= 2;
		argv += 2;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("qvlctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		struct qvl_err err = {{0}};

		if (strcmp(argv[1], commands[i].name))
			continue;
		/* $QVL_SIMD is checked once, for every command:
		 * a typo must not be ignored by the commands that never compute */
		if (qvl_kernels_init(&err) < 0) {
			fprintf(stderr, "qvlctl %s: %s\n", argv[1], err.msg);
			return 2;
		}
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "qvlctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
