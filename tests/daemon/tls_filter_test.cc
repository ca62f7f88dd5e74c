// TlsFilter and TlsContext without sockets: two filters, a server and a
// client, hand each other their output as if it had crossed a wire, so the
// handshake, the certificate checks both ways and the data path are seen
// byte for byte. The certificates come from tests/util/make_test_certs.sh
// (a throw-away CA made with the openssl CLI).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#include "net/tls_filter.h"
#include "repl/repl_tls.h"
#include "util/temp_dir.h"

namespace kvd::daemon {
namespace {

struct Certs {
  test::TempDir dir{"tls"};
  Certs() {
    const std::string cmd =
        std::string("sh ") + KVD_SOURCE_DIR + "/tests/util/make_test_certs.sh " + dir.path() + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  TlsFiles Files(const std::string& name, const std::string& ca = "ca") const {
    return {dir / (name + ".crt"), dir / (name + ".key"), dir / (ca + ".crt")};
  }
  std::shared_ptr<TlsContext> Context(const std::string& name, const std::string& ca = "ca") const {
    auto c = TlsContext::Create(Files(name, ca));
    REQUIRE_MESSAGE(c.has_value(), c.error().ToString());
    return *c;
  }
};

// Moves one filter's output into the other, through a read target of at
// most `chunk` bytes at a time and a plain buffer of `room` bytes (small
// numbers exercise HasPendingPlain). Returns the first error either saw.
struct Pair {
  std::unique_ptr<TlsFilter> server, client;
  std::string server_got, client_got;
  size_t chunk = 64 * 1024, room = 64 * 1024;

  Pair(const TlsContext& s, const TlsContext& c) {
    auto a = TlsFilter::Create(s, TlsFilter::Side::kServer);
    auto b = TlsFilter::Create(c, TlsFilter::Side::kClient);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    server = std::move(a).value();
    client = std::move(b).value();
  }

  // Feeds `wire` to `to`, collecting plain bytes into *got.
  static Status Deliver(TlsFilter* to, std::string_view wire, std::string* got, size_t chunk, size_t room) {
    std::string plain(room, '\0');
    while (!wire.empty() || to->HasPendingPlain()) {
      size_t n = 0;
      if (!wire.empty()) {
        std::span<char> target = to->ReadTarget(plain);
        n = std::min({wire.size(), target.size(), chunk});
        std::copy_n(wire.data(), n, target.data());
        wire.remove_prefix(n);
      }
      auto r = to->OnRead(plain, n);
      if (!r) return r.error();
      got->append(plain.data(), *r);
    }
    return Status::Ok();
  }

