/* qvlctl embed-image: run one image through HF preprocessing and the vision
 * tower and write the wide output (main | DeepStack...) as raw f32, the
 * layout of the golden files, with timings of each stage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "image.h"
#include "kernels.h"
#include "model.h"
#include "multimodal.h"
#include "pool.h"
#include "preprocess.h"
#include "progress.h"
#include "run_common.h"
#include "util.h"
#include "vision.h"

static void ei_usage(FILE *f)
{
	fprintf(f, "Usage: qvlctl embed-image --model MODEL (--image PATH | --pixels-from RAW "
		   "--size WxH)\n"
		   "                          [-o FILE] [--json] [--threads N] [--mmproj FILE]\n"
		   "                          [--image-max-tokens N] [--precision P]\n"
		   "                          [--copy-weights] [--quiet]\n\n"
		   "Preprocess one image as Hugging Face does (smart_resize, Pillow bicubic,\n"
		   "normalise, patchify) and run the vision tower. Writes f32 rows, one per\n"
		   "merged image token: the main merger output followed by each DeepStack\n"
		   "feature (width out_hidden_size x (1 + DeepStack count)), and prints the\n"
		   "grid, the token count and the time of each stage.\n\n"
		   "  --model MODEL      model directory or GGUF (with vision)\n"
		   "  --mmproj FILE      the mmproj GGUF for a .gguf MODEL\n"
		   "  --image PATH       PNG or JPEG\n"
		   "  --pixels-from RAW  raw RGB8 file (rows of W*3 bytes) instead of --image\n"
		   "  --size WxH         size of the --pixels-from image\n"
		   "  --image-max-tokens N\n"
		   "                     at most N merged tokens; a larger image is downscaled\n"
		   "                     (default: the preprocessor config's longest_edge /\n"
		   "                     (patch x merge)^2, 16384 for Qwen3-VL)\n"
		   "  -o FILE            output file (omit to only print the summary)\n"
		   "  --json             print the summary as one JSON object\n"
		   "  --threads N        worker threads (default: one per physical core; more\n"
		   "                     than the usable CPUs are clamped)\n"
		   "  --precision P      matrix products: bf16 (default) or exact (f32, what\n"
		   "                     the golden tests check)\n"
		   "  --copy-weights     copy the tower's weights into huge pages first (as qvld\n"
		   "                     does): the encode runs faster, the load takes longer\n"
		   "  --quiet            no progress line (shown only when stderr is a terminal)\n"
		   "  --help             show this help\n");
}

/* The tower reports blocks; the line shows them as a share of the tokens. */
static void ei_progress(void *ctx, int done, int depth)
{
	struct progress *p = ctx;

	progress_update(p, p->total * done / depth);
}

/* The image: decoded from --image, or raw RGB8 from --pixels-from. */
static int ei_load(struct qvl_image *im, const char *image, const char *pixels, int pw, int ph,
		   struct qvl_err *err)
{
	struct qvl_map map;
	int rc;

	if (image)
		return qvl_image_load(im, image, NULL, err);
	rc = qvl_map_file(&map, pixels, err);
	if (rc)
		return rc;
	rc = qvl_image_from_rgb(im, map.data, map.size, pw, ph, (size_t)pw * 3, NULL, err);
	if (!rc && map.size != (size_t)pw * ph * 3)
		rc = qvl_errf(err, -EINVAL, "%s: %zu bytes, expected %dx%dx3", pixels, map.size, pw,
			      ph);
	qvl_unmap(&map);
	return rc;
}

