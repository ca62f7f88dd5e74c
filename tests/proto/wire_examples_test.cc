// Keeps docs/wire_protocol.md's hex examples exact: each example frame is
// built with the codec, its payload fields must concatenate to what the
// payload encoder produces, the frame must decode, and its annotated dump
// must appear verbatim in the spec.
// KVD_PRINT_WIRE_EXAMPLES=1 wire_examples_test prints the dumps (to paste).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/proto/wire_examples.h"

namespace kvd::proto::examples {
namespace {

std::span<const std::byte> B(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::string ReadDoc() {
  const auto path = std::filesystem::path(KVD_SOURCE_DIR) / "docs" / "wire_protocol.md";
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("wire examples are what the codec produces and the spec shows") {
  const auto all = AllExamples();
  const bool print = std::getenv("KVD_PRINT_WIRE_EXAMPLES") != nullptr;
  const std::string doc = ReadDoc();
  REQUIRE_FALSE(doc.empty());
  for (const Example& ex : all) {
    CAPTURE(ex.frame.title);
    const Frame& f = ex.frame;
    const size_t header = f.reply ? kReplyHeaderBytes : kRequestHeaderBytes;
    std::string fields;
    for (const Field& x : f.payload_fields) fields += x.bytes;
    CHECK(f.bytes.substr(kLengthBytes + header) == fields);
    if (!ex.encoder_payload.empty()) CHECK(ex.encoder_payload == fields);
    auto split = SplitFrame(B(f.bytes), kDefaultMaxFrameBytes, header);
    REQUIRE(split);
    CHECK(split->value_or(0) == f.bytes.size());
    if (f.reply) {
      CHECK(DecodeReplyHeader(B(f.bytes)));
    } else {
      CHECK(DecodeRequest(B(f.bytes)));
    }
    const std::string dump = Render(f);
    if (print) std::printf("```\n%s```\n\n", dump.c_str());
    CHECK_MESSAGE(doc.find(dump) != std::string::npos, "docs/wire_protocol.md lacks:\n", dump);
  }
}

}  // namespace kvd::proto::examples
