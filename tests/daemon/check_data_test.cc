// kvd --check-data against WALs built with the engine's own writer, then
// damaged: the report, the exit code, and that no byte or name changed.
#include "sys/check_data.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "kvd/snapshot.h"
#include "kvd/state.h"
#include "kvd/wal.h"
#include "util/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using kvd::daemon::CheckData;
using kvd::daemon::Config;
using Json = nlohmann::json;

constexpr uint64_t kSegmentSize = 64 * 1024;

// A temp dir named kvd-check-*.
class TempDir : public kvd::test::TempDir {
 public:
  TempDir() : kvd::test::TempDir("check") {}
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every file under dir with its content: check-data must not change it.
std::map<std::string, std::string> Tree(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().string()] = Slurp(e.path());
  }
  return out;
}

std::string Value(kvd::Lsn lsn) { return std::string(500 + lsn % 13, static_cast<char>('a' + lsn % 26)); }

// Writes PUT records 1..n with the real writer; returns segment paths in order.
std::vector<std::string> WriteWal(const std::string& dir, kvd::Lsn n) {
  kvd::WalWriterOptions o;
  o.dir = dir;
  o.segment_size = kSegmentSize;
  o.preallocate = false;
  REQUIRE(kvd::Env::Default()->CreateDirs(dir).ok());
  auto w = kvd::WalWriter::Open(kvd::Env::Default(), o, kvd::WalRecoveryReport{}, 1);
  REQUIRE_MESSAGE(w.has_value(), w.error().ToString());
  for (kvd::Lsn lsn = 1; lsn <= n; lsn += 10) {
    std::string buf;
    const kvd::Lsn last = std::min(n, lsn + 9);
    for (kvd::Lsn l = lsn; l <= last; ++l) kvd::AppendPutRecord(&buf, l, kvd::kFirstEpoch, "k" + std::to_string(l), Value(l));
    REQUIRE((*w)->Write(buf, lsn, last).ok());
  }
  REQUIRE((*w)->Sync().ok());
  REQUIRE((*w)->Close().ok());
  std::vector<std::string> segs;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (kvd::ParseSegmentFileName(e.path().filename().string())) segs.push_back(e.path().string());
  }
  std::sort(segs.begin(), segs.end());
  return segs;
}

struct Outcome {
  int code;
  Json json;
  std::string text;
};

Outcome Check(const Config& c) {
  std::ostringstream js, tx;
  const int code = CheckData(c, true, js);
  const int text_code = CheckData(c, false, tx);
  CHECK(code == text_code);
  Outcome o{code, Json::parse(js.str()), tx.str()};
  INFO(tx.str());
  CHECK(o.json["exit_code"] == code);
  CHECK(tx.str().find("verdict: ") != std::string::npos);
  return o;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekg(static_cast<std::streamoff>(offset));
  char ch = 0;
  f.read(&ch, 1);
  ch = static_cast<char>(ch ^ 0x40);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&ch, 1);
}

// A data directory with the default config pointing into it.
struct DataDir {
  TempDir d;
  Config c;
  DataDir() {
    c.wal_path = d / "wal";
    c.snapshot_path = d / "snap";
  }
};

}  // namespace

TEST_CASE_FIXTURE(DataDir, "check-data: a clean WAL") {
  const auto segs = WriteWal(c.wal_path, 300);
  REQUIRE(segs.size() >= 3);
  const auto before = Tree(c.wal_path);
  const Outcome o = Check(c);
  CHECK(o.code == kvd::daemon::kCheckClean);
  CHECK(o.json["verdict"] == "clean");
  CHECK(o.json["last_lsn"] == 300);
  CHECK(o.json["records_replayed"] == 300);
  CHECK(o.json["segments"].size() == segs.size());
  CHECK(o.json["segments"][0]["first_lsn"] == 1);
  CHECK(o.json["snapshots"].empty());
  CHECK(Tree(c.wal_path) == before);
}

TEST_CASE("check-data: an empty data directory is clean") {
  TempDir d;
  Config c;
  c.wal_path = d / "nowal";
  c.snapshot_path = d / "nosnap";
  const Outcome o = Check(c);
  CHECK(o.code == 0);
  CHECK(o.json["verdict"] == "clean");
  CHECK(!fs::exists(c.wal_path));  // not created either
}

