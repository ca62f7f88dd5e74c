// Fuzz target logic for the snapshot reader (lib/storage/snapshot.cc): the
// input is the bytes of one snapshot file, on an in-memory Env
// (fuzz/mem_env.h), read by ListSnapshots, VerifySnapshot and LoadSnapshot.
// Shared by fuzz/snapshot_reader_fuzz.cc and
// tests/storage/storage_fuzz_regression_test.cc.
//
// Invariants: never crashes; a rejection is kCorruption naming the file, and
// leaves the State empty; Verify and Load agree; an accepted snapshot's entry
// count equals the size of the State it built, and writing that State again
// at the same LSN gives back exactly the input bytes (the format is
// canonical: sorted unique keys, every field checked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "fuzz/mem_env.h"
#include "kvd/snapshot.h"
#include "kvd/state.h"

namespace kvd::fuzz {

inline int SnapshotReaderTarget(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  // Name the file after the LSN its header claims (little-endian at 16).
  Lsn lsn = 7;
  if (size >= 24) {
    lsn = 0;
    for (int i = 7; i >= 0; --i) lsn = (lsn << 8) | static_cast<uint8_t>(bytes[16 + i]);
  }
  const std::string dir = "/snap";
  const std::string path = JoinPath(dir, SnapshotFileName(lsn));
  MemEnv env;
  env.files()[path] = bytes;

  auto listed = ListSnapshots(&env, dir);
  KVD_FUZZ_CHECK(listed.has_value() && listed->size() == 1 && (*listed)[0].path == path);
  KVD_FUZZ_CHECK((*listed)[0].lsn == lsn && (*listed)[0].bytes == size);

  State state;
  state.Put("stale", "must be cleared");
  Result<SnapshotInfo> loaded = LoadSnapshot(&env, path, &state);
  Result<SnapshotInfo> verified = VerifySnapshot(&env, path);
  KVD_FUZZ_CHECK(loaded.has_value() == verified.has_value());
  KVD_FUZZ_CHECK(env.files().size() == 1 && env.files()[path] == bytes);
  if (!loaded) {
    KVD_FUZZ_CHECK(loaded.error().code() == Code::kCorruption);
    KVD_FUZZ_CHECK(verified.error().code() == Code::kCorruption);
    KVD_FUZZ_CHECK(loaded.error().message().find(path) != std::string::npos);
    KVD_FUZZ_CHECK(state.size() == 0);
    return 0;
  }
  KVD_FUZZ_CHECK(loaded->entries == state.size());
  KVD_FUZZ_CHECK(verified->entries == loaded->entries && verified->lsn == loaded->lsn);
  KVD_FUZZ_CHECK(loaded->lsn == lsn && loaded->bytes == size);

  // Canonical: re-encoding the loaded State yields the same bytes.
  MemEnv out;
  auto written = WriteSnapshot(&out, "/out", state, lsn);
  KVD_FUZZ_CHECK(written.has_value());
  KVD_FUZZ_CHECK(out.files()[JoinPath("/out", SnapshotFileName(lsn))] == bytes);
  return 0;
}

}  // namespace kvd::fuzz
