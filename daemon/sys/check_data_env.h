// SingleFileEnv: a view of an Env in which a directory listing shows one
// file name only, so RecoverWal can examine one segment on its own (kvd
// --check-data counts the records of segments it would set aside).
// Everything else is forwarded unchanged.
#pragma once

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

}  // namespace kvd::daemon
