/* top.h: `fpu_exporter top`, the live client of a running daemon. */
#ifndef TOP_H
#define TOP_H

/* argv[0] is "top"; returns the exit status. */
int top_main(int argc, char **argv);

#endif /* TOP_H */
