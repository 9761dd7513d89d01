# Helpers for the qvl-http tests (sourced after tests/qvld_lib.sh): start
# qvl-http on a free loopback port against the test daemon. Bounded waits;
# killed on exit with the daemon.
: "${QVL_HTTP:=${QVL_BUILDDIR:-.}/qvl-http}"
HPID=
HLOG=$TMP/qvl-http.log
BASE=

http_cleanup() {
	[ -n "$HPID" ] && kill -9 "$HPID" 2>/dev/null
	[ -n "$HPID" ] && wait "$HPID" 2>/dev/null
	cleanup
}
trap http_cleanup EXIT INT TERM

need_http() {
	if [ ! -x "$QVL_HTTP" ]; then
		echo "1..0 # SKIP qvl-http not built (no libmicrohttpd)"
		exit 0
	fi
}

# start_http [ARGS...]: qvl-http on 127.0.0.1:0; sets BASE once it answers /health.
start_http() {
	"$QVL_HTTP" --socket "$SOCK" --listen 127.0.0.1:0 "$@" >>"$HLOG" 2>&1 &
	HPID=$!
	i=0
	while [ $i -lt 200 ]; do
		port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$HLOG" | tail -1)
		if [ -n "$port" ] &&
			curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" |
			grep -q 200; then
			BASE=http://127.0.0.1:$port
			return 0
		fi
		kill -0 "$HPID" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# stop_http: SIGTERM, bounded wait; exit status in $HSTATUS.
stop_http() {
	kill -TERM "$HPID" 2>/dev/null
	i=0
	while kill -0 "$HPID" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$HPID" 2>/dev/null && HSTATUS=timeout
	wait "$HPID" 2>/dev/null
	st=$?
	[ "${HSTATUS:-}" = timeout ] || HSTATUS=$st
	HPID=
}

http_san_clean() {
	! grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$HLOG"
}
