// `kvctl batch`: the operations of one atomic BATCH, from the command line
// or from stdin.
//
// Arguments: a sequence of `put KEY VALUE` and `del KEY` (verbs in any case):
//     kvctl batch put user:1 alice put user:2 bob del user:3
// (put `--` first when a key or value starts with '-').
// Stdin (no arguments, or the single argument `-`): one operation per line,
// `PUT key value` or `DEL key`, with the REPL's tokens (double quotes and
// \" \\ \n \t \r \xNN escapes, so any bytes); blank lines and lines starting
// with '#' are skipped. A batch needs at least one operation.
#pragma once

#include <istream>
#include <span>
#include <string>
#include <vector>

#include "kvd/status.h"
#include "kvd/types.h"

namespace kvctl {

struct BatchEntry {
  kvd::OpType type = kvd::OpType::kPut;
  std::string key;
  std::string value;  // put only
};

// kInvalidArgument naming the bad argument (or line) on any syntax error.
kvd::Result<std::vector<BatchEntry>> ParseBatchArgs(std::span<const std::string> args);
kvd::Result<std::vector<BatchEntry>> ParseBatchLines(std::istream& in);

// Views into entries, for Client::Batch.
std::vector<kvd::BatchOp> BatchOpsOf(const std::vector<BatchEntry>& entries);

}  // namespace kvctl
