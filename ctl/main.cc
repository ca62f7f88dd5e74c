// kvctl: see cli.cc for the command line, repl.h for the line protocol.
#include <csignal>

#include "cli.h"

int main(int argc, char** argv) {
  // A server that goes away must show up as an error reply, not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  return kvctl::KvctlMain(argc, argv);
}
