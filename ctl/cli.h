// kvctl's command line (CLI11): global options, one subcommand per command,
// and the REPL when no command is given.
#pragma once

namespace kvctl {

// Parses argv, runs the command, returns the process exit code.
int KvctlMain(int argc, char** argv);

}  // namespace kvctl
