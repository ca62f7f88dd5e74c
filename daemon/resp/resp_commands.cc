#include "resp/resp_commands.h"

#include <strings.h>

namespace kvd::daemon {
namespace {

using K = RespKind;
using C = RespCmd;

const RespCommandDef kCommands[] = {
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

}  // namespace

std::span<const RespCommandDef> RespCommands() { return kCommands; }

const RespCommandDef* FindRespCommand(std::string_view name) {
  for (const RespCommandDef& d : kCommands) {
    if (d.name.size() == name.size() && strncasecmp(d.name.data(), name.data(), name.size()) == 0) return &d;
  }
  return nullptr;
}

const RespCommandDef& RespCommandOf(RespCmd id) {
  for (const RespCommandDef& d : kCommands) {
    if (d.id == id) return d;
  }
  return kCommands[0];
}

}  // namespace kvd::daemon
