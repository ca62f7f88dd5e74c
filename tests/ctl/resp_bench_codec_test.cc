// kvctl bench's RESP requests and reply decoder (ctl/resp_bench_codec.h).
#include "resp_bench_codec.h"

#include <doctest/doctest.h>

#include <array>
#include <string>

#include "kvd/resp.h"

namespace kvctl {
namespace {

// The parser the daemon uses must read each patched request as the command
// the bench meant, with exactly these arguments.
void ExpectCommand(const std::string& bytes, std::initializer_list<std::string_view> want) {
  kvd::resp::CommandParser parser;
  const kvd::resp::Parsed p = parser.Parse(bytes);
  REQUIRE(p.outcome == kvd::resp::ParseOutcome::kCommand);
  CHECK(p.consumed == bytes.size());
  CHECK_FALSE(p.is_inline);
  REQUIRE(parser.args().size() == want.size());
  size_t i = 0;
  for (std::string_view w : want) CHECK(parser.args()[i++] == w);
}

TEST_CASE("RESP SET and GET templates patch the key and stay valid commands") {
  const RespRequestTemplate set = RespRequestTemplate::Set("bench:000000000000", "value-bytes");
  const RespRequestTemplate get = RespRequestTemplate::Get("bench:000000000000");
  CHECK(set.bytes() == "*3\r\n$3\r\nSET\r\n$18\r\nbench:000000000000\r\n$11\r\nvalue-bytes\r\n");
  CHECK(get.bytes() == "*2\r\n$3\r\nGET\r\n$18\r\nbench:000000000000\r\n");
  CHECK(set.key_size() == 18);

  std::string out;
  set.AppendTo(&out, "bench:000000000042");
  get.AppendTo(&out, "bench:999999999999");
  const std::array<std::string_view, 3> set_args = {"SET", "bench:000000000042", "value-bytes"};
  const std::array<std::string_view, 2> get_args = {"GET", "bench:999999999999"};
  CHECK(out == kvd::resp::EncodeCommand(set_args) + kvd::resp::EncodeCommand(get_args));
  ExpectCommand(out.substr(0, set.bytes().size()), {"SET", "bench:000000000042", "value-bytes"});
  ExpectCommand(out.substr(set.bytes().size()), {"GET", "bench:999999999999"});
}

TEST_CASE("RESP reply decoder: OK, bulk, null, error, partial input") {
  std::string buf = "+OK\r\n$5\r\nhello\r\n$-1\r\n-ERR boom\r\n_\r\n:7\r\n";
  std::string_view in = buf;
  RespReply r = DecodeRespReply(in, 1024);
  CHECK(r.kind == RespReply::kSimple);
  CHECK(r.text == "OK");
  CHECK(r.consumed == 5);
  in.remove_prefix(r.consumed);
  r = DecodeRespReply(in, 1024);
  CHECK(r.kind == RespReply::kBulk);
  CHECK(r.text == "hello");
  CHECK(r.consumed == 11);
  in.remove_prefix(r.consumed);
  r = DecodeRespReply(in, 1024);
  CHECK(r.kind == RespReply::kNull);
  in.remove_prefix(r.consumed);
  r = DecodeRespReply(in, 1024);
  CHECK(r.kind == RespReply::kError);
  CHECK(r.text == "ERR boom");
  in.remove_prefix(r.consumed);
  r = DecodeRespReply(in, 1024);
  CHECK(r.kind == RespReply::kNull);  // RESP3 null
  in.remove_prefix(r.consumed);
  r = DecodeRespReply(in, 1024);
  CHECK(r.kind == RespReply::kInteger);
  CHECK(r.text == "7");
  in.remove_prefix(r.consumed);
  CHECK(in.empty());

  // Every strict prefix of a reply is incomplete, never a wrong reply.
  const std::string bulk = "$5\r\nhello\r\n";
  for (size_t n = 0; n < bulk.size(); ++n) {
    CAPTURE(n);
    CHECK(DecodeRespReply(std::string_view(bulk).substr(0, n), 1024).kind == RespReply::kNeedMore);
  }
  CHECK(DecodeRespReply("+OK\r", 1024).kind == RespReply::kNeedMore);
}

TEST_CASE("RESP reply decoder refuses what SET/GET cannot answer") {
  CHECK(DecodeRespReply("*1\r\n$1\r\na\r\n", 1024).kind == RespReply::kBad);
  CHECK(DecodeRespReply("$x\r\n", 1024).kind == RespReply::kBad);
  CHECK(DecodeRespReply("$-2\r\n", 1024).kind == RespReply::kBad);
  CHECK(DecodeRespReply("$3\r\nabcXY", 1024).kind == RespReply::kBad);  // no CRLF after the bulk
  CHECK(DecodeRespReply("$2000\r\n", 1024).kind == RespReply::kBad);    // over the bound
  CHECK(DecodeRespReply(std::string(70 * 1024, 'a'), 1024).kind == RespReply::kBad);
}

}  // namespace
}  // namespace kvctl
