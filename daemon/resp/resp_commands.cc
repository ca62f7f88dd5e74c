#include "resp/resp_commands.h"

#include <cstdint>
#include <iterator>

namespace kvd::daemon {
namespace {

using K = RespKind;
using C = RespCmd;

// In RespCmd order (checked below): RespCommandOf indexes it by id.
constexpr RespCommandDef kCommands[] = {
    {"ping", C::kPing, -1, K::kLocal, false, "connection", "Returns the server's liveliness response.", "[message]"},
    {"echo", C::kEcho, 2, K::kLocal, false, "connection", "Returns the given string.", "message"},
    {"hello", C::kHello, -1, K::kLocal, false, "connection", "Handshakes with the server (RESP2 or RESP3).",
     "[protover [AUTH username password] [SETNAME clientname]]"},
    {"auth", C::kAuth, -2, K::kLocal, false, "connection", "Authenticates the connection.", "[username] password"},
    {"select", C::kSelect, 2, K::kLocal, false, "connection", "Selects the database (kvd has only 0).", "index"},
    {"quit", C::kQuit, -1, K::kLocal, false, "connection", "Closes the connection.", ""},
    {"client", C::kClient, -2, K::kLocal, false, "connection", "SETNAME, GETNAME, ID, SETINFO.",
     "subcommand [arg]"},
    {"command", C::kCommand, -1, K::kLocal, false, "server", "Returns detailed information about commands.",
     "[COUNT|DOCS [command-name ...]]"},
    {"wait", C::kWait, 3, K::kRead, false, "generic",
     "Waits for replicas to make the connection's last write durable; returns how many did.",
     "numreplicas timeout"},
    {"get", C::kGet, 2, K::kNeutral, false, "string", "Returns the string value of a key.", "key"},
    {"set", C::kSet, -3, K::kNeutral, true, "string", "Sets the string value of a key.",
     "key value [NX|XX] [GET]"},
    {"setnx", C::kSetNx, 3, K::kDecided, true, "string", "Sets the value of a key only when it does not exist.",
     "key value"},
    {"getdel", C::kGetDel, 2, K::kDecided, true, "string", "Returns the value of a key and deletes it.", "key"},
    {"del", C::kDel, -2, K::kDecided, true, "generic", "Deletes keys; returns how many existed.", "key [key ...]"},
    {"exists", C::kExists, -2, K::kRead, false, "generic", "Counts the given keys that exist.", "key [key ...]"},
    {"mget", C::kMGet, -2, K::kRead, false, "string", "Returns the values of keys.", "key [key ...]"},
    {"mset", C::kMSet, -3, K::kNeutral, true, "string", "Sets keys atomically (one BATCH record).",
     "key value [key value ...]"},
    {"msetnx", C::kMSetNx, -3, K::kDecided, true, "string",
     "Sets keys atomically only when none of them exists.", "key value [key value ...]"},
    {"dbsize", C::kDbSize, 1, K::kRead, false, "server", "Returns the number of keys.", ""},
    {"scan", C::kScan, -2, K::kRead, false, "generic", "Iterates over the keys in key order.",
     "cursor [MATCH pattern] [COUNT count]"},
    {"keys", C::kKeys, 2, K::kRead, false, "generic", "Returns the keys matching a pattern.", "pattern"},
    {"type", C::kType, 2, K::kRead, false, "generic", "Returns the type of a key (string or none).", "key"},
    {"info", C::kInfo, -1, K::kRead, false, "server", "Returns information about the server.", "[section ...]"},
    {"config", C::kConfig, -2, K::kRead, false, "server", "GET and SET kvd's runtime configuration keys.",
     "GET parameter | SET parameter value"},
    {"save", C::kSave, 1, K::kNeutral, false, "server", "Takes a snapshot; replies once it is durable.", ""},
    {"bgsave", C::kBgSave, -1, K::kNeutral, false, "server", "Takes a snapshot; replies once it is durable.",
     "[SCHEDULE]"},
    {"lastsave", C::kLastSave, 1, K::kRead, false, "server", "Returns the Unix time of the last snapshot.", ""},
};

constexpr bool InIdOrder() {
  for (size_t i = 0; i < std::size(kCommands); ++i) {
    if (static_cast<size_t>(kCommands[i].id) != i + 1) return false;
  }
  return true;
}
static_assert(InIdOrder(), "kCommands must list the commands in RespCmd order");

// The longest command name; a longer argument is no command.
constexpr size_t kMaxName = 8;

// Names to rows: an open-addressing table (linear probing) built at compile
// time, so a lookup hashes the name once and compares one or two rows.
// Any hash works; this one happens to put today's names in distinct slots.
constexpr size_t kSlots = 64;  // a power of two, at least twice the rows
static_assert(std::size(kCommands) * 2 <= kSlots, "grow kSlots with the command table");

// A name of up to kMaxName bytes packed into one integer (byte i at bits
// 8i..8i+7, the rest zero), so that a lookup compares names in one go.
constexpr uint64_t Pack(std::string_view name) {
  uint64_t v = 0;
  for (size_t i = 0; i < name.size(); ++i) v |= uint64_t{static_cast<unsigned char>(name[i])} << (8 * i);
  return v;
}

constexpr size_t NameHash(uint64_t packed, size_t n) {
  return (n * 23 + (packed & 0xff) * 2 + ((packed >> 8) & 0xff) + ((packed >> (8 * (n - 1))) & 0xff)) &
         (kSlots - 1);
}

struct NameTable {
  uint8_t row[kSlots] = {};  // 0: empty; else the index in kCommands + 1
  uint64_t packed[kSlots] = {};
};

// FindRespCommand's folding and packing rely on this.
constexpr bool NamesAreShortLowerCaseWords() {
  for (const RespCommandDef& d : kCommands) {
    if (d.name.empty() || d.name.size() > kMaxName) return false;
    for (char c : d.name) {
      if (c < 'a' || c > 'z') return false;
    }
  }
  return true;
}
static_assert(NamesAreShortLowerCaseWords(), "command names: 1 to kMaxName lower-case letters");

constexpr NameTable BuildNameTable() {
  NameTable t;
  for (size_t i = 0; i < std::size(kCommands); ++i) {
    const std::string_view name = kCommands[i].name;
    size_t h = NameHash(Pack(name), name.size());
    while (t.row[h] != 0) h = (h + 1) & (kSlots - 1);
    t.row[h] = static_cast<uint8_t>(i + 1);
    t.packed[h] = Pack(name);
  }
  return t;
}
constexpr NameTable kByName = BuildNameTable();

}  // namespace

std::span<const RespCommandDef> RespCommands() { return kCommands; }

// Every request looks its name up. Setting bit 0x20 lowers A-Z and leaves
// a-z alone, and no other byte becomes a lower-case letter by it; the names
// are lower-case letters only (checked above), so comparing the folded bytes
// and the length is exactly a case-insensitive match.
const RespCommandDef* FindRespCommand(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) return nullptr;
  uint64_t folded = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    folded |= uint64_t{static_cast<unsigned char>(name[i] | 0x20)} << (8 * i);
  }
  for (size_t h = NameHash(folded, name.size());; h = (h + 1) & (kSlots - 1)) {
    if (kByName.row[h] == 0) return nullptr;
    const RespCommandDef& d = kCommands[kByName.row[h] - 1];
    if (kByName.packed[h] == folded && d.name.size() == name.size()) return &d;
  }
}

const RespCommandDef& RespCommandOf(RespCmd id) {
  const auto i = static_cast<size_t>(id);
  if (i == 0 || i > std::size(kCommands)) return kCommands[0];
  return kCommands[i - 1];
}

}  // namespace kvd::daemon