  // Runs both ways until neither has anything to say.
  Status Pump() {
    for (int round = 0; round < 100; ++round) {
      std::string c2s, s2c;
      Status cs = client->TakeOutput(&c2s);
      Status ss = server->TakeOutput(&s2c);
      if (c2s.empty() && s2c.empty()) return !cs.ok() ? cs : ss;
      // Delivered even after an error: the alert carries the reason over.
      Status a = Deliver(server.get(), c2s, &server_got, chunk, room);
      Status b = Deliver(client.get(), s2c, &client_got, chunk, room);
      for (const Status* st : {&cs, &ss, &a, &b}) {
        if (!st->ok()) {
          // Let the last alert cross before reporting.
          std::string rest;
          (void)server->TakeOutput(&rest);
          (void)Deliver(client.get(), rest, &client_got, chunk, room);
          rest.clear();
          (void)client->TakeOutput(&rest);
          (void)Deliver(server.get(), rest, &server_got, chunk, room);
          return *st;
        }
      }
    }
    return Status::Internal("no quiet after 100 rounds");
  }
};

TEST_CASE("TlsFilter: a mutual handshake, then bytes both ways, in order") {
  Certs certs;
  auto p = certs.Context("p"), r = certs.Context("r1");
  Pair pair(*p, *r);
  // Written before the handshake: held, then sent.
  CHECK(pair.client->OnWrite("hello from the replica").empty());
  REQUIRE(pair.Pump().ok());
  CHECK(pair.server->handshake_done());
  CHECK(pair.client->handshake_done());
  CHECK(pair.server_got == "hello from the replica");
  (void)pair.server->OnWrite("welcome");
  REQUIRE(pair.Pump().ok());
  CHECK(pair.client_got == "welcome");
}

TEST_CASE("TlsFilter: more plain bytes than the buffer holds come out without another read") {
  Certs certs;
  auto p = certs.Context("p"), r = certs.Context("r1");
  Pair pair(*p, *r);
  REQUIRE(pair.Pump().ok());
  std::string big;
  for (int i = 0; big.size() < (3 << 20); ++i) big += std::to_string(i) + ",";
  (void)pair.server->OnWrite(big);
  // The whole ciphertext arrives in one read but only 1000 plain bytes fit
  // per call: the rest must come through HasPendingPlain.
  pair.chunk = 8 << 20;
  pair.room = 1000;
  REQUIRE(pair.Pump().ok());
  CHECK(pair.client_got.size() == big.size());
  CHECK(pair.client_got == big);
}

TEST_CASE("TlsFilter: a client certificate from another CA is refused by the server") {
  Certs certs;
  auto p = certs.Context("p");
  auto bad = certs.Context("bad", "ca");  // trusts the right CA, presents the wrong one's certificate
  Pair pair(*p, *bad);
  (void)pair.client->OnWrite("HELLO");
  Status st = pair.Pump();
  REQUIRE_FALSE(st.ok());
  CHECK_MESSAGE(st.message().find("TLS") != std::string::npos, st.message());
  // The server saw why, in OpenSSL's words, and got no plain byte.
  auto sst = pair.server->OnRead({}, 0);
  REQUIRE_FALSE(sst.has_value());
  CHECK_MESSAGE(sst.error().message().find("certificate verify failed") != std::string::npos, sst.error().message());
  CHECK_MESSAGE(sst.error().message().find("unable to get local issuer certificate") != std::string::npos,
                sst.error().message());
  CHECK(pair.server_got.empty());
}

TEST_CASE("TlsFilter: a server certificate from another CA is refused by the client") {
  Certs certs;
  auto bad = certs.Context("bad", "ca");
  auto r = certs.Context("r1");
  Pair pair(*bad, *r);
  (void)pair.client->OnWrite("HELLO");
  Status st = pair.Pump();
  REQUIRE_FALSE(st.ok());
  auto cst = pair.client->OnRead({}, 0);
  REQUIRE_FALSE(cst.has_value());
  CHECK_MESSAGE(cst.error().message().find("certificate verify failed") != std::string::npos, cst.error().message());
  CHECK(pair.server_got.empty());
}

TEST_CASE("TlsFilter: plain bytes (another protocol, a non-TLS replica) fail the server's handshake") {
  Certs certs;
  auto p = certs.Context("p");
  auto f = TlsFilter::Create(*p, TlsFilter::Side::kServer);
  REQUIRE(f.has_value());
  std::string plain(1024, '\0');
  const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  std::span<char> target = (*f)->ReadTarget(plain);
  std::copy(garbage.begin(), garbage.end(), target.data());
  auto r = (*f)->OnRead(plain, garbage.size());
  REQUIRE_FALSE(r.has_value());
  CHECK_MESSAGE(r.error().message().find("TLS handshake failed") != std::string::npos, r.error().message());
  // Sticky: the session is never used again.
  CHECK_FALSE((*f)->OnRead(plain, 0).has_value());
  std::string out;
  CHECK_FALSE((*f)->TakeOutput(&out).ok());
}

TEST_CASE("TlsContext: a missing file, a key of another certificate, a file that is not PEM") {
  Certs certs;
  TlsFiles f = certs.Files("p");
  f.cert = certs.dir / "nope.crt";
  auto missing = TlsContext::Create(f);
  REQUIRE_FALSE(missing.has_value());
  CHECK_MESSAGE(missing.error().message().find("certificate " + f.cert + ": No such file") != std::string::npos,
                missing.error().message());

  f = certs.Files("p");
  f.key = certs.dir / "r1.key";
  auto mismatch = TlsContext::Create(f);
  REQUIRE_FALSE(mismatch.has_value());
  CHECK_MESSAGE(mismatch.error().message().find("private key " + f.key + " does not match the certificate " +
                                                f.cert) != std::string::npos,
                mismatch.error().message());

  f = certs.Files("p");
  f.ca = certs.dir / "junk.pem";
  std::ofstream(f.ca) << "not a certificate\n";
  auto junk = TlsContext::Create(f);
  REQUIRE_FALSE(junk.has_value());
  CHECK_MESSAGE(junk.error().message().find("CA " + f.ca) != std::string::npos, junk.error().message());

  // The config's side: off without tls_*, the file named with the key table.
  ReplicationConfig c;
  c.listen = "127.0.0.1:0";
  auto off = MakeReplicationTls(c);
  REQUIRE(off.has_value());
  CHECK(*off == nullptr);
  c.tls_cert = certs.dir / "p.crt";
  c.tls_key = certs.dir / "p.key";
  c.tls_ca = certs.dir / "missing-ca.crt";
  auto bad = MakeReplicationTls(c);
  REQUIRE_FALSE(bad.has_value());
  CHECK_MESSAGE(bad.error().message().find("[replication] TLS: CA " + c.tls_ca) != std::string::npos,
                bad.error().message());
}

}  // namespace
}  // namespace kvd::daemon