TEST_CASE_FIXTURE(DataDir, "check-data: a torn tail") {
  const auto segs = WriteWal(c.wal_path, 200);
  const std::string last = segs.back();
  const uint64_t size = fs::file_size(last);
  fs::resize_file(last, size - 7);  // the last record loses its end
  const auto before = Tree(c.wal_path);

  SUBCASE("tolerate_tail would cut it") {
    const Outcome o = Check(c);
    CHECK(o.code == kvd::daemon::kCheckDataLoss);
    CHECK(o.json["verdict"] == "cut_torn_tail");
    CHECK(o.json["last_lsn"] == 199);
    CHECK(o.json["dropped_bytes"].get<uint64_t>() > 0);
    CHECK(o.json["dropped_bytes"].get<uint64_t>() < 600);
    CHECK(o.json["dropped_records"] == 0);
    const Json& seg = o.json["segments"].back();
    CHECK(seg["damage"] == "torn_tail");
    CHECK(seg["last_good_lsn"] == 199);
    CHECK(seg["damage_offset"] == seg["good_bytes"]);
    CHECK(o.text.find("would cut a torn tail") != std::string::npos);
  }
  SUBCASE("absolute would refuse; tolerate_tail is the way out") {
    c.recovery_mode = kvd::RecoveryMode::kAbsolute;
    const Outcome o = Check(c);
    CHECK(o.code == kvd::daemon::kCheckDataLoss);
    CHECK(o.json["verdict"] == "refuse");
    CHECK(o.json["alternative"]["recovery_mode"] == "tolerate_tail");
    CHECK(o.json["alternative"]["dropped_bytes"].get<uint64_t>() > 0);
    CHECK(o.text.find("recovery_mode=tolerate_tail would accept it") != std::string::npos);
  }
  CHECK(Tree(c.wal_path) == before);
}

TEST_CASE_FIXTURE(DataDir, "check-data: corruption in the middle of the log") {
  const auto segs = WriteWal(c.wal_path, 300);
  REQUIRE(segs.size() >= 3);
  // A byte inside the payload of a record in the middle of the first segment.
  FlipByte(segs[0], fs::file_size(segs[0]) / 2);
  const auto before = Tree(c.wal_path);

  SUBCASE("tolerate_tail refuses, naming file and offset") {
    const Outcome o = Check(c);
    CHECK(o.code == kvd::daemon::kCheckDataLoss);
    CHECK(o.json["verdict"] == "refuse");
    const Json& seg = o.json["segments"][0];
    CHECK(seg["damage"] == "corruption");
    const std::string where = segs[0] + " at offset " + std::to_string(seg["damage_offset"].get<uint64_t>());
    CHECK(o.json["message"].get<std::string>().find(where) != std::string::npos);
    const Json& alt = o.json["alternative"];
    CHECK(alt["recovery_mode"] == "point_in_time");
    CHECK(alt["accepts"] == true);
    // It would drop the rest of segment 0 and all of the later segments.
    uint64_t later_bytes = 0;
    for (size_t i = 1; i < segs.size(); ++i) later_bytes += fs::file_size(segs[i]);
    CHECK(alt["dropped_bytes"].get<uint64_t>() == seg["dropped_bytes"].get<uint64_t>() + later_bytes);
    CHECK(alt["set_aside"].size() == segs.size() - 1);
    const uint64_t last_good = seg["last_good_lsn"].get<uint64_t>();
    // Every record after the damaged one is counted: the damaged one is torn apart.
    CHECK(alt["dropped_records"].get<uint64_t>() == 300 - last_good - 1);
    CHECK(o.text.find("recovery_mode=point_in_time would accept it") != std::string::npos);
  }
  SUBCASE("point_in_time would cut there") {
    c.recovery_mode = kvd::RecoveryMode::kPointInTime;
    const Outcome o = Check(c);
    CHECK(o.code == kvd::daemon::kCheckDataLoss);
    CHECK(o.json["verdict"] == "cut_corruption");
    CHECK(o.json["set_aside"].size() == segs.size() - 1);
    CHECK(o.json["last_lsn"] == o.json["segments"][0]["last_good_lsn"]);
  }
  CHECK(Tree(c.wal_path) == before);
}

TEST_CASE_FIXTURE(DataDir, "check-data: snapshots are verified and the newest valid one is the start") {
  WriteWal(c.wal_path, 200);
  REQUIRE(kvd::Env::Default()->CreateDirs(c.snapshot_path).ok());
  kvd::State s;
  s.Put("a", "1");
  auto older = kvd::WriteSnapshot(kvd::Env::Default(), c.snapshot_path, s, 100);
  REQUIRE(older.has_value());
  s.Put("b", "2");
  auto newer = kvd::WriteSnapshot(kvd::Env::Default(), c.snapshot_path, s, 150);
  REQUIRE(newer.has_value());

  Outcome o = Check(c);
  CHECK(o.code == 0);
  CHECK(o.json["snapshot_used"] == newer->path);
  CHECK(o.json["start_lsn"] == 150);
  CHECK(o.json["records_replayed"] == 50);

  FlipByte(newer->path, fs::file_size(newer->path) - 3);
  const auto before = Tree(c.snapshot_path);
  o = Check(c);
  CHECK(o.code == 0);  // the WAL still covers everything after the older one
  CHECK(o.json["snapshots"][0]["ok"] == false);
  CHECK(!o.json["snapshots"][0]["error"].get<std::string>().empty());
  CHECK(o.json["snapshot_used"] == older->path);
  CHECK(o.json["records_replayed"] == 100);
  CHECK(o.text.find("CORRUPT") != std::string::npos);
  CHECK(Tree(c.snapshot_path) == before);
}