int cmd_embed_image(int argc, char **argv)
{
	enum {
		O_MODEL = 256,
		O_MMPROJ,
		O_IMAGE,
		O_PIXELS,
		O_SIZE,
		O_JSON,
		O_THREADS,
		O_IMAGE_MAX,
		O_PRECISION,
		O_QUIET,
		O_COPY_WEIGHTS,
		O_HELP
	};
	static const struct option opts[] = {
	    {"model", required_argument, NULL, O_MODEL},
	    {"mmproj", required_argument, NULL, O_MMPROJ},
	    {"image", required_argument, NULL, O_IMAGE},
	    {"pixels-from", required_argument, NULL, O_PIXELS},
	    {"size", required_argument, NULL, O_SIZE},
	    {"json", no_argument, NULL, O_JSON},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"image-max-tokens", required_argument, NULL, O_IMAGE_MAX},
	    {"precision", required_argument, NULL, O_PRECISION},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"copy-weights", no_argument, NULL, O_COPY_WEIGHTS},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd = "embed-image", *model = NULL, *mmproj = NULL, *image = NULL,
		   *pixels = NULL, *outp = NULL;
	int pw = 0, ph = 0, json = 0, c, rc = 0, status = 1;
	int64_t threads = 0, max_tok = 0;
	bool quiet = false;
	struct qvl_vision_opts vo = {.precision = QVL_PREC_BF16};
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct qvl_pool *pool = NULL;
	struct qvl_vision *v = NULL;
	struct qvl_image im = {0};
	struct qvl_pixels px = {0};
	struct qvl_pp_params pp;
	struct progress pg;
	struct cli cl;
	FILE *out = NULL;
	float *wide = NULL;
	size_t ntok = 0;
	double t0, t1, t2, t3;

	cli_init(&cl, cmd, argc, argv, "o:", opts);
	while (!rc && (c = cli_next(&cl)) != -1) {
		switch (c) {
		case O_MODEL:
			model = optarg;
			break;
		case O_MMPROJ:
			mmproj = optarg;
			break;
		case O_IMAGE:
			image = optarg;
			break;
		case O_PIXELS:
			pixels = optarg;
			break;
		case 'o':
			outp = optarg;
			break;
		case O_JSON:
			json = 1;
			break;
		case O_SIZE: {
			char tail;

			if (sscanf(optarg, "%dx%d%c", &pw, &ph, &tail) != 2 || pw <= 0 || ph <= 0)
				rc = cli_usage(cmd, "bad --size '%s': want WxH, both positive",
					       optarg);
			break;
		}
		case O_THREADS:
			rc = cli_int(cmd, "--threads", optarg, 1, 1024, &threads);
			break;
		case O_IMAGE_MAX:
			rc = cli_int(cmd, "--image-max-tokens", optarg, 1, 1 << 20, &max_tok);
			break;
		case O_PRECISION:
			rc = cli_precision(cmd, optarg, &vo.precision);
			break;
		case O_QUIET:
			quiet = true;
			break;
		case O_COPY_WEIGHTS:
			vo.copy_weights = true;
			break;
		case O_HELP:
			ei_usage(stdout);
			return 0;
		default:
			return cli_opt_error(&cl, c);
		}
	}
	if (rc)
		return rc;
	if (optind != argc)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (!model)
		return cli_usage(cmd, "--model is required");
	if (!image == !pixels)
		return cli_usage(cmd, "need exactly one of --image, --pixels-from");
	if (pixels && !pw)
		return cli_usage(cmd, "--pixels-from needs --size WxH");
	if (threads)
		threads = cli_threads(cmd, (int)threads);
	progress_init(&pg, cmd, quiet);
	/* the output file first: a path that cannot be written fails now */
	if (outp && (rc = cli_open_out(&out, "-o", outp, &err)))
		goto out;
	if ((rc = qvl_kernels_init(&err)) || (rc = qvl_model_open(&m, model, mmproj, &err)) ||
	    (rc = qvl_pp_params_from_model(&pp, m, &err)) ||
	    (max_tok && (rc = qvl_pp_set_max_tokens(&pp, max_tok, &err))) ||
	    (rc = qvl_pool_create(&pool, (int)threads, NULL, &err)) ||
	    (rc = qvl_vision_create(&v, m, pool, &vo, &err)))
		goto out;
	t0 = qvl_now();
	if ((rc = ei_load(&im, image, pixels, pw, ph, &err)))
		goto out;
	t1 = qvl_now();
	if (qvl_pp_over_budget(im.h, im.w, &pp))
		fprintf(stderr, "qvlctl %s: %s: %dx%d is downscaled to fit %lld tokens%s\n", cmd,
			image ? image : pixels, im.w, im.h, (long long)qvl_pp_max_tokens(&pp),
			max_tok ? " (--image-max-tokens)" : " (the preprocessor config's budget)");
	rc = qvl_preprocess(&im, &pp, pool, &px, NULL, &err);
	if (rc) {
		qvl_err_prefix(&err, rc, "%s", image ? image : pixels);
		goto out;
	}
	t2 = qvl_now();
	if (pg.on)
		qvl_vision_set_progress(v, ei_progress, &pg);
	progress_start(&pg, "vision", px.n / (qvl_vision_merge(v) * qvl_vision_merge(v)), "tokens",
		       1);
	rc = qvl_mm_encode_wide(v, &px, &wide, &ntok, &err);
	progress_end(&pg);
	if (rc)
		goto out;
	t3 = qvl_now();
	const int K = qvl_vision_n_deepstack(v), H = qvl_vision_out_dim(v);
	if (out) {
		rc = cli_write_close(out, "-o", outp, wide,
				     ntok * (size_t)H * (size_t)(1 + K) * sizeof(float), &err);
		out = NULL;
		if (rc)
			goto out;
	}
	if (json)
		printf("{\"input_wh\":[%d,%d],\"resized_wh\":[%d,%d],\"grid_thw\":[%d,%d,%d],"
		       "\"n_tokens\":%zu,\"width\":%d,\"n_deepstack\":%d,\"decode_s\":%.6f,"
		       "\"preprocess_s\":%.6f,\"tower_s\":%.6f,\"precision\":\"%s\"}\n",
		       im.w, im.h, px.rw, px.rh, px.grid[0], px.grid[1], px.grid[2], ntok,
		       H * (1 + K), K, t1 - t0, t2 - t1, t3 - t2, qvl_precision_name(vo.precision));
	else
		printf("input %dx%d -> resized %dx%d, grid_thw %d %d %d, %zu tokens x %d "
		       "(main + %d DeepStack)\n"
		       "decode %.3f ms, preprocess %.3f ms, tower %.3f ms (precision %s)\n",
		       im.w, im.h, px.rw, px.rh, px.grid[0], px.grid[1], px.grid[2], ntok,
		       H * (1 + K), K, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3,
		       run_precision_desc(vo.precision));
	status = 0;
out:
	if (rc)
		cli_fail(cmd, rc, &err);
	if (out)
		fclose(out);
	free(wide);
	qvl_pixels_free(&px);
	qvl_image_free(&im);
	qvl_vision_destroy(v);
	if (pool)
		qvl_pool_destroy(pool);
	if (m)
		qvl_model_close(m);
	return status;
}
