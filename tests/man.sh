#!/bin/sh
# The man pages lint clean with mandoc (-T lint -W warning), and qvlctl(8) is
# complete: every command has a section; every option a command's --help
# shows is in that command's synopsis and has an entry in its OPTIONS
# subsection; OPTIONS, ENVIRONMENT, EXIT STATUS and EXAMPLES exist;
# ENVIRONMENT names every variable src/ and simd/ read; and every option the
# rendered page shows exists (catches a value rendered as a flag, "-f32").
# The README says the demo model is random, how to run a real one with
# options the page documents, and how to read the page from the source tree.
set -u
mandir="$QVL_SRCDIR/man"
page="$mandir/qvlctl.8"
[ -n "${MANDOC:-}" ] && [ -x "$MANDOC" ] || { echo "1..0 # SKIP mandoc not found"; exit 0; }
pages=$(ls "$mandir"/*.[1-8] 2>/dev/null)
[ -n "$pages" ] || { echo "1..0 # SKIP no man pages"; exit 0; }
cmds=$("$QVLCTL" --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1}')
[ -n "$cmds" ] || { echo "1..0 # SKIP qvlctl --help lists no command"; exit 0; }
sections="OPTIONS ENVIRONMENT EXIT_STATUS EXAMPLES"

# Configure's options are named in FILES and --tokenizer-dir.
configure_opts="--with-tokenizer-dir --prefix --datadir"

n=0
for p in $pages; do n=$((n + 1)); done
for c in $cmds; do n=$((n + 3)); done
echo "1..$((n + 4 + 2 + 4 + 1))"
i=0
ok() { i=$((i + 1)); echo "ok $i - $1"; }
notok() { i=$((i + 1)); echo "not ok $i - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'; }

for p in $pages; do
	if out=$("$MANDOC" -T lint -W warning "$p" 2>&1); then
		ok "$(basename "$p") lints clean"
	else
		notok "$(basename "$p")" "$out"
	fi
done

# help_opts CMD: the options CMD --help shows, one per line (--name, -o)
help_opts() {
	"$QVLCTL" "$1" --help | grep -oE '(^|[][ (|,])--?[a-zA-Z][a-zA-Z0-9-]*' |
		sed 's/^[][ (|,]//' | sort -u
}
# fl OPT: OPT as mdoc writes it after Fl (--json -> -json, -o -> o)
fl() { echo "${1#-}"; }
# section NAME [SUBSECTION]: the page's lines in that section (and subsection)
section() {
	awk -v sh="$1" -v ss="${2:-}" '
		/^\.Sh / { in_sh = (substr($0, 5) == sh); in_ss = 0; next }
		/^\.Ss / { in_ss = (substr($0, 5) == ss); next }
		in_sh && (ss == "" || in_ss)' "$page"
}
# synopsis CMD: the SYNOPSIS lines from ".Cm CMD" to the next ".Nm"
synopsis() {
	section SYNOPSIS | awk -v c="$1" '
		/^\.Nm/ { on = 0; next }
		$0 == ".Cm " c { on = 1; next }
		on'
}
all_help=
for c in $cmds; do
	if grep -qE "^\.(Ss|It Cm) \"?$c\"?\$" "$page"; then
		ok "qvlctl(8) documents $c"
	else
		notok "qvlctl(8) does not document $c"
	fi
	opts=$(help_opts "$c")
	# "-o, --output DIR": one of the two is enough in the synopsis
	alias=$("$QVLCTL" "$c" --help | grep -oE -- '-[a-zA-Z], --[a-z][a-z0-9-]*' |
		sed 's/^-\(.\), \(.*\)/\2 \1/')
	all_help="$all_help $opts"
	miss_opt=
	miss_syn=
	ents=$(section OPTIONS "$c")
	syn=$(synopsis "$c")
	for o in $opts; do
		f=$(fl "$o")
		echo "$ents" | grep -qE "^\.It Fl $f( |\$)|^\.It .* Fl $f( |\$)" ||
			miss_opt="$miss_opt $o"
		[ "$o" = --help ] && continue
		short=$(echo "$alias" | awk -v o="$o" '$1 == o {print $2}')
		echo "$syn" | grep -qE "(^|[^a-z])Fl ($f${short:+|$short})( |\$)" ||
			miss_syn="$miss_syn $o"
	done
	if [ -z "$miss_opt" ]; then
		ok "OPTIONS describes every option of $c --help ($(echo $opts | wc -w))"
	else
		notok "OPTIONS $c lacks:$miss_opt"
	fi
	if [ -z "$miss_syn" ]; then
		ok "the synopsis of $c lists every option of its --help"
	else
		notok "the synopsis of $c lacks:$miss_syn"
	fi
done

for s in $sections; do
	s=$(echo "$s" | tr _ ' ')
	if grep -q "^\.Sh $s\$" "$page"; then ok "qvlctl(8) has $s"; else notok "qvlctl(8) has no $s"; fi
done

# getenv, and the developer knobs' parser (src/env.h), in every source folder
vars=$(grep -rhoE --include='*.c' --include='*.h' \
	'(getenv|qvl_env_flag|qvl_env_uint|qvl_env_warn|qvl_env_hold|qvl_env_held)\("[A-Za-z_0-9]+"' \
	"$QVL_SRCDIR/src" "$QVL_SRCDIR/simd" "$QVL_SRCDIR/nvme" "$QVL_SRCDIR/offload" |
	sed 's/.*("\(.*\)"/\1/' | sort -u)
env_sec=$(section ENVIRONMENT)
miss=
for v in $vars; do
	# an entry may name several: .It Ev QVL_IO_QD , QVL_IO_CHUNK
	echo "$env_sec" | grep -qE "^\.It Ev (.* , )?$v( , .*)?\$" || miss="$miss $v"
done
if [ -z "$miss" ]; then
	ok "ENVIRONMENT names every variable read: $(echo $vars)"
else
	notok "ENVIRONMENT lacks:$miss"
fi

# --quiet silences the progress line only (the summary, the load and the
# per-repetition lines stay): each command's entry must say so
bad=
for c in $cmds; do
	"$QVLCTL" "$c" --help | grep -q -- '--quiet' || continue
	ent=$(section OPTIONS "$c" | awk '/^\.It Fl -quiet/ {on = 1; next} /^\.(It|El)/ {on = 0} on')
	echo "$ent" | grep -q progress ||
		bad="$bad $c"
done
grep -qi "standard error is a terminal" "$page" || bad="$bad (DESCRIPTION: only on a terminal)"
if [ -z "$bad" ]; then
	ok "every --quiet entry says it silences the progress line, as --help does; shown only on a terminal"
else
	notok "the --quiet entry of$bad does not match --help (progress line only)"
fi

known=" $(echo $all_help $configure_opts) "
rendered=$("$MANDOC" -T ascii "$page" | sed 's/.\x08//g' |
	grep -oE '(^|[][ (|,])--?[a-zA-Z][a-zA-Z0-9-]*' | sed 's/^[][ (|,]//' | sort -u)
bad=
for o in $rendered; do
	case $known in *" $o "*) ;; *) bad="$bad $o" ;; esac
done
if [ -z "$bad" ]; then
	ok "every option the page shows exists ($(echo $rendered | wc -w))"
else
	notok "the page shows options no command has:$bad"
fi

readme="$QVL_SRCDIR/README.md"
if grep -qi "random weights" "$readme" && grep -qi "gibberish" "$readme"; then
	ok "README says the demo model has random weights and gibberish output"
else
	notok "README does not say the demo model is random"
fi
if grep -qF "man -l man/qvlctl.8" "$readme" && [ -f "$QVL_SRCDIR/man/qvlctl.8" ]; then
	ok "README says how to read qvlctl(8) from the source tree"
else
	notok "README lacks 'man -l man/qvlctl.8'"
fi
# the real-model commands: an HF directory and a GGUF with its mmproj
runs=$(grep -E '^(build/)?qvlctl run|^ +--' "$readme")
miss=
for w in 2B 4B 8B; do
	grep -q -- "-$w-Instruct" "$readme" || miss="$miss Qwen3-VL-$w-Instruct"
done
echo "$runs" | grep -q -- "--model Qwen3-VL-[0-9]*B-Instruct " || miss="$miss (HF directory command)"
echo "$runs" | grep -q -- "--model [^ ]*\.gguf --mmproj [^ ]*\.gguf" || miss="$miss (GGUF command)"
if [ -z "$miss" ]; then
	ok "README names the supported checkpoints and the commands to run them"
else
	notok "README lacks:$miss"
fi
bad=
for o in $(echo "$runs" | grep -oE '(^|[ ])--[a-z][a-z0-9-]*' | sort -u); do
	case $known in *" $o "*) ;; *) bad="$bad $o" ;; esac
	echo "$rendered" | grep -qx -- "$o" || bad="$bad $o"
done
if [ -z "$bad" ]; then
	ok "every option of the README's qvlctl commands is in qvlctl(8)"
else
	notok "README uses options qvlctl(8) lacks:$bad"
fi
