#!/usr/bin/env python3
"""Writes the edge-case inputs of tests/tok_edge.c and, with the Hugging Face
referee, their expected ids. Run from the repository root:

  python3 tests/data/tokenizer/gen_edge.py inputs > /tmp/edge_in.jsonl
  node ../shared/tools/hf-tokenize.mjs --module-dir deps/npm \\
      --tokenizer-json deps/tokenizer-qwen3/tokenizer.json --cases /tmp/edge_in.jsonl > /tmp/edge_hf.jsonl
  python3 tests/data/tokenizer/gen_edge.py merge /tmp/edge_in.jsonl /tmp/edge_hf.jsonl \\
      > tests/data/tokenizer/edge.jsonl

(the long cases likewise with `long-inputs` / `merge-long`, into edge_long.jsonl,
whose expected ids are run-length encoded as [[id, count], ...])."""
import json
import sys

ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
         "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
         "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
         "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
         "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
         "</tool_response>", "<think>", "</think>"]


def inputs():
    c = []
    add = lambda name, text, special=True: c.append({"name": name, "text": text, "special": special})
    add("empty", "")
    add("empty_nospecial", "", False)
    for i, tok in enumerate(ADDED):
        for sp in (True, False):
            s = "" if sp else "_nospecial"
            add(f"added{i}_letters{s}", "x" + tok + "y", sp)
            add(f"added{i}_spaces{s}", " " + tok + " ", sp)
            add(f"added{i}_twice{s}", tok + tok, sp)
            add(f"added{i}_newlines{s}", "\n" + tok + "\n\n", sp)
            add(f"added{i}_cjk_marks{s}", "中" + tok + "e\u0301's", sp)
            add(f"added{i}_punct{s}", "." + tok + "!?", sp)
    add("added_partial", "<|im_start|<|im_end|><|im_star")
    add("added_nested", "<<|im_start|>>")
    add("crlf_lines", "line one\r\nline two\r\n")
    add("crlf_double", "\r\n\r\n")
    add("crlf_spaces", "a \r\n b \r\n\r\n  c")
    add("crlf_mixed", "\r\r\n\n\r x")
    add("crlf_trailing_spaces", "x  \r\n")
    add("crlf_code", "int main() {\r\n\treturn 0;\r\n}\r\n")
    add("comb_acute", "e\u0301")
    add("comb_two", "a\u0301\u0302 o\u0308\u0304")
    add("comb_leading", "\u0301 leading mark")
    add("comb_enclosing", "x\u20DD y\u20DE")
    add("comb_on_digit", "1\u0301 2\u0302")
    add("comb_on_space", " \u0301 \u0308")
    add("comb_hangul_jamo", "\u1100\u1161\u11A8 \u1112\u1161\u11AB")
    add("comb_reorder", "a\u0317\u0301\u0300")
    add("comb_zalgo", "Z\u0351\u036B\u0343\u036A\u0302\u036B\u033D\u034F\u0334\u0319\u0324\u031E\u0349\u035A\u032F\u031E\u0320\u034DA")
    add("emoji_family", "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466")
    add("emoji_technologist", "\U0001F469\U0001F3FD\u200D\U0001F4BB works")
    add("emoji_rainbow_flag", "\U0001F3F3\uFE0F\u200D\U0001F308!")
    add("emoji_flags", "\U0001F1E9\U0001F1EA\U0001F1EF\U0001F1F5 \U0001F1FA\U0001F1F8")
    add("emoji_keycap", "#\uFE0F\u20E3 1\uFE0F\u20E3")
    add("emoji_in_word", "hello\U0001F600world")
    add("emoji_zwj_text", "a\u200Db c\u200Cd")
    add("contr_upper", "I'LL SEE'S IT'D WE'VE")
    add("contr_alone", "' 's 't 're")
    add("contr_quote_runs", "''s '''re")
    add("ws_tabs", "\t\t\tx")
    add("ws_spaces_nl", "  \n  x")
    add("ws_trailing", "x   ")
    add("ws_ideographic", "\u3000x\u3000\u3000y")
    add("ws_nbsp", "\u00A0\u00A0x")
    add("ws_only_mixed", " \t \u00A0 ")
    add("num_arabic_indic", "\u0661\u0662\u0663")
    add("num_roman", "\u216B and \u00BD")
    add("long_word_300", "a" * 300)
    add("long_mixed_300", "ab1 " * 75)
    add("long_cjk_100", "中文字" * 100)
    add("nul_bytes", "a\u0000b\u0000")
    add("c1_controls", "\u0080\u0081\u009F")
    add("noncharacters", "\uFDD0\uFFFE")
    return c


LONG = [("long_a_1m", "a", 1 << 20), ("long_space_1m", " ", 1 << 20),
        ("long_cjk_1m", "中", (1 << 20) // 3), ("long_newline_1m", "\n", 1 << 20),
        ("long_emoji_1m", "\U0001F600", (1 << 20) // 4)]


def long_inputs():
    return [{"name": n, "text": ch * k, "special": True} for n, ch, k in LONG]


def rle(ids):
    out = []
    for i in ids:
        if out and out[-1][0] == i:
            out[-1][1] += 1
        else:
            out.append([i, 1])
    return out


def merge(inp, hf, long):
    cases = [json.loads(l) for l in open(inp, encoding="utf-8") if l.strip()]
    res = {}
    for l in open(hf, encoding="utf-8"):
        if l.strip():
            r = json.loads(l)
            res[r["name"]] = r["ids"]
    for c in cases:
        if long:
            n, ch, k = next(x for x in LONG if x[0] == c["name"])
            out = {"name": n, "char": ch, "count": k, "special": True, "expected_rle": rle(res[n])}
        else:
            out = dict(c, expected=res[c["name"]])
        sys.stdout.write(json.dumps(out, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "inputs":
        for c in inputs():
            print(json.dumps(c, ensure_ascii=True))
    elif mode == "long-inputs":
        for c in long_inputs():
            print(json.dumps(c, ensure_ascii=True))
    elif mode in ("merge", "merge-long"):
        merge(sys.argv[2], sys.argv[3], mode == "merge-long")
    else:
        sys.exit(__doc__)
