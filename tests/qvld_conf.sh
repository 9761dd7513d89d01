#!/bin/sh
# qvld's settings: qvl.conf errors name the file, line, key and value and
# stop startup with exit 1; flags override the file; --dump-config prints
# every key of the options table, and qvl.conf(5) documents each of them.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
echo "1..21"
C=$TMP/qvl.conf

printf '[qvld]\nctx = 1024\nthreads = many\n' >"$C"
"$QVLD" --config "$C" --dump-config >"$TMP/out" 2>"$TMP/err"
st=$?
grep -q "qvl.conf:3: threads: 'many' is not an integer" "$TMP/err"
res $(( $? + (st != 1) )) "bad value: file, line, key and value named, exit 1 (got $st: $(head -c 200 "$TMP/err"))"

printf '[qvld]\n# a comment\nsocket_mde = 0600\n' >"$C"
"$QVLD" --config "$C" --dump-config >"$TMP/out" 2>"$TMP/err"
st=$?
grep -q "qvl.conf:3: unknown key 'socket_mde'" "$TMP/err"
res $(( $? + (st != 1) )) "unknown key named with its line, exit 1"

printf '[server]\nctx = 10\n' >"$C"
"$QVLD" --config "$C" --dump-config >"$TMP/out" 2>"$TMP/err"
grep -q "qvl.conf:2: key 'ctx' in section \[server\]" "$TMP/err"
res $? "key outside [qvld] refused"

printf '[qvld]\nthis is not ini\n' >"$C"
"$QVLD" --config "$C" --dump-config >"$TMP/out" 2>"$TMP/err"
grep -q "qvl.conf:2: not 'key = value'" "$TMP/err"
res $? "malformed line refused with its number"

"$QVLD" --config "$TMP/absent.conf" --dump-config >"$TMP/out" 2>"$TMP/err"
st=$?
grep -q "absent.conf: No such file" "$TMP/err"
res $(( $? + (st != 1) )) "--config naming a missing file: exit 1"

printf '[qvld]\nctx = 1024\nallow_any = yes\nsocket_mode = 0600\n' >"$C"
"$QVLD" --config "$C" --ctx 2048 --dump-config >"$TMP/out" 2>"$TMP/err"
grep -q "^ctx = 2048$" "$TMP/out" && grep -q "^allow_any = true$" "$TMP/out" &&
	grep -q "^socket_mode = 0600$" "$TMP/out"
res $? "the flag wins over the file, the file over the defaults"

"$QVLD" --ctx 0 --dump-config >"$TMP/out" 2>"$TMP/err"
st=$?
grep -q -- "--ctx: ctx: '0' is not an integer in 1..16777216" "$TMP/err"
res $(( $? + (st != 2) )) "bad flag value: exit 2 naming the flag"

# precision and kv_type: their defaults, and only their listed values
"$QVLD" --dump-config >"$TMP/out" 2>"$TMP/err"
grep -q "^precision = bf16$" "$TMP/out" && grep -q "^kv_type = f16$" "$TMP/out"
res $? "defaults: precision = bf16, kv_type = f16"
printf '[qvld]\nprecision = exact\nkv_type = bf16\n' >"$C"
"$QVLD" --config "$C" --dump-config >"$TMP/out" 2>"$TMP/err"
grep -q "^precision = exact$" "$TMP/out" && grep -q "^kv_type = bf16$" "$TMP/out"
res $? "precision = exact and kv_type = bf16 read from qvl.conf"
"$QVLD" --precision fast --dump-config >"$TMP/out" 2>"$TMP/err"
st=$?
grep -q -- "--precision: precision: 'fast' is not one of: bf16 exact" "$TMP/err"
res $(( $? + (st != 2) )) "--precision fast: exit 2, the allowed values named"

printf '[qvld]\nallow_uids = root,nosuchuser_qvl\n' >"$C"
"$QVLD" --config "$C" --dump-config >"$TMP/out" 2>"$TMP/err"
grep -q "allow_uids: no such user 'nosuchuser_qvl'" "$TMP/err"
res $? "unknown user in allow_uids named"

# the dumped file reads back to the same settings
"$QVLD" --ctx 777 --max-seqs 3 --dump-config >"$TMP/d1" 2>/dev/null
"$QVLD" --config "$TMP/d1" --dump-config >"$TMP/d2" 2>"$TMP/err"
cmp -s "$TMP/d1" "$TMP/d2"
res $? "--dump-config output is a qvl.conf that reproduces itself"

keys=$(sed -n 's/^\([a-z_]*\) = .*/\1/p' "$TMP/d1")
missing=
for k in $keys; do
	grep -q "^\.It Cm $k No" "$QVL_SRCDIR/man/qvl.conf.5" || missing="$missing $k"
done
[ -n "$keys" ] && [ -z "$missing" ]
res $? "qvl.conf(5) documents every key of the options table (missing:${missing:- none})"

# --cpus / cpus = are checked while the options are read (naming the flag or
# file:line), not when the pool is made after the socket is claimed
"$QVLD" --cpus 99999 --dump-config >"$TMP/out" 2>"$TMP/err"
st=$?
grep -q -- "--cpus: cpus: cpulist '99999': CPU 99999 is not available" "$TMP/err"
res $(( $? + (st != 2) )) "--cpus 99999: exit 2 naming the flag and the CPU ($st: $(head -c 200 "$TMP/err"))"
printf '[qvld]\nctx = 1024\ncpus = 0-x\n' >"$C"
"$QVLD" --config "$C" --dump-config >"$TMP/out" 2>"$TMP/err"
st=$?
grep -q "qvl.conf:3: cpus: cpulist '0-x': bad syntax" "$TMP/err"
res $(( $? + (st != 1) )) "cpus = 0-x in qvl.conf: exit 1 naming file:line ($st)"

# a start-up error in the foreground with the log on stderr is said once
"$QVLD" --foreground --model "$TMP/absent-model" --socket "$TMP/once.sock" >/dev/null 2>"$TMP/err"
st=$?
lines=$(grep -c "absent-model" "$TMP/err")
[ $st = 1 ] && [ "$lines" = 1 ]
res $? "start-up error printed once on stderr (exit $st, $lines lines)"

"$QVLD" --no-such-flag >/dev/null 2>&1
res $(( $? != 2 )) "unknown flag: exit 2"

# the client commands' usage errors: exit 2, before any connection
"$QVLCTL" --socket "$TMP/none.sock" generate >/dev/null 2>"$TMP/err"
st=$?
[ $st = 2 ] && grep -q "exactly one of --prompt, --tokens" "$TMP/err"
res $? "qvlctl generate without a prompt: exit 2 ($st)"
"$QVLCTL" --socket "$TMP/none.sock" generate --prompt x --max-tokens 0 >/dev/null 2>"$TMP/err"
st=$?
[ $st = 2 ] && grep -q -- "--max-tokens: invalid value '0'" "$TMP/err"
res $? "qvlctl generate --max-tokens 0: exit 2 naming the option ($st)"
"$QVLCTL" stats --socket "$TMP/none.sock" --bogus >/dev/null 2>&1
res $(( $? != 2 )) "qvlctl stats --bogus: exit 2"
"$QVLCTL" --socket "$TMP/none.sock" generate --prompt x --image "$TMP/absent.png" >/dev/null 2>"$TMP/err"
st=$?
[ $st = 1 ] && grep -q "absent.png" "$TMP/err"
res $? "an unreadable --image fails (exit 1) before connecting ($st)"
exit $fail
