// TempDir: a fresh directory for one test, removed with everything in it.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace kvd::test {

enum class TempDirBase {
  kTmp,           // $TMPDIR or /tmp
  kShmIfPresent,  // /dev/shm when it exists: for tests that fsync a lot
};

class TempDir {
 public:
  explicit TempDir(std::string_view tag = "test", TempDirBase base = TempDirBase::kTmp) {
    namespace fs = std::filesystem;
    fs::path root = (base == TempDirBase::kShmIfPresent && fs::is_directory("/dev/shm")) ? fs::path("/dev/shm")
                                                                                         : fs::temp_directory_path();
    std::string tmpl = (root / ("kvd-" + std::string(tag) + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }
  std::string operator/(std::string_view name) const { return Sub(name); }

 private:
  std::string path_;
};

}  // namespace kvd::test