TEST_CASE_FIXTURE(DataDir, "check-data: a stray file is named, no mode is proposed that drops the log, moving it keeps everything") {
  const auto segs = WriteWal(c.wal_path, 300);
  const std::string junk = (fs::path(c.wal_path) / kvd::SegmentFileName(0)).string();
  { std::ofstream(junk) << "junk\n"; }  // echo junk > wal-00000000000000000000.log
  const auto before = Tree(c.wal_path);
  for (kvd::RecoveryMode m : {kvd::RecoveryMode::kTolerateTail, kvd::RecoveryMode::kPointInTime}) {
    c.recovery_mode = m;
    const Outcome o = Check(c);
    CHECK(o.code == kvd::daemon::kCheckDataLoss);
    CHECK(o.json["verdict"] == "refuse");
    CHECK(o.json["stray_files"].size() == 1);
    CHECK(o.json["stray_files"][0]["path"] == junk);
    CHECK(o.json["message"].get<std::string>().find(kvd::SegmentFileName(0)) != std::string::npos);
    CHECK(!o.json.contains("alternative"));  // the old advice: point_in_time, setting every segment aside
    CHECK(o.text.find("point_in_time would accept") == std::string::npos);
    // The only remedy: move it away; then nothing is dropped.
    REQUIRE(o.json["remedies"].size() == 1);
    const Json& r = o.json["remedies"][0];
    CHECK(r["as_configured"] == true);
    CHECK(r["move_away"] == Json::array({junk}));
    CHECK(r["keeps"]["records"] == 300);
    CHECK(r["keeps"]["last_lsn"] == 300);
    CHECK(r["keeps"]["keys"] == 300);
    CHECK(r["drops"]["records"] == 0);
    CHECK(r["drops"]["bytes"] == 0);
    CHECK(o.json["segments"].size() == segs.size());  // as recovery will read them once it is moved
    CHECK(o.text.find("move the 1 stray file(s) out of") != std::string::npos);
  }
  CHECK(Tree(c.wal_path) == before);
}

TEST_CASE_FIXTURE(DataDir, "check-data: remedies say what each mode keeps and drops, least destructive first") {
  const auto segs = WriteWal(c.wal_path, 300);
  REQUIRE(segs.size() >= 3);
  FlipByte(segs[0], fs::file_size(segs[0]) / 2);
  const Outcome o = Check(c);
  CHECK(o.json["verdict"] == "refuse");
  // tolerate_tail and absolute refuse mid-log corruption: point_in_time is the only way to start.
  REQUIRE(o.json["remedies"].size() == 1);
  const Json& r = o.json["remedies"][0];
  CHECK(r["recovery_mode"] == "point_in_time");
  CHECK(r["as_configured"] == false);
  const uint64_t last_good = o.json["segments"][0]["last_good_lsn"].get<uint64_t>();
  CHECK(r["keeps"]["last_lsn"] == last_good);
  CHECK(r["keeps"]["records"] == last_good);
  CHECK(r["keeps"]["keys"] == last_good);  // one key per record
  // Every record after the damaged one is valid and dropped, and it says so.
  CHECK(r["drops"]["records"] == 300 - last_good - 1);
  CHECK(r["drops"]["valid_records_after_damage"] == 300 - last_good - 1);
  CHECK(r["drops"]["first_lsn"] == last_good + 2);
  CHECK(r["drops"]["last_lsn"] == 300);
  CHECK(r["drops"]["keys_changed"] == 300 - last_good - 1);
  CHECK(r["drops"]["later_segments"] == segs.size() - 1);
  CHECK(r["drops"]["set_aside"].size() == segs.size());
  CHECK(o.text.find("VALID records (lsn " + std::to_string(last_good + 2) + "..300) that follow the damage") !=
        std::string::npos);
  CHECK(o.text.find("set recovery_mode = \"point_in_time\" in [storage], start kvd once") != std::string::npos);
}

TEST_CASE_FIXTURE(DataDir, "check-data: a torn tail: the configured mode first, then the stricter ones that drop more are left out") {
  const auto segs = WriteWal(c.wal_path, 200);
  fs::resize_file(segs.back(), fs::file_size(segs.back()) - 7);  // grown by writing: a torn tail
  const Outcome o = Check(c);
  REQUIRE(o.json["remedies"].size() == 1);  // point_in_time would do just the same
  const Json& r = o.json["remedies"][0];
  CHECK(r["recovery_mode"] == "tolerate_tail");
  CHECK(r["as_configured"] == true);
  CHECK(r["keeps"]["last_lsn"] == 199);
  CHECK(r["drops"]["records"] == 0);
  CHECK(r["drops"]["bytes"].get<uint64_t>() > 0);
  CHECK(o.text.find("(no whole record)") != std::string::npos);
}
