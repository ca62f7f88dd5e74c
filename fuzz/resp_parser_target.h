// Fuzz target logic for the RESP command parser (kvd/resp.h). Shared by
// fuzz/resp_parser_fuzz.cc (libFuzzer) and tests/proto/resp_fuzz_regression_test.cc.
//
// Invariants beyond "no crash, no out-of-bounds read":
//  - a parsed command never claims more bytes than it was given, and the
//    limits hold (argument count, bulk size);
//  - every multibulk command re-encodes to exactly the bytes it consumed
//    (the form is canonical), and the re-encoding parses to the same args;
//  - a prefix of a complete command never parses as a command, and its
//    need_bytes hint never asks for more than the whole command.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "kvd/resp.h"

namespace kvd::fuzz {

inline int RespParserTarget(const uint8_t* data, size_t size) {
  resp::ParserLimits limits;
  limits.max_bulk_bytes = 4096;  // small, so the limit paths are reached
  limits.max_args = 64;
  limits.max_inline_bytes = 256;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  resp::CommandParser parser(limits);
  // Parse as a pipeline: command after command until the input runs out.
  for (int guard = 0; guard < 10000 && !in.empty(); ++guard) {
    const resp::Parsed r = parser.Parse(in);
    if (r.outcome == resp::ParseOutcome::kNeedMore) {
      KVD_FUZZ_CHECK(r.need_bytes > in.size());
      break;
    }
    if (r.outcome == resp::ParseOutcome::kProtocolError) {
      KVD_FUZZ_CHECK(!r.error.empty());
      break;
    }
    KVD_FUZZ_CHECK(r.consumed > 0 && r.consumed <= in.size());
    const auto args = parser.args();
    KVD_FUZZ_CHECK(args.size() <= limits.max_args);
    std::vector<std::string> copy(args.begin(), args.end());
    if (!r.is_inline && !copy.empty()) {
      for (const auto& a : copy) KVD_FUZZ_CHECK(a.size() <= limits.max_bulk_bytes);
      std::vector<std::string_view> views(copy.begin(), copy.end());
      const std::string again = resp::EncodeCommand(views);
      KVD_FUZZ_CHECK(again == in.substr(0, r.consumed));
      // Every proper prefix of the command is incomplete, never a command.
      resp::CommandParser prefix_parser(limits);
      for (size_t cut = 1; cut < again.size(); cut += 1 + cut / 8) {
        const resp::Parsed pr = prefix_parser.Parse(std::string_view(again).substr(0, cut));
        KVD_FUZZ_CHECK(pr.outcome == resp::ParseOutcome::kNeedMore);
        KVD_FUZZ_CHECK(pr.need_bytes > cut && pr.need_bytes <= again.size());
      }
    }
    in.remove_prefix(r.consumed);
  }
  return 0;
}

}  // namespace kvd::fuzz
