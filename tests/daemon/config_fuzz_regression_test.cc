#include <doctest/doctest.h>

#include "fuzz/config_loader_target.h"
#include "fuzz/replay.h"

TEST_CASE("config_loader: checked-in regressions and corpus replay cleanly") {
  const auto files = kvd::fuzz::FuzzInputs("config_loader", /*include_corpus=*/true);
  REQUIRE(files.size() >= 5);
  for (const auto& f : files) {
    const std::string data = kvd::fuzz::ReadInput(f);
    CAPTURE(f.string());
    CHECK(kvd::fuzz::ConfigLoaderTarget(reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 0);
  }
}

TEST_CASE("config_loader: the shipped config is in the corpus, unchanged") {
  const std::string shipped = kvd::fuzz::ReadInput(std::string(KVD_SOURCE_DIR) + "/conf/kvd.toml");
  REQUIRE(!shipped.empty());
  CHECK(kvd::fuzz::ReadInput(kvd::fuzz::FuzzDir() / "corpus/config_loader/kvd.toml") == shipped);
}
