/* main.c: the rackrun executable; everything happens in rr_cli_main (args.c). */
#include "cli.h"

int main(int argc, char **argv)
{
    return rr_cli_main(argc, argv);
}
