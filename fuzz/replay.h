// Replays checked-in fuzz inputs in the ordinary test suite.
//
// FuzzInputs("frame_decoder") lists every file under
// fuzz/regressions/frame_decoder/ (crash inputs the fuzzer once found) and,
// with include_corpus, fuzz/corpus/frame_decoder/ too. The fuzz/ directory is
// found from KVD_SOURCE_DIR (defined for the tests by CMake), else from this
// header's own path; KVD_FUZZ_DIR overrides both.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace kvd::fuzz {

inline std::filesystem::path FuzzDir() {
  if (const char* env = std::getenv("KVD_FUZZ_DIR"); env != nullptr && *env != '\0') return env;
#ifdef KVD_SOURCE_DIR
  return std::filesystem::path(KVD_SOURCE_DIR) / "fuzz";
#else
  return std::filesystem::path(__FILE__).parent_path();
#endif
}

inline std::vector<std::filesystem::path> FuzzInputs(std::string_view target, bool include_corpus) {
  std::vector<std::filesystem::path> files;
  std::vector<std::string> kinds = {"regressions"};
  if (include_corpus) kinds.push_back("corpus");
  for (const std::string& kind : kinds) {
    const auto dir = FuzzDir() / kind / std::string(target);
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline std::string ReadInput(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace kvd::fuzz
