// INFO's text, built from kvd's STATUS document (node/status_report.h): the
// server, clients, memory, persistence, stats and keyspace sections, with
// Redis's field names where a field means the same, and kvd_* fields for
// what only kvd has (durability mode, LSNs, WAL size).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace kvd::daemon {

// sections: INFO's arguments (empty, "default", "all", "everything" or
// section names, case-insensitive). status_json: Server::StatusJson().
std::string BuildInfo(std::string_view status_json, std::span<const std::string_view> sections);
// LASTSAVE: the Unix time of the last snapshot (or kvd's start when none).
int64_t LastSaveTime(std::string_view status_json);

}  // namespace kvd::daemon
