// Views of an Env for kvd --check-data.
//
// SingleFileEnv: a view of an Env in which a directory listing shows one
// file name only, so RecoverWal can examine one segment on its own (kvd
// --check-data counts the records of segments it would set aside).
// Everything else is forwarded unchanged.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kvd/env.h"

namespace kvd::daemon {

class SingleFileEnv final : public EnvWrapper {
 public:
  SingleFileEnv(Env* base, std::string name) : EnvWrapper(base), name_(std::move(name)) {}

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    KVD_ASSIGN_OR_RETURN(std::vector<std::string> names, target()->ListDir(dir));
    std::vector<std::string> out;
    for (std::string& n : names) {
      if (n == name_) out.push_back(std::move(n));
    }
    return out;
  }

 private:
  std::string name_;
};

// HidingEnv: a view of an Env in which directory listings leave out some
// names: --check-data examines the WAL as it would be once the stray files
// it found are moved away.
class HidingEnv final : public EnvWrapper {
 public:
  explicit HidingEnv(Env* base) : EnvWrapper(base) {}
  void Hide(std::string name) { hidden_.push_back(std::move(name)); }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    KVD_ASSIGN_OR_RETURN(std::vector<std::string> names, target()->ListDir(dir));
    std::erase_if(names,
                  [&](const std::string& n) { return std::find(hidden_.begin(), hidden_.end(), n) != hidden_.end(); });
    return names;
  }

 private:
  std::vector<std::string> hidden_;
};

}  // namespace kvd::daemon
