/* qvlctl subcommands. Each lives in its own src/cmd_*.c and follows the same
 * contract: argv[0] is the command name; return the process exit status
 * (0 ok, 1 bad input or failure, 2 usage error). Every command handles
 * --help and prints errors as "qvlctl CMD: message" on stderr. */
#ifndef QVL_COMMANDS_H
#define QVL_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_chat_format(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_embed_image(int argc, char **argv);
int cmd_convert(int argc, char **argv);
/* the qvl pack (src/cmd_pack.c, src/cmd_verify.c) */
int cmd_pack(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/* the daemon commands (src/cmd_status.c, cmd_stats.c, cmd_generate.c) */
int cmd_status(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_shutdown(int argc, char **argv);
/* the tiered pool of the daemon (src/cmd_tiers.c) */
int cmd_tiers(int argc, char **argv);

#endif
