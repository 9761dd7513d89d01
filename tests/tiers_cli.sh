#!/bin/sh
# qvlctl run --cpu-mem / --gpu-mem on the tiny model packed: the ids and the
# dumped logits with every layer resident equal, bit for bit, those with
# every layer streamed (2 and 3 buffers), with layers on the simulated
# device, and with 1 on the device and 3 streamed; the report shows the placement; bad budgets exit 2 (or
# 1 when only the model can tell) naming the option and the value; an
# injected failing streamed read fails the run naming the shard.
. "${QVL_SRCDIR:-.}/tests/cli_lib.sh"
P=$TMP/tiny.qvl
run_ids() { # run_ids TAG ARGS...: ids on stdout, logits in $TMP/l.TAG, stderr in $TMP/err
	tag=$1
	shift
	"$QVLCTL" run --model "$P" --prompt "hello world" --max-tokens 10 --greedy --ignore-eos \
		--print-ids --precision exact --threads 1 --quiet --dump-logits "$TMP/l.$tag" "$@" \
		2>"$TMP/err"
}
same() { # same TAG: ids and logits of TAG equal the resident run's
	[ -s "$TMP/ids.res" ] && cmp -s "$TMP/ids.res" "$TMP/ids.$1" && cmp -s "$TMP/l.res" "$TMP/l.$1"
}

t_run pack "$MODEL" -o "$P" --quiet
res $st "pack the tiny model"
# sizes from the pack: layers of 123264 bytes (126976 on disk), embeddings and
# head 19451904: the minimum budget is that + 2 buffers = 19705856
run_ids res >"$TMP/ids.res"
res $? "all resident: runs ($(cat "$TMP/ids.res"))"

run_ids s4 --cpu-mem 19800000 >"$TMP/ids.s4"
res "$(same s4 && has "$TMP/err" "layers_streamed: 4" && has "$TMP/err" "buffers: 2" &&
	has "$TMP/err" "placement.text.layer.0: ssd" && echo 0)" \
	"--cpu-mem 19800000: 4 layers streamed, same ids and bit-identical logits"
run_ids s3 --cpu-mem 19900000 >"$TMP/ids.s3"
res "$(same s3 && has "$TMP/err" "layers_streamed: 4" && has "$TMP/err" "buffers: 3" &&
	has "$TMP/err" "window_depth: 2" && echo 0)" \
	"--cpu-mem 19900000: room for 3 buffers, a window 2 layers deep, same ids and logits"
res "$(grep -q "^stream_rate_mbs: [1-9]" "$TMP/err" && grep -q "^layers_served: [1-9]" "$TMP/err" &&
	echo 0)" "the report has a measured stream rate and the layers served"
run_ids d1 --gpu-mem 200K --sim-device-bw 1G >"$TMP/ids.d1"
res "$(same d1 && has "$TMP/err" "layers_sim_device: 1" &&
	has "$TMP/err" "device: simulated device (no GPU" &&
	has "$TMP/err" "placement.text.layer.0: sim-device" && echo 0)" \
	"--gpu-mem 200K: layer 0 on the simulated device (named so), same ids and logits"
run_ids d2 --gpu-mem 130K --cpu-mem 19800000 >"$TMP/ids.d2"
res "$(same d2 && has "$TMP/err" "layers_sim_device: 1" && has "$TMP/err" "layers_streamed: 3" &&
	echo 0)" "--gpu-mem + --cpu-mem: 1 on the device, 3 streamed, same ids and logits"
run_ids v --cpu-mem 19800000 --verbose >"$TMP/ids.v"
res "$(has "$TMP/ids.v" "layers_streamed: 4" && echo 0)" "--verbose: the report on stdout"

# bad budgets
t_run run --model "$P" --prompt hi --cpu-mem 12X
res "$([ $st = 2 ] && has "$TMP/err" "--cpu-mem: '12X': not a size" &&
	has "$TMP/err" "or 25% of RAM)" && ! has "$TMP/err" "%%" && echo 0)" \
	"--cpu-mem 12X: exit 2 naming the option and the value (one % sign)"
t_run run --model "$P" --prompt hi --cpu-mem 101%
res "$([ $st = 2 ] && has "$TMP/err" "--cpu-mem: '101%': a share of RAM is 1%..100%" && echo 0)" \
	"--cpu-mem 101%: exit 2"
t_run run --model "$P" --prompt hi --gpu-mem 10%
res "$([ $st = 2 ] && has "$TMP/err" "--gpu-mem: '10%': a size here" && echo 0)" \
	"--gpu-mem 10%: exit 2 (a size, not a share)"
t_run run --model "$P" --prompt hi --sim-device-bw 0
res "$([ $st = 2 ] && has "$TMP/err" "--sim-device-bw: '0': not a bandwidth" && echo 0)" \
	"--sim-device-bw 0: exit 2"
t_run run --model "$P" --prompt hi --cpu-mem 1M
res "$([ $st = 1 ] && has "$TMP/err" "--cpu-mem: 1.00 MiB is below the minimum of 18.79 MiB" &&
	echo 0)" "--cpu-mem 1M: exit 1, the minimum for this model said"
t_run run --model "$MODEL" --prompt hi --cpu-mem 1G
res "$([ $st = 1 ] && has "$TMP/err" "apply to a .qvl pack" && echo 0)" \
	"--cpu-mem on a Hugging Face directory: exit 1, make a pack"

# an injected failing read of a streamed shard (the reader's fault hook):
# its 3rd read (1 at load for the norms, 1 in the prompt's pass, then the
# first decode step) fails the run cleanly, naming the shard
QVL_TIER_FAULT=text.layer.2:3 run_ids f --cpu-mem 19800000 >/dev/null
st=$?
res "$([ $st = 1 ] && has "$TMP/err" "text.layer.2" &&
	has "$TMP/err" "Input/output error" && echo 0)" "an injected read failure: exit 1 naming the shard"
finish
