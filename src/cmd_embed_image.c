/* qvlctl embed-image: run one image through HF preprocessing and the vision
 * tower and write the wide output (main | DeepStack...) as raw f32, the
 * layout of the golden files, with timings of each stage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "image.h"
#include "kernels.h"
#include "model.h"
#include "multimodal.h"
#include "pool.h"
#include "preprocess.h"
#include "util.h"
#include "vision.h"

static void ei_usage(FILE *f)
{
	fprintf(f, "Usage: qvlctl embed-image --model MODEL (--image PATH | --pixels-from RAW "
		   "--size WxH)\n"
		   "                          [-o FILE] [--json] [--threads N] [--mmproj FILE]\n\n"
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
		   "  -o FILE            output file (omit to only print the summary)\n"
		   "  --json             print the summary as one JSON object\n"
		   "  --threads N        worker threads (default: one per physical core)\n"
		   "  --help             show this help\n");
}

static int ei_write(const char *path, const float *x, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(x, sizeof(float), n, f);
	return (fclose(f) || w != n) ? -1 : 0;
}

int cmd_embed_image(int argc, char **argv)
{
	enum { O_MODEL = 256, O_MMPROJ, O_IMAGE, O_PIXELS, O_SIZE, O_JSON, O_THREADS, O_HELP };
	static const struct option opts[] = {
	    {"model", required_argument, NULL, O_MODEL},
	    {"mmproj", required_argument, NULL, O_MMPROJ},
	    {"image", required_argument, NULL, O_IMAGE},
	    {"pixels-from", required_argument, NULL, O_PIXELS},
	    {"size", required_argument, NULL, O_SIZE},
	    {"json", no_argument, NULL, O_JSON},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	const char *model = NULL, *mmproj = NULL, *image = NULL, *pixels = NULL, *outp = NULL;
	int pw = 0, ph = 0, json = 0, c, rc, status = 1;
	int64_t threads = 0;
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct qvl_pool *pool = NULL;
	struct qvl_vision *v = NULL;
	struct qvl_image im = {0};
	struct qvl_pixels px = {0};
	struct qvl_pp_params pp;
	float *wide = NULL;
	size_t ntok = 0;
	double t0, t1, t2, t3;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
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
		case O_SIZE:
			if (sscanf(optarg, "%dx%d", &pw, &ph) != 2 || pw <= 0 || ph <= 0) {
				fprintf(stderr, "qvlctl embed-image: --size: bad value '%s'\n",
					optarg);
				return 2;
			}
			break;
		case O_THREADS:
			if (qvl_parse_i64(optarg, 1, 1024, &threads)) {
				fprintf(stderr, "qvlctl embed-image: --threads: bad value '%s'\n",
					optarg);
				return 2;
			}
			break;
		case O_HELP:
			ei_usage(stdout);
			return 0;
		default:
			ei_usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !model || !image == !pixels || (pixels && !pw)) {
		ei_usage(stderr);
		return 2;
	}
	if ((rc = qvl_kernels_init(&err)) || (rc = qvl_model_open(&m, model, mmproj, &err)) ||
	    (rc = qvl_pp_params_from_model(&pp, m, &err)) ||
	    (rc = qvl_pool_create(&pool, (int)threads, NULL, &err)) ||
	    (rc = qvl_vision_create(&v, m, pool, NULL, &err)))
		goto out;
	t0 = qvl_now();
	if (image) {
		rc = qvl_image_load(&im, image, NULL, &err);
	} else {
		struct qvl_map map;
		rc = qvl_map_file(&map, pixels, &err);
		if (!rc) {
			rc = qvl_image_from_rgb(&im, map.data, map.size, pw, ph, (size_t)pw * 3,
						NULL, &err);
			if (!rc && map.size != (size_t)pw * ph * 3)
				rc = qvl_errf(&err, -EINVAL, "%s: %zu bytes, expected %dx%dx3",
					      pixels, map.size, pw, ph);
			qvl_unmap(&map);
		}
	}
	if (rc)
		goto out;
	t1 = qvl_now();
	rc = qvl_preprocess(&im, &pp, pool, &px, NULL, &err);
	if (rc) {
		qvl_err_prefix(&err, rc, "%s", image ? image : pixels);
		goto out;
	}
	t2 = qvl_now();
	rc = qvl_mm_encode_wide(v, &px, &wide, &ntok, &err);
	if (rc)
		goto out;
	t3 = qvl_now();
	const int K = qvl_vision_n_deepstack(v), H = qvl_vision_out_dim(v);
	if (outp && ei_write(outp, wide, ntok * (size_t)H * (size_t)(1 + K))) {
		fprintf(stderr, "qvlctl embed-image: %s: cannot write\n", outp);
		goto out;
	}
	if (json)
		printf("{\"input_wh\":[%d,%d],\"resized_wh\":[%d,%d],\"grid_thw\":[%d,%d,%d],"
		       "\"n_tokens\":%zu,\"width\":%d,\"n_deepstack\":%d,\"decode_s\":%.6f,"
		       "\"preprocess_s\":%.6f,\"tower_s\":%.6f}\n",
		       im.w, im.h, px.rw, px.rh, px.grid[0], px.grid[1], px.grid[2], ntok,
		       H * (1 + K), K, t1 - t0, t2 - t1, t3 - t2);
	else
		printf("input %dx%d -> resized %dx%d, grid_thw %d %d %d, %zu tokens x %d "
		       "(main + %d DeepStack)\n"
		       "decode %.3f ms, preprocess %.3f ms, tower %.3f ms\n",
		       im.w, im.h, px.rw, px.rh, px.grid[0], px.grid[1], px.grid[2], ntok,
		       H * (1 + K), K, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
	status = 0;
out:
	if (rc)
		fprintf(stderr, "qvlctl embed-image: %s\n", err.msg);
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
